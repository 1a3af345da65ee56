"""Read a Prometheus ``/metrics`` endpoint into a dict (for the demo, tests and benches)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]


def scrape(url: str, timeout_s: float = 2.0) -> dict[Sample, float]:
    """Return ``{(sample name, sorted labels): value}`` from the exposition at ``url``."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        text = resp.read().decode()
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """Return the sum of samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))
