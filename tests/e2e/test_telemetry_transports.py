"""Sensor readings over the raw TCP line protocol and MQTT, through real sockets and brokers.

Readings reach the real telemetry service on SQLite and PostgreSQL; the MQTT tests use the
system Mosquitto (127.0.0.1:1883) with a topic prefix and client ids of their own, and a private
Mosquitto process where the broker itself must die.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from storekeeper.accounts import devices as accounts_devices
from storekeeper.accounts import security
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.telemetry import service as telemetry_service
from storekeeper.telemetry.mqtt import MqttOptions, MqttSubscriber, run_one_per_host
from storekeeper.telemetry.readings import Verdict
from storekeeper.telemetry.tcp import TcpLimits, TcpTelemetryServer
from tests.conftest import Actors, start_server, stop_server
from tests.processes import free_port, stop

WAREHOUSE = "COLD"
SYSTEM_BROKER = "mqtt://127.0.0.1:1883"
LIVENESS_S = 15.0  # how long a test waits for something that must happen (not a speed bound)


# --- setup --------------------------------------------------------------------------------


def _sensor_and_token(container: Container, actors: Actors, sensors: int = 1) -> tuple[str, str]:
    """A warehouse with ``sensors`` sensors (``<id>``, ``<id>-1``, ...) and a device token."""
    sensor = f"s-{uuid.uuid4().hex[:8]}"
    with container.db.transaction() as session:
        if not inventory_warehouses.has_warehouse(session, code=WAREHOUSE):
            inventory_warehouses.create_warehouse(
                session, code=WAREHOUSE, name="Cold store", lat=52.5, lon=13.4
            )
        for n in range(sensors):
            telemetry_service.create_sensor(
                session,
                id=sensor if n == 0 else f"{sensor}-{n}",
                warehouse=WAREHOUSE,
                room="freezer-1",
                min_temp_c=-25.0,
                max_temp_c=-15.0,
            )
    device = actors.make(Role.DEVICE, warehouses=[WAREHOUSE])
    return sensor, device.headers["Authorization"].removeprefix("Bearer ")


def _stored(container: Container, sensor: str) -> int:
    """Raw readings of ``sensor`` in the store."""
    now = datetime.now(UTC)
    with container.db.reading() as session:
        return container.telemetry_store.raw(
            session, sensor=sensor, start=now - timedelta(days=1), end=now + timedelta(hours=1)
        )


def _rejected(transport: str, reason: str) -> float:
    labels = {"transport": transport, "outcome": "rejected", "reason": reason}
    return REGISTRY.get_sample_value("storekeeper_telemetry_readings_total", labels) or 0.0


async def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIVENESS_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


def _ts(minutes_ago: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


def _subscriber(container: Container, options: MqttOptions) -> MqttSubscriber:
    return MqttSubscriber(options, ingest=container.ingest, auth=container.device_authenticator())


# --- TCP ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _tcp_server(
    container: Container, *, recheck_s: float = 30.0, **limits: float
) -> AsyncIterator[TcpTelemetryServer]:
    server = TcpTelemetryServer(
        host="127.0.0.1",
        port=0,
        ingest=container.ingest,
        limits=TcpLimits(**limits),  # type: ignore[arg-type]
        auth=container.device_authenticator(recheck_s=recheck_s),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class _Peer:
    """A TCP client speaking the line protocol."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, token: str | None = None) -> _Peer:
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        if token is not None:
            assert await peer.ask(f"AUTH {token}") == ["ok"]
        return peer

    async def send(self, *lines: str | bytes) -> None:
        self.writer.write(
            b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines)
        )
        await self.writer.drain()

    async def answers(self, count: int) -> list[str]:
        lines = []
        for _ in range(count):
            line = await asyncio.wait_for(self.reader.readline(), LIVENESS_S)
            lines.append(line.decode().rstrip("\n"))
        return lines

    async def ask(self, *lines: str | bytes) -> list[str]:
        await self.send(*lines)
        return await self.answers(len(lines))

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), LIVENESS_S) == b""

    def close(self) -> None:
        self.writer.close()


