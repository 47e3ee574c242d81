"""Counts of what the HTTP endpoint answered and refused, and their metrics."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class HttpStats:
    """Updated by the connection threads, read at scrape time."""

    def __init__(self, expired: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._responses: Counter[str] = Counter()
        self._auth_failures: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._expired = expired

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[str(status)] += 1

    def auth_failure(self, outcome: str) -> None:
        with self._lock:
            self._auth_failures[outcome] += 1

    def dropped(self, reason: str) -> None:
        with self._lock:
            self._dropped[reason] += 1

    def snapshot(self) -> tuple[Mapping[str, int], Mapping[str, int], Mapping[str, int]]:
        """(responses by status code, auth failures by outcome, dropped connections by reason)"""
        with self._lock:
            dropped = self._dropped + Counter(deadline=self._expired())
            return dict(self._responses), dict(self._auth_failures), dict(dropped)


class HttpCollector(Collector):
    """monitord_http_* from HttpServer.stats."""

    def __init__(self, stats: HttpStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        responses, auth_failures, dropped = self._stats.snapshot()
        families = (
            ("monitord_http_responses", "Responses of the HTTP endpoint, by status code.",
             "code", responses),
            ("monitord_http_auth_failures", "Requests refused with 401, by why: missing, "
             "malformed, unknown_user, wrong_password.", "reason", auth_failures),
            ("monitord_http_connections_dropped", "Connections closed without an answer, by why: "
             "too_many_connections, tls_handshake (failed), deadline (too slow to handshake, send "
             "or read; a slow handshake counts under both).", "reason", dropped),
        )
        for name, help_text, label, values in families:
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value, count in sorted(values.items()):
                family.add_metric([value], count)
            yield family
