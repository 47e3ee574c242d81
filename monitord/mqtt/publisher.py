"""Delivers the history store's outbox and the targets' statuses to an MQTT broker.

One task (`MqttPublisher.run`) owns the connection: connect, publish, and on any failure back
off and connect again; aiomqtt does not reconnect by itself. Events reach the broker at least
once: an outbox row is marked delivered only after the broker acknowledged it (QoS 1 PUBACK),
so a row published just before a connection loss is published again (same `id`) afterwards.
The rest of the daemon only ever calls the non-blocking notify_* methods: probing never waits
on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from monitord.model import MqttSettings, MqttTls
from monitord.mqtt.payloads import (
    daemon_payload,
    daemon_topic,
    event_payload,
    events_topic,
    status_payload,
    target_topic,
)
from monitord.state.model import StateEvent, TargetStatus

log = logging.getLogger(__name__)

# Values of the `result` label of monitord_mqtt_connects_total.
CONNECT_RESULTS = ("ok", "refused", "auth", "tls", "timeout", "error")
# Values of the `topic` label of monitord_mqtt_messages_published_total.
TOPIC_KINDS = ("event", "status", "daemon")

BATCH_SIZE = 100  # messages in flight at once: one outbox batch, or a chunk of statuses
MAX_BATCHES_PER_ROUND = 10  # outbox batches before statuses get a turn
RECHECK_INTERVAL = 60.0  # the outbox is read this often even without a notify
INITIAL_BACKOFF = 1.0
STOP_TIMEOUT = 2.0  # for the "stopped" status and the DISCONNECT on a clean stop
# CONNACK "bad username or password" and "not authorised": MQTT 3.1.1 return codes 4 and 5,
# which paho reports as the MQTT 5 reason codes 0x86 and 0x87.
AUTH_CONNACK_CODES = frozenset({4, 5, 0x86, 0x87})


class Outbox(Protocol):
    """Stored events not yet acknowledged by the broker."""

    async def pending(self, limit: int) -> list[StateEvent]:
        """At most `limit` undelivered events, oldest first, each with its seq."""
        ...

    async def delivered(self, seqs: Sequence[int]) -> None: ...

    async def pending_count(self) -> int: ...


@dataclass
class MqttStats:
    """Counters for monitord_mqtt_* metrics. The dicts have fixed keys, so the HTTP thread
    can read them while the event loop increments values."""

    connected: bool = False
    connects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONNECT_RESULTS, 0))
    published: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOPIC_KINDS, 0))
    publish_failures: int = 0  # messages the broker did not acknowledge
    outbox_pending: int = 0  # last known count of stored events not yet acknowledged
    last_error: str = ""


class TlsSetupError(Exception):
    """The TLS files in the settings could not be loaded."""


class PahoSocketErrors(logging.Filter):
    """Catches the socket errors paho logs instead of raising. When the broker ends the
    connection before CONNACK (a TLS 1.3 alert after the handshake: client certificate
    missing or rejected), paho only logs the error and aiomqtt waits out its timeout; the
    publisher reports the error itself, once, so paho's line is dropped."""

    MESSAGES = frozenset({"failed to receive on socket: %s", "timeout on socket: %s"})

    def __init__(self) -> None:
        super().__init__()
        self.last: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg in self.MESSAGES and args and isinstance(args[0], OSError):
            self.last = args[0]
            return False
        return True


def tls_context(tls: MqttTls) -> ssl.SSLContext:
    """Verifies the broker's certificate against tls.ca_file, or the system store without one."""
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
        context.check_hostname = tls.verify_hostname
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TlsSetupError(f"cannot load the MQTT TLS files: {exc}") from exc
    return context


def describe_failure(exc: BaseException, settings: MqttSettings,
                     socket_error: OSError | None = None) -> tuple[str, str]:
    """(result label, message for the log) of a failed connection attempt. aiomqtt re-raises
    socket and TLS errors as a bare MqttError, so the cause is looked for down the chain;
    `socket_error` (see PahoSocketErrors), if any, is the cause of whatever came after it."""
    broker = f"MQTT broker {settings.host}:{settings.port}"
    for cause in ([socket_error] if socket_error else []) + list(_causes(exc)):
        described = _describe_cause(cause, settings, broker)
        if described is not None:
            return described
    return "error", f"{broker}: {_chain_text(exc)}"


