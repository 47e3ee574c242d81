"""A paho subscriber on its own thread that records every message it is delivered: the lab's
witness of what monitord published (the soak's, and the integration tests' through
tests/integration/mosquitto.py).

With `clean_session=False` (the default) and a fixed client id, the broker keeps its
subscription and queues QoS 1 messages while it is away, so nothing published during a broker
restart is missed (given broker persistence). paho reconnects it by itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from monitord.lab.broker import HOST
from monitord.lab.errors import LabSetupError


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttRecorder:
    def __init__(self, port: int, topic: str, client_id: str = "recorder", *,
                 clean_session: bool = False, username: str | None = None,
                 password: str | None = None, ca_file: str | None = None) -> None:
        self.topic = topic
        self._port = port
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> Self:
        self.client.connect(HOST, self._port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise LabSetupError(f"the recorder did not subscribe to {self.topic} "
                                f"within {timeout:g}s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            return
        if flags.session_present:  # the broker kept our subscription (persistent session)
            self._subscribed.set()
        else:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, bytes(message.payload), message.retain))

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def on_topic(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]
