"""GET /metrics: Prometheus' text format, request figures, and who may read it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from passerelle.testing import ADMIN_TOKEN


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def request_count(text: str, endpoint: str, status: str, slug: str = "metrics") -> float:
    key = (("endpoint", endpoint), ("instance", slug), ("status", status), ("type", "sample"))
    return samples(text, "passerelle_requests_total").get(key, 0.0)


async def scrape(client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def test_endpoint_calls_are_counted_by_instance_endpoint_and_status(hub_client, make_instance):
    await make_instance("sample", "metrics")
    before = await scrape(hub_client)
    for _ in range(3):
        assert (await hub_client.get("/sample/metrics/hello?name=Ada")).status == 200
    assert (await hub_client.get("/sample/metrics/hello?nope=1")).status == 400
    assert (await hub_client.get("/sample/metrics/crash")).status == 500
    after = await scrape(hub_client)
    assert request_count(after, "hello", "200") - request_count(before, "hello", "200") == 3
    assert request_count(after, "hello", "400") - request_count(before, "hello", "400") == 1
    assert request_count(after, "crash", "500") - request_count(before, "crash", "500") == 1
    durations = samples(after, "passerelle_request_duration_seconds_count")
    key = (("endpoint", "hello"), ("instance", "metrics"), ("type", "sample"))
    assert durations[key] >= 4


async def test_unknown_instances_and_endpoints_create_no_series(hub_client, make_instance):
    # Labels come from the configuration only: a scanner must not grow the series without bound.
    await make_instance("sample", "metrics")
    assert (await hub_client.get("/sample/no-such-instance/hello")).status == 404
    assert (await hub_client.get("/sample/metrics/no-such-endpoint")).status == 404
    text = await scrape(hub_client)
    assert "no-such-instance" not in text
    assert "no-such-endpoint" not in text


async def test_outside_the_allowed_networks_an_admin_token_is_needed(hub_client, hub_settings):
    hub_settings.metrics_allowed_networks = ["10.0.0.0/8"]
    refused = await hub_client.get("/metrics")
    assert refused.status == 401
    assert (await refused.json())["err"] == 1
    wrong = await hub_client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status == 403
    allowed = await hub_client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert allowed.status == 200
    assert "# TYPE passerelle_requests_total counter" in await allowed.text()


async def test_every_documented_metric_is_exposed(hub_client, make_instance):
    # docs/monitoring.md lists the metrics; a scrape must show each of them (as a # TYPE line).
    import re
    from pathlib import Path

    await make_instance("sample", "metrics")
    await hub_client.get("/sample/metrics/hello?name=Ada")
    documented = set(
        re.findall(r"`(passerelle_\w+)`", (Path(__file__).parents[2] / "docs" / "monitoring.md").read_text())
    )
    assert len(documented) >= 15
    text = await scrape(hub_client)
    exposed = {name for name in re.findall(r"^# TYPE (passerelle_\w+) ", text, re.MULTILINE)}
    # Counters are documented with their _total suffix, as Prometheus shows them.
    exposed |= {f"{name}_total" for name in exposed}
    assert documented - exposed == set()