def _describe_cause(cause: BaseException, settings: MqttSettings,
                    broker: str) -> tuple[str, str] | None:
    if isinstance(cause, MqttConnectError):  # a negative CONNACK
        if getattr(cause.rc, "value", cause.rc) in AUTH_CONNACK_CODES:
            who = f"user {settings.username!r}" if settings.username else "an anonymous client"
            return "auth", f"{broker} rejected {who}: {cause.rc}"
        return "refused", f"{broker} refused the connection: {cause.rc}"
    if isinstance(cause, TlsSetupError | ssl.SSLError):
        return "tls", _tls_text(cause, broker)
    if isinstance(cause, ConnectionRefusedError):
        return "refused", f"{broker} refused the TCP connection (is it running and listening?)"
    if isinstance(cause, TimeoutError):
        return "timeout", f"{broker} did not answer within {settings.connect_timeout:g} s"
    return None


def _tls_text(cause: TlsSetupError | ssl.SSLError, broker: str) -> str:
    if isinstance(cause, ssl.SSLCertVerificationError):
        # "unable to get local issuer certificate" (wrong ca_file), "Hostname mismatch..."
        return f"TLS with {broker} failed, its certificate was rejected: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake with {broker} failed: {cause.reason or cause}"
    return str(cause)


def _chain_text(exc: BaseException) -> str:
    """aiomqtt wraps the telling error ("[code:7] The connection was lost") in a vague one."""
    texts: list[str] = []
    for cause in _causes(exc):
        text = str(cause) or type(cause).__name__
        if text not in texts:
            texts.append(text)
    return ": ".join(texts)


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


@dataclass(frozen=True, slots=True)
class _Message:
    kind: str  # one of TOPIC_KINDS
    topic: str
    payload: bytes
    retain: bool