def _run(scenario: Awaitable[None]) -> None:
    asyncio.run(scenario)  # type: ignore[arg-type]


def test_tcp_readings_are_stored_once_and_answered_in_order(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    first = _ts(3)

    async def scenario() -> None:
        async with _tcp_server(container) as server:
            peer = await _Peer.open(server.port, token)
            await peer.send(
                f"{sensor},{first.isoformat()},-18.5,40",
                f"{sensor},{int(_ts(2).timestamp())},-18.0",
                f" {sensor} , {_ts(1).strftime('%Y-%m-%dT%H:%M:%S')} , -17.5 ",  # naive: UTC
                f"{sensor},{first.timestamp()},-18.5,40",  # the first again: stored once
                f"{sensor},yesterday,-18",
                "nope-sensor,1700000000,-18",
                f"{sensor},{_ts(1).timestamp()},-500",
                "",  # a blank line is a keep-alive and gets no answer
                f"{sensor},{_ts(0.5).timestamp()},nan",
            )
            answers = await peer.answers(8)
            peer.close()
        assert answers == [
            "ok",
            "ok",
            "ok",
            "ok",
            "err bad_timestamp",
            "err unknown_sensor",
            "err impossible_temperature",
            "err bad_number",
        ]

    _run(scenario())
    assert _stored(container, sensor) == 3


def test_tcp_pipelined_upload_is_answered_in_full_before_close(
    container: Container, actors: Actors
) -> None:
    """``(echo AUTH ...; cat readings.csv) | nc``: everything in one write, then end of input."""
    sensor, token = _sensor_and_token(container, actors)
    lines = [f"{sensor},{_ts(n / 10).timestamp()},-18" for n in range(1, 301)]
    upload = "\n".join([f"AUTH {token}", *lines, "bad"])  # the last line has no newline

    async def scenario() -> None:
        async with _tcp_server(container) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upload.encode())
            writer.write_eof()
            answers = (await asyncio.wait_for(reader.read(), LIVENESS_S)).decode().splitlines()
            writer.close()
        assert answers == ["ok"] * 301 + ["err unparseable"]

    _run(scenario())
    assert _stored(container, sensor) == 300


def test_tcp_bad_auth_gets_err_and_is_closed(container: Container, actors: Actors) -> None:
    _, token = _sensor_and_token(container, actors)
    access = actors.make(Role.MANAGER).headers["Authorization"].removeprefix("Bearer ")

    async def scenario() -> None:
        async with _tcp_server(container) as server:
            for first_line, reason in [
                ("AUTH not-a-token", "err invalid_token"),
                (f"AUTH {access}", "err invalid_token"),  # a person's token is not a device's
                (f"{token}", "err auth_required"),
                ("sensor,1700000000,4", "err auth_required"),
            ]:
                peer = await _Peer.open(server.port)
                assert (await peer.ask(first_line))[0].split()[0:2] == reason.split()[0:2]
                assert await peer.closed_by_server()

    _run(scenario())


