"""/metrics: requests by route template (never raw ids) and status; latency histogram."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api


def _samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    h = api.headers("officer")
    api.client.get("/api/v1/alerts/alert-off-1", headers=h)
    api.client.get("/api/v1/alerts/alert-off-2", headers=h)  # someone else's: 404
    api.client.get("/api/v1/no/such/path")
    text = api.client.get("/metrics", headers=api.headers("ops")).text
    samples = _samples(text)
    route = "/api/v1/alerts/{alert_id}"
    assert (
        samples[("em_api_requests_total", (("method", "GET"), ("route", route), ("status", "200")))]
        >= 1
    )
    assert (
        samples[("em_api_requests_total", (("method", "GET"), ("route", route), ("status", "404")))]
        >= 1
    )
    assert samples[("em_api_request_seconds_count", (("method", "GET"), ("route", route)))] >= 2
    assert (
        "em_api_requests_total",
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
    ) in samples
    assert "alert-off-1" not in text and "/no/such/path" not in text
