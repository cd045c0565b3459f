"""The circuit breaker's state machine (passerelle.breaker), on a hand-driven clock.
The drills against a real upstream are in test_http_faults.py."""

from __future__ import annotations

import pytest

from passerelle.breaker import BreakerState, CircuitBreaker
from passerelle.envelope import BreakerOpen, UpstreamUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        "sample/demo", "http://app.example:80", threshold=3, open_duration=30, clock=clock, wall_clock=clock
    )


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.failed(breaker.acquire())


def test_opens_after_consecutive_failures_only(breaker):
    fail(breaker, 2)
    breaker.succeeded(breaker.acquire())  # a success resets the count
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen) as raised:
        breaker.acquire()
    error = raised.value
    assert isinstance(error, UpstreamUnavailable)
    assert error.status == 503
    assert error.err_class() == "passerelle.envelope.BreakerOpen"
    assert "its last 3 calls failed" in error.message
    assert "(in 30 s)" in error.message


def test_probe_after_the_open_duration_then_closes_on_success(breaker, clock):
    fail(breaker, 3)
    clock.now += 29.9
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    clock.now += 0.2
    probe = breaker.acquire()
    assert probe.probe
    assert breaker.state is BreakerState.HALF_OPEN
    # One probe at a time: the others are answered at once.
    with pytest.raises(BreakerOpen, match="a probe call is under way"):
        breaker.acquire()
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert not breaker.acquire().probe


def test_a_failed_probe_opens_again_for_a_whole_duration(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    breaker.failed(breaker.acquire())
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    with pytest.raises(BreakerOpen):
        breaker.acquire()
    clock.now += 1
    assert breaker.acquire().probe


def test_a_cancelled_probe_lets_another_one_go(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    breaker.released(breaker.acquire())
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire().probe


def test_results_of_calls_started_before_the_opening_are_ignored(breaker, clock):
    slow = breaker.acquire()
    late = breaker.acquire()
    fail(breaker, 3)
    breaker.succeeded(slow)  # would close it if it counted
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    probe = breaker.acquire()
    breaker.failed(late)  # would re-open it if it counted
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED


def test_reset_and_snapshot(breaker, clock):
    assert breaker.snapshot() == {
        "instance": "sample/demo",
        "upstream": "http://app.example:80",
        "state": "closed",
        "consecutive_failures": 0,
        "threshold": 3,
        "open_duration": 30,
        "opened_at": None,
        "next_probe": None,
    }
    fail(breaker, 3)
    seen = breaker.snapshot()
    assert seen["state"] == "open"
    assert seen["consecutive_failures"] == 3
    assert (seen["next_probe"] - seen["opened_at"]).total_seconds() == 30
    breaker.reset()
    assert breaker.snapshot()["state"] == "closed"
    assert breaker.snapshot()["opened_at"] is None
    assert not breaker.acquire().probe


def test_threshold_zero_never_opens(clock):
    breaker = CircuitBreaker("t/s", "http://x:80", threshold=0, clock=clock, wall_clock=clock)
    fail(breaker, 100)
    assert breaker.state is BreakerState.CLOSED


def test_transitions_are_logged(breaker, clock, capsys):
    fail(breaker, 3)
    clock.now += 30
    breaker.succeeded(breaker.acquire())
    out = capsys.readouterr().out
    assert "breaker open" in out
    assert "breaker half-open" in out
    assert "breaker closed" in out
    assert out.count("upstream=http://app.example:80") == 3


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("t/s", "u", threshold=-1)
    with pytest.raises(ValueError):
        CircuitBreaker("t/s", "u", open_duration=0)
