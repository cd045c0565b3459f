"""Admin authentication: hashed tokens, and repeated failures slowed down (429)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from passerelle.admin.auth import ADMIN_LIMITER, FailureLimiter, hash_token, token_matches
from passerelle.hub import HUB
from passerelle.testing import ADMIN_TOKEN

GOOD = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BAD = {"Authorization": "Bearer guessed"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_forms():
    hashed = hash_token("the-token")
    assert hashed.startswith("sha256:") and len(hashed) == 7 + 64
    assert token_matches("the-token", [hashed])
    assert token_matches("the-token", ["other", hashed.upper().replace("SHA256:", "sha256:")])
    assert token_matches("plain", [hashed, "plain"])
    assert not token_matches("the-tokeN", [hashed])
    # The hash is not a password: sending it does not open the door.
    assert not token_matches(hashed, [hashed])
    assert not token_matches("x", ["sha256:not-hex"])


async def test_hashed_tokens_are_accepted(hub_app, hub_client, monkeypatch):
    settings = hub_app[HUB].settings
    monkeypatch.setattr(settings, "admin_tokens", [SecretStr(hash_token("hashed-one")), SecretStr("plain-one")])
    for token in ("hashed-one", "plain-one"):
        response = await hub_client.get("/manage/api/instances/", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200, token
    response = await hub_client.get(
        "/manage/api/instances/", headers={"Authorization": f"Bearer {hash_token('hashed-one')}"}
    )
    assert response.status == 403


async def test_repeated_failures_are_answered_429(hub_app, hub_client):
    clock = Clock()
    limiter = hub_app[ADMIN_LIMITER]
    limiter.clock = clock
    for _ in range(5):
        response = await hub_client.get("/manage/api/instances/", headers=BAD)
        assert response.status == 403
    # Blocked: even the right token is not looked at.
    for headers in (BAD, GOOD):
        response = await hub_client.get("/manage/api/instances/", headers=headers)
        assert response.status == 429
        assert response.headers["Retry-After"] == "30"
        payload = await response.json()
        assert payload["err"] == 1 and payload["err_class"] == "passerelle.admin.auth.TooManyAttempts"
        assert payload["err_desc"] == "admin API: too many failed attempts, retry in 30 s"
    clock.now += 10
    response = await hub_client.get("/manage/api/instances/", headers=GOOD)
    assert response.headers["Retry-After"] == "20"

    # After the delay, one more failure doubles it.
    clock.now += 21
    assert (await hub_client.get("/manage/api/instances/", headers=BAD)).status == 403
    response = await hub_client.get("/manage/api/instances/", headers=GOOD)
    assert response.status == 429 and response.headers["Retry-After"] == "60"

    # A valid token after the delay clears the record.
    clock.now += 61
    assert (await hub_client.get("/manage/api/instances/", headers=GOOD)).status == 200
    assert len(limiter) == 0
    assert (await hub_client.get("/manage/api/instances/", headers=BAD)).status == 403


async def test_missing_credentials_are_not_counted(hub_app, hub_client):
    for _ in range(10):
        assert (await hub_client.get("/manage/api/instances/")).status == 401
    assert len(hub_app[ADMIN_LIMITER]) == 0
    assert (await hub_client.get("/manage/api/instances/", headers=GOOD)).status == 200


def test_delays_grow_up_to_a_maximum():
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    delays = []
    for _ in range(12):
        clock.now += limiter.retry_after("1.2.3.4")
        delays.append(limiter.failure("1.2.3.4"))
    assert delays == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]
    assert limiter.retry_after("5.6.7.8") == 0  # others are not affected


def test_failures_are_forgotten_after_the_window():
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    for _ in range(4):
        limiter.failure("1.2.3.4")
    clock.now += 601
    assert limiter.failure("1.2.3.4") == 0  # counting starts again
    for _ in range(3):
        limiter.failure("1.2.3.4")
    assert limiter.failure("1.2.3.4") == 30


def test_memory_is_bounded():
    clock = Clock()
    limiter = FailureLimiter(clock=clock, max_clients=100)
    for _ in range(5):
        limiter.failure("9.9.9.9")
    for index in range(10_000):
        limiter.failure(f"10.0.{index // 256}.{index % 256}")
        clock.now += 0.001
    assert len(limiter) == 100
    # Expired records are dropped as new ones come.
    clock.now += 10_000
    limiter.failure("1.1.1.1")
    assert len(limiter) == 1


@pytest.mark.parametrize(
    ("remote", "client"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_clients_are_addresses_or_ipv6_networks(remote, client):
    assert FailureLimiter.client(remote) == client