def test_tcp_long_lines_and_binary_garbage_get_err_and_are_counted(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    before = _rejected("tcp", "unparseable"), _rejected("tcp", "line_too_long")

    async def scenario() -> None:
        async with _tcp_server(container, max_line_bytes=128) as server:
            peer = await _Peer.open(server.port, token)
            await peer.send(b"x" * 5000)  # far over the limit, answered once
            await peer.send(
                b"\xff\xfe\x00garbage\x01", b"a,b", f"{sensor},{_ts(1).timestamp()},-20"
            )
            assert await peer.answers(4) == [
                "err line_too_long",
                "err unparseable",
                "err unparseable",
                "ok",
            ]
            peer.close()

    _run(scenario())
    assert _rejected("tcp", "unparseable") == before[0] + 2
    assert _rejected("tcp", "line_too_long") == before[1] + 1
    assert _stored(container, sensor) == 1


def test_tcp_poison_lines_are_refused_alone_and_their_batch_is_stored(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)

    async def scenario() -> None:
        async with _tcp_server(container) as server:
            peer = await _Peer.open(server.port, token)
            await peer.send(
                f"{sensor},0001-01-01T00:00:00+14:00,-20",  # leaves year 1 when moved to UTC
                f"{sensor},9999-12-31T23:59:59-14:00,-20",
                f"{sensor},{_ts(1).timestamp()},{'9' * 400}",
                f"{sensor},{'9' * 400},-20",
                f"{sensor},{_ts(1).timestamp()},-20",
            )
            assert await peer.answers(5) == [
                "err bad_timestamp",
                "err bad_timestamp",
                "err bad_number",
                "err bad_timestamp",
                "ok",
            ]
            assert await peer.ask(f"{sensor},{_ts(2).timestamp()},-21") == ["ok"]
            peer.close()

    _run(scenario())
    assert _stored(container, sensor) == 2


def _misbehave(
    port: int, token: str, junk: bytes, done: threading.Event, *, read: bool
) -> threading.Thread:
    """A peer in a thread of its own that authenticates, then sends ``junk`` until ``done``;
    it reads (and drops) its answers only if ``read``."""

    def drain(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def run() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock, contextlib.suppress(OSError):
            if read:
                threading.Thread(target=drain, args=(sock,), daemon=True).start()
            sock.sendall(f"AUTH {token}\n".encode())
            while not done.is_set():
                sock.sendall(junk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_tcp_misbehaving_peers_cannot_stall_a_good_one(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    done = threading.Event()

    async def scenario() -> None:
        # Timeouts well above what the good peer's five answers take on a busy machine.
        limits = {"idle_timeout_s": 5.0, "write_timeout_s": 4.0, "auth_timeout_s": 2.0}
        async with _tcp_server(container, **limits) as server:
            idle = await _Peer.open(server.port, token)
            silent_before_auth = await _Peer.open(server.port)
            garbage = _misbehave(server.port, token, b"\x00\xff\x13,,\n" * 4096, done, read=True)
            # Short junk lines get longer answers, which pile up unread.
            non_reader = _misbehave(server.port, token, b"x\n" * 10_000, done, read=False)
            good = await _Peer.open(server.port, token)
            for n in range(5):
                assert await good.ask(f"{sensor},{_ts(1 + n / 10).timestamp()},-20") == ["ok"]
            assert garbage.is_alive()
            assert non_reader.is_alive()
            good.close()
            # Then the silent peers are cut off (no complete line, or answers unread, in time).
            assert await idle.answers(1) == ["err idle_timeout"]
            assert await idle.closed_by_server()
            assert (await silent_before_auth.answers(1))[0].startswith("err")
            await _eventually(lambda: not non_reader.is_alive(), "the non-reader cut off")
            assert garbage.is_alive()  # answered err after err, and reading them: still served
            done.set()
            await _eventually(lambda: server.connections == 0, "every connection closed")
            again = await _Peer.open(server.port, token)
            assert await again.ask(f"{sensor},{_ts(2).timestamp()},-20") == ["ok"]
            again.close()

    try:
        _run(scenario())
    finally:
        done.set()
    assert _stored(container, sensor) == 6


def test_tcp_refuses_connections_over_the_limit_politely(
    container: Container, actors: Actors
) -> None:
    _, token = _sensor_and_token(container, actors)

    async def scenario() -> None:
        async with _tcp_server(container, max_connections=2) as server:
            first = await _Peer.open(server.port, token)
            second = await _Peer.open(server.port, token)
            extra = await _Peer.open(server.port)
            assert await extra.answers(1) == ["err too_many_connections"]
            assert await extra.closed_by_server()
            first.close()
            await _eventually(lambda: server.connections == 1, "a slot frees up")
            again = await _Peer.open(server.port, token)
            again.close()
            second.close()

    _run(scenario())


def test_tcp_auth_timeout_and_revoked_device(container: Container, actors: Actors) -> None:
    sensor, token = _sensor_and_token(container, actors)
    claims = security.decode_token(token, key=container.signing_key, expected_types=("device",))

    async def scenario() -> None:
        async with _tcp_server(container, recheck_s=0.0, auth_timeout_s=0.3) as server:
            slow = await _Peer.open(server.port)
            assert await slow.answers(1) == ["err auth_timeout"]
            peer = await _Peer.open(server.port, token)
            assert await peer.ask(f"{sensor},{_ts(1).timestamp()},-20") == ["ok"]
            with container.db.transaction() as session:
                accounts_devices.revoke_device(
                    session, device_id=claims.session_id, actor_id=uuid.uuid4()
                )
            assert await peer.ask(f"{sensor},{_ts(2).timestamp()},-20") == ["err invalid_token"]
            assert await peer.closed_by_server()

    _run(scenario())
    assert _stored(container, sensor) == 1


# --- MQTT ---------------------------------------------------------------------------------


def _options(url: str = SYSTEM_BROKER, **overrides: object) -> MqttOptions:
    tag = uuid.uuid4().hex[:10]
    fields: dict[str, object] = {
        "url": url,
        "client_id": f"sk-test-{tag}",
        "topic_prefix": f"sk-test-{tag}",
        "shared_group": f"g{tag}",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    return MqttOptions(**{**fields, **overrides})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _subscribed(container: Container, options: MqttOptions) -> AsyncIterator[MqttSubscriber]:
    subscriber = _subscriber(container, options)
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.subscribed.wait(), LIVENESS_S)
        yield subscriber
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _publish(url: str, topic: str, *payloads: object) -> None:
    port = int(url.rsplit(":", 1)[1])
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
        for payload in payloads:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            await pub.publish(topic, body, qos=1)


def _topic(options: MqttOptions, sensor: str) -> str:
    return f"{options.topic_prefix}/sensors/{sensor}/readings"


def _reading(token: str, minutes_ago: float, temp_c: float = -20.0) -> dict[str, object]:
    return {"token": token, "ts": _ts(minutes_ago).isoformat(), "temp_c": temp_c, "humidity": 50}


def test_mqtt_readings_are_stored_once_and_bad_payloads_counted(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    options = _options()
    before = _rejected("mqtt", "unparseable"), _rejected("mqtt", "invalid_token")

    async def scenario() -> None:
        async with _subscribed(container, options):
            batch = {"token": token, "readings": [
                {"ts": _ts(3).timestamp(), "temp_c": -19.0},
                {"ts": int(_ts(2).timestamp()), "temp_c": -18.0, "humidity": 45.5},
            ]}  # fmt: skip
            await _publish(
                options.url,
                _topic(options, sensor),
                _reading(token, 1),
                _reading(token, 1),  # the same reading twice: stored once
                batch,
                b"{not json",
                {"ts": 1, "temp_c": 3},
                _reading("forged-token", 4),
            )
            await _eventually(lambda: _rejected("mqtt", "invalid_token") > before[1], "bad token")
            await _eventually(lambda: _stored(container, sensor) == 3, "three readings stored")

    _run(scenario())
    assert _stored(container, sensor) == 3
    assert _rejected("mqtt", "unparseable") == before[0] + 2


def test_mqtt_poison_payloads_are_dropped_and_the_subscriber_keeps_storing(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    options = _options()
    before = {r: _rejected("mqtt", r) for r in ("bad_number", "bad_timestamp", "too_deep")}
    huge = "9" * 400
    poison = [
        f'{{"token":"{token}","ts":{huge},"temp_c":-20}}'.encode(),  # OverflowError once
        f'{{"token":"{token}","ts":1700000000,"temp_c":{huge}}}'.encode(),
        b'{"token":"t","readings":' + b"[" * 20_000 + b"]" * 20_000 + b"}",  # RecursionError
        b"[" * 30_000,
    ]

    async def scenario() -> None:
        subscriber = _subscriber(container, options)
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), LIVENESS_S)
            await _publish(options.url, _topic(options, sensor), *poison, _reading(token, 1))
            await _eventually(lambda: _stored(container, sensor) == 1, "the valid reading stored")
            await _eventually(
                lambda: _rejected("mqtt", "too_deep") >= before["too_deep"] + 2, "deep refused"
            )
            assert not task.done(), "the subscriber stopped"
            assert subscriber.subscribed.is_set()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    _run(scenario())
    assert _rejected("mqtt", "bad_timestamp") == before["bad_timestamp"] + 1
    assert _rejected("mqtt", "bad_number") == before["bad_number"] + 1


def test_mqtt_shared_subscription_splits_without_storing_twice(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    first = _options(connections=3)  # three connections of one process, and another process
    second = _options(topic_prefix=first.topic_prefix, shared_group=first.shared_group)

    async def scenario() -> None:
        async with _subscribed(container, first), _subscribed(container, second):
            await _publish(
                first.url, _topic(first, sensor), *[_reading(token, n / 10) for n in range(1, 41)]
            )
            await _eventually(lambda: _stored(container, sensor) == 40, "forty readings stored")
            await asyncio.sleep(0.5)  # a second copy would arrive now, if there were one

    _run(scenario())
    with container.db.reading() as session:
        (view,) = [v for v in telemetry_service.list_sensors(session) if v.sensor.id == sensor]
    assert view.counts.get("stored") == 40
    assert not view.counts.get("duplicate")


def test_mqtt_waits_out_a_database_outage_without_losing_readings(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    options = _options()
    failures = [OperationalError("INSERT", {}, ConnectionError("database restarting"))] * 2
    attempts: list[int] = []

    def flaky_ingest(*args: Any, **kwargs: Any) -> list[Verdict]:
        attempts.append(len(args[1]))
        if failures:
            raise failures.pop()
        return container.ingest(*args, **kwargs)

    async def scenario() -> None:
        subscriber = MqttSubscriber(
            options, ingest=flaky_ingest, auth=container.device_authenticator()
        )
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), LIVENESS_S)
            await _publish(options.url, _topic(options, sensor), _reading(token, 1))
            await _eventually(lambda: _stored(container, sensor) == 1, "stored after the outage")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    _run(scenario())
    assert len(attempts) == 3  # two failed attempts, then stored


def test_mqtt_a_reading_that_trips_a_bug_is_dropped_alone_not_retried_for_ever(
    container: Container, actors: Actors
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    options = _options()
    before = _rejected("mqtt", "internal_error")

    def buggy_ingest(*args: Any, **kwargs: Any) -> list[Verdict]:
        if any(reading.temp_c == -13.0 for reading in args[1]):
            raise ValueError("a bug this reading trips")
        return container.ingest(*args, **kwargs)

    async def scenario() -> None:
        subscriber = MqttSubscriber(
            options, ingest=buggy_ingest, auth=container.device_authenticator()
        )
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), LIVENESS_S)
            batch = {"token": token, "readings": [
                {"ts": _ts(3).timestamp(), "temp_c": -13.0},
                {"ts": _ts(2).timestamp(), "temp_c": -19.0},
            ]}  # fmt: skip
            await _publish(options.url, _topic(options, sensor), batch, _reading(token, 1))
            await _eventually(lambda: _stored(container, sensor) == 2, "the others stored")
            await _eventually(lambda: _rejected("mqtt", "internal_error") == before + 1, "dropped")
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    _run(scenario())


def test_mqtt_one_subscriber_per_client_id_on_a_host(
    container: Container, actors: Actors, tmp_path: Path
) -> None:
    """Workers of one ``serve`` share a lock: one subscribes, another takes over when it dies."""
    options = _options()
    lock = tmp_path / "mqtt.lock"

    async def scenario() -> None:
        first, second = _subscriber(container, options), _subscriber(container, options)
        first_task = asyncio.create_task(run_one_per_host(first, lock, poll_s=0.1))
        await asyncio.wait_for(first.subscribed.wait(), LIVENESS_S)
        second_task = asyncio.create_task(run_one_per_host(second, lock, poll_s=0.1))
        await asyncio.sleep(0.5)
        assert not second.subscribed.is_set()
        first_task.cancel()
        await asyncio.gather(first_task, return_exceptions=True)
        await asyncio.wait_for(second.subscribed.wait(), LIVENESS_S)
        second_task.cancel()
        await asyncio.gather(second_task, return_exceptions=True)

    _run(scenario())


def _broker(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """A private Mosquitto on ``port`` that keeps sessions on disk across restarts."""
    (tmp_path / "mosquitto").mkdir(exist_ok=True)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"persistence true\npersistence_location {tmp_path / 'mosquitto'}/\n"
    )
    log = (tmp_path / "mosquitto.log").open("ab")
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + LIVENESS_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError((tmp_path / "mosquitto.log").read_text())
        time.sleep(0.05)


def test_mqtt_reconnects_after_the_broker_dies_and_gets_what_was_sent_while_down(
    container: Container, actors: Actors, tmp_path: Path
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    port = free_port()
    options = _options(f"mqtt://127.0.0.1:{port}")
    topic = _topic(options, sensor)
    broker = _broker(tmp_path, port)

    async def scenario() -> None:
        nonlocal broker
        async with _subscribed(container, options) as subscriber:
            await _publish(options.url, topic, _reading(token, 1))
            await _eventually(lambda: _stored(container, sensor) == 1, "first reading")
            broker.kill()  # kill -9: no goodbye to anyone
            broker.wait()
            await _eventually(lambda: not subscriber.subscribed.is_set(), "disconnect noticed")
            broker = _broker(tmp_path, port)
            await asyncio.wait_for(subscriber.subscribed.wait(), LIVENESS_S)
            await _publish(options.url, topic, _reading(token, 2))
            await _eventually(lambda: _stored(container, sensor) == 2, "reading after reconnect")
        # The subscriber is down now; QoS 1 messages wait in its persistent session.
        await _publish(options.url, topic, _reading(token, 3), _reading(token, 4))
        async with _subscribed(container, options):
            await _eventually(lambda: _stored(container, sensor) == 4, "readings sent while down")

    try:
        _run(scenario())
    finally:
        stop(broker)


# --- the served process -------------------------------------------------------------------


@pytest.mark.live
def test_served_app_listens_on_tcp_and_mqtt(
    container: Container, actors: Actors, settings: Settings, tmp_path: Path
) -> None:
    sensor, token = _sensor_and_token(container, actors)
    prefix = f"sk-test-{uuid.uuid4().hex[:10]}"
    served = settings.model_copy(
        update={
            "telemetry_port": free_port(),
            "mqtt_url": SYSTEM_BROKER,
            "mqtt_topic_prefix": prefix,
            "broker_prefix": prefix,
        }
    )
    server = start_server(served, tmp_path / "server.log")

    async def scenario() -> None:
        await _eventually(lambda: _connects(served.telemetry_port), "TCP listener up")
        peer = await _Peer.open(served.telemetry_port, token)
        assert await peer.ask(f"{sensor},{_ts(1).timestamp()},-20") == ["ok"]
        peer.close()
        # The subscriber may still be connecting: publish until the reading lands.
        topic = f"{prefix}/sensors/{sensor}/readings"
        deadline = time.monotonic() + LIVENESS_S
        while _stored(container, sensor) < 2 and time.monotonic() < deadline:
            await _publish(SYSTEM_BROKER, topic, _reading(token, 2))
            await asyncio.sleep(0.2)

    try:
        _run(scenario())
        assert _stored(container, sensor) == 2
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        stop_server(server)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False
