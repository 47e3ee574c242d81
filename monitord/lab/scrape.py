"""Reading a monitord's /metrics as samples: what the lab, its demo and the tests look at."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, dict[str, str], float]


def parse_samples(text: str) -> list[Sample]:
    return [(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def by_target(samples: list[Sample], name: str) -> dict[str, float]:
    """{target: value} of the samples named `name`."""
    return {labels["target"]: value for n, labels, value in samples if n == name}


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for n, sample_labels, v in samples:
        if n == name and all(sample_labels.get(k) == want for k, want in labels.items()):
            return v
    return None


def states_of(samples: list[Sample]) -> dict[str, str]:
    """{target: state} from monitord_target_state (the state whose sample is 1)."""
    return {labels["target"]: labels["state"] for name, labels, v in samples
            if name == "monitord_target_state" and v == 1.0}


def root_causes_of(samples: list[Sample]) -> dict[str, str]:
    """{target: root cause} of the targets that have one (down, degraded or unreachable)."""
    return {labels["target"]: labels["root_cause"] for name, labels, v in samples
            if name == "monitord_target_root_cause" and v == 1.0}


def http_request(url: str, data: bytes | None = None, timeout: float = 30) -> tuple[int, str]:
    """(status, body) of a GET (or a POST of `data`); an HTTP error status is an answer too."""
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as resp:  # noqa: S310 - loopback
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
