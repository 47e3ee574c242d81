"""The MQTT publisher's health, read from its stats at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitord.mqtt.publisher import MqttStats


class MqttCollector(Collector):
    """monitord_mqtt_* from MqttPublisher.stats."""

    def __init__(self, stats: Callable[[], MqttStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        stats = self._stats()
        yield GaugeMetricFamily(
            "monitord_mqtt_connected",
            "Whether monitord is connected to the MQTT broker (1) or not (0).",
            value=1 if stats.connected else 0,
        )
        connects = CounterMetricFamily(
            "monitord_mqtt_connects",
            "Connection attempts to the MQTT broker, by result: ok, refused, auth (bad credentials "
            "or not authorised), tls, timeout, error.",
            labels=["result"],
        )
        for result, count in stats.connects.items():
            connects.add_metric([result], count)
        yield connects
        published = CounterMetricFamily(
            "monitord_mqtt_messages_published",
            "Messages the MQTT broker acknowledged, by topic: event, status, daemon.",
            labels=["topic"],
        )
        for kind, count in stats.published.items():
            published.add_metric([kind], count)
        yield published
        yield CounterMetricFamily(
            "monitord_mqtt_publish_failures",
            "Messages the MQTT broker did not acknowledge (publish failed or the connection was "
            "lost first); events among them stay in the outbox and are published again.",
            value=stats.publish_failures,
        )
        yield GaugeMetricFamily(
            "monitord_mqtt_outbox_events",
            "State events stored but not yet acknowledged by the MQTT broker (last known count).",
            value=stats.outbox_pending,
        )
