"""Prometheus metrics of the hub, served at ``/metrics``.

Every figure the hub exposes is declared here, once, so that a reader sees the
whole list and the modules that feed them only call ``.labels(...).inc()`` or
``.observe()``. They live in the hub's own registry (not prometheus-client's
global one) so that tests can build many applications in one process.

Figures that are states rather than events (breaker states, jobs by state,
thread-pool queue depth) are read when Prometheus scrapes, through the
collectors registered with :func:`register_state_collector`.

Labels are bounded: instance and endpoint names come from the configuration,
upstream calls are labelled by host, never by full URL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "CACHE_EVENTS",
    "JOB_RUNS",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_DURATION",
    "UPSTREAM_DURATION",
    "UPSTREAM_REQUESTS",
    "handler",
    "register_state_collector",
]

REGISTRY = CollectorRegistry(auto_describe=True)

# Buckets from autocompletion speed (a few ms) to the callers' 28 s deadline.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 30)

REQUESTS = Counter(
    "passerelle_requests",
    "Endpoint calls answered, by connector type, instance, endpoint and HTTP status.",
    ["type", "instance", "endpoint", "status"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "passerelle_request_duration_seconds",
    "Time to answer an endpoint call.",
    ["type", "instance", "endpoint"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "passerelle_upstream_requests",
    "Calls to business applications, by instance, host and outcome (HTTP status, 'timeout', "
    "'unreachable', 'breaker_open').",
    ["instance", "host", "status"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "passerelle_upstream_duration_seconds",
    "Duration of calls to business applications (one attempt each).",
    ["instance", "host"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CACHE_EVENTS = Counter(
    "passerelle_cache",
    "Response cache lookups by instance, endpoint and result ('hit', 'miss', 'stale').",
    ["instance", "endpoint", "result"],
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "passerelle_job_runs",
    "Queued and periodic job runs by kind ('queued', 'periodic') and outcome ('done', 'retry', 'failed', 'released').",
    ["kind", "outcome"],
    registry=REGISTRY,
)

StateReader = Callable[[], Iterable[Metric]]


class _StateCollector(Collector):
    """Calls the registered readers at scrape time."""

    def __init__(self) -> None:
        self.readers: dict[str, StateReader] = {}

    def collect(self) -> Iterable[Metric]:
        for reader in list(self.readers.values()):
            yield from reader()

    def describe(self) -> Iterable[Metric]:
        return []


_STATE = _StateCollector()
REGISTRY.register(_STATE)


def register_state_collector(name: str, reader: StateReader) -> None:
    """Add (or replace, by ``name``) a function yielding gauge families at scrape time,
    e.g. ``GaugeMetricFamily("passerelle_breaker_state", …)``."""
    _STATE.readers[name] = reader


def unregister_state_collector(name: str) -> None:
    _STATE.readers.pop(name, None)


def gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    """A gauge family for a state reader (shorthand kept here so names stay in one module)."""
    return GaugeMetricFamily(name, documentation, labels=labels)


def allowed(remote: str | None, networks: Iterable[str]) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


async def _render(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def handler(request: web.Request) -> web.StreamResponse:
    """``GET /metrics``: Prometheus' text format, for allowed networks or an admin token."""
    from passerelle.admin.auth import require_admin
    from passerelle.hub import hub_of

    if allowed(request.remote, hub_of(request).settings.metrics_allowed_networks):
        return await _render(request)
    return await require_admin(_render)(request)