class MqttPublisher:
    """Publishes outbox events (PREFIX/events), retained target statuses (PREFIX/targets/ID)
    and the daemon's own retained status with a last-will (PREFIX/daemon)."""

    def __init__(self, settings: MqttSettings, outbox: Outbox,
                 statuses: Callable[[], Mapping[str, TargetStatus]]) -> None:
        self._settings = settings
        self._outbox = outbox
        self._statuses = statuses
        self.stats = MqttStats()
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()  # targets whose retained status must be (re)published
        self._stopping = False
        self._last_logged_error: str | None = None
        # paho's log, by client id: its filter belongs to this publisher (one per client id).
        self._paho_log = logging.getLogger(f"{__name__}.paho.{settings.client_id}")
        self._socket_errors = PahoSocketErrors()
        # No PUBACK within a keepalive period: the connection is as good as dead.
        self._publish_timeout = max(settings.keepalive, settings.connect_timeout)

    @property
    def connected(self) -> bool:
        return self.stats.connected

    # The notify_* methods are called on the event loop (they are not thread-safe); they only
    # mark work and wake the publisher task.
    def notify_events(self) -> None:
        """New outbox rows were committed."""
        self._wake.set()

    def notify_status(self, targets: Iterable[str]) -> None:
        """These targets' statuses changed (or were added)."""
        self._dirty.update(targets)
        self._wake.set()

    def notify_removed(self, targets: Iterable[str]) -> None:
        """These targets left the inventory: their retained status is cleared. A target is
        cleared only if it is no longer in `statuses()` when its turn comes."""
        self.notify_status(targets)

    async def run(self) -> None:
        """Until cancelled: connect, publish, reconnect with backoff after any failure."""
        self._paho_log.addFilter(self._socket_errors)
        try:
            await self._connect_forever()
        finally:
            self._paho_log.removeFilter(self._socket_errors)

    async def _connect_forever(self) -> None:
        delay = INITIAL_BACKOFF
        while True:  # ends by cancellation only
            established = False
            self._socket_errors.last = None
            try:
                context = None
                if self._settings.tls is not None:
                    context = await asyncio.to_thread(tls_context, self._settings.tls)
                client = self._client(context)
                async with client:
                    established = True
                    self._on_connected()
                    delay = INITIAL_BACKOFF
                    await self._serve_until_lost(client)
            except Exception as exc:
                if self._stopping:  # a failing DISCONNECT while stopping must still stop
                    raise asyncio.CancelledError from exc
                self._on_failure(exc, established=established)
            finally:
                self.stats.connected = False
            await self._back_off(delay)
            delay = min(delay * 2, self._settings.max_backoff)

    def _client(self, context: ssl.SSLContext | None) -> aiomqtt.Client:
        settings = self._settings
        will = aiomqtt.Will(daemon_topic(settings.topic_prefix),
                            daemon_payload("offline", settings.client_id, reason="connection lost"),
                            qos=1, retain=True)
        client = aiomqtt.Client(
            settings.host, settings.port, identifier=settings.client_id,
            username=settings.username,
            password=settings.password.reveal() if settings.password is not None else None,
            will=will, keepalive=max(1, round(settings.keepalive)),
            timeout=settings.connect_timeout,  # the wait for CONNACK
            tls_context=context, max_inflight_messages=BATCH_SIZE, logger=self._paho_log,
        )
        # The TCP connect and TLS handshake run in paho, whose own timeout aiomqtt does not set.
        client._client.connect_timeout = settings.connect_timeout  # private: no public way
        # aiomqtt warns past 10 publishes awaiting their PUBACK; a whole batch is the design.
        client.pending_calls_threshold = BATCH_SIZE + 1
        return client

    def _on_connected(self) -> None:
        self.stats.connected = True
        self.stats.connects["ok"] += 1
        self._last_logged_error = None
        log.info("connected to MQTT broker %s:%d as %s", self._settings.host, self._settings.port,
                 self._settings.client_id)

    def _on_failure(self, exc: Exception, *, established: bool) -> None:
        broker = f"MQTT broker {self._settings.host}:{self._settings.port}"
        unexpected = not isinstance(exc, aiomqtt.MqttError | OSError | TlsSetupError)
        socket_error = self._socket_errors.last
        if not established:
            result, message = describe_failure(exc, self._settings, socket_error)
            self.stats.connects[result] += 1
        elif unexpected:  # a bug or a failing outbox, not the broker: worth a traceback
            message = f"MQTT publisher failed, reconnecting to {broker}: {exc!r}"
        else:
            message = f"lost the connection to {broker}: {_chain_text(socket_error or exc)}"
        self.stats.last_error = message
        # ERROR once per distinct error, so an outage of hours is one line, not thousands.
        if message == self._last_logged_error:
            log.debug("%s", message)
            return
        self._last_logged_error = message
        log.error("%s", message, exc_info=exc if unexpected else None)

    async def _back_off(self, delay: float) -> None:
        """Sleeps `delay` plus jitter, so that daemons of many provinces that lost one broker
        do not all return at once. Meanwhile the outbox gauge follows every notify: that the
        events pile up is what an operator must see while the broker is away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay + random.uniform(0, delay / 2)  # noqa: S311 - not crypto
        while True:  # at most one round per notify, until the deadline
            await self._count_outbox()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            # Clearing loses nothing: the outbox is drained first thing after connecting.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def _count_outbox(self) -> None:
        try:
            self.stats.outbox_pending = await self._outbox.pending_count()
        except Exception:  # a gauge update must never stop the reconnecting
            log.debug("could not count the outbox", exc_info=True)

    async def _serve_until_lost(self, client: aiomqtt.Client) -> None:
        """Publishes until the connection fails (raises) or the task is cancelled."""
        work = asyncio.create_task(self._serve(client), name="mqtt-publish")
        watch = asyncio.create_task(self._watch(client), name="mqtt-watch")
        try:
            done, _ = await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._stopping = True
            await _cancel(work, watch)
            await self._say_goodbye(client)
            raise
        await _cancel(work, watch)
        # Both end only by raising; a lost connection explains a failed publish, not vice versa.
        (watch if watch in done else work).result()
        raise aiomqtt.MqttError("the publisher stopped without an error")

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raises when the connection is lost. Nothing is subscribed, so no message comes: the
        iterator is simply aiomqtt's public way to wait for a disconnection."""
        async for _ in client.messages:
            pass
        raise aiomqtt.MqttError("the connection closed")

    async def _serve(self, client: aiomqtt.Client) -> None:
        settings = self._settings
        online = daemon_payload("online", settings.client_id, since=time.time())
        await self._publish(client, [_Message("daemon", daemon_topic(settings.topic_prefix),
                                              online, retain=True)])
        # The broker may have restarted without persistence and lost every retained status.
        self._dirty.update(self._statuses())
        while True:  # ends when the connection fails or the task is cancelled
            self._wake.clear()
            await self._drain_outbox(client)
            await self._publish_statuses(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RECHECK_INTERVAL)

    async def _drain_outbox(self, client: aiomqtt.Client) -> None:
        topic = events_topic(self._settings.topic_prefix)
        for _ in range(MAX_BATCHES_PER_ROUND):
            events = await self._outbox.pending(BATCH_SIZE)
            if events:
                # One topic and ascending message ids: the broker forwards them in this order.
                await self._publish(client, [_Message("event", topic, event_payload(e), False)
                                             for e in events])
                await self._outbox.delivered([e.seq for e in events if e.seq is not None])
            if len(events) < BATCH_SIZE:
                break
        else:
            self._wake.set()  # more to drain: come back after the statuses had their turn
        self.stats.outbox_pending = await self._outbox.pending_count()

    async def _publish_statuses(self, client: aiomqtt.Client) -> None:
        if not self._dirty:
            return
        current = self._statuses()
        targets = sorted(self._dirty)
        self._dirty.clear()
        published = 0
        try:
            for start in range(0, len(targets), BATCH_SIZE):
                chunk = targets[start:start + BATCH_SIZE]
                await self._publish(client, [m for t in chunk
                                             if (m := self._status_message(t, current.get(t)))])
                published += len(chunk)
        finally:  # whatever was not acknowledged is published after the reconnect
            self._dirty.update(targets[published:])

    def _status_message(self, target: str, status: TargetStatus | None) -> _Message | None:
        try:
            topic = target_topic(self._settings.topic_prefix, target)
        except ValueError as exc:  # the inventory's id rules make this impossible; never loop on it
            log.error("not publishing the status of %r: %s", target, exc)
            return None
        # An empty retained message deletes the retained status of a removed target.
        payload = status_payload(status) if status is not None else b""
        return _Message("status", topic, payload, retain=True)

    async def _publish(self, client: aiomqtt.Client, messages: Sequence[_Message]) -> None:
        """All at once (QoS 1); returns when the broker acknowledged every one."""
        results = await asyncio.gather(*(self._publish_one(client, m) for m in messages),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _publish_one(self, client: aiomqtt.Client, message: _Message) -> None:
        try:
            await client.publish(message.topic, message.payload, qos=1, retain=message.retain,
                                 timeout=self._publish_timeout)
        except aiomqtt.MqttError:
            self.stats.publish_failures += 1
            raise
        except asyncio.CancelledError:
            if not self._stopping:  # cut off by a lost connection
                self.stats.publish_failures += 1
            raise
        self.stats.published[message.kind] += 1

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """Retained "offline"/"stopped" before a clean DISCONNECT, which discards the will."""
        deadline = time.monotonic() + STOP_TIMEOUT
        settings = self._settings
        stopped = _Message("daemon", daemon_topic(settings.topic_prefix),
                           daemon_payload("offline", settings.client_id, reason="stopped"), True)
        try:
            await client.publish(stopped.topic, stopped.payload, qos=1, retain=True,
                                 timeout=STOP_TIMEOUT / 2)
            self.stats.published["daemon"] += 1
        except aiomqtt.MqttError as exc:
            log.warning("could not publish the stopped status to the MQTT broker: %s", exc)
        # Bounds the wait for the DISCONNECT to go out when `async with client` exits.
        client.timeout = max(0.1, deadline - time.monotonic())


async def _cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    # Collect their outcomes, so no "exception was never retrieved" is logged.
    await asyncio.gather(*tasks, return_exceptions=True)
