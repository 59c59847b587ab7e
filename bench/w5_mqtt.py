"""W5 telemetry (MQTT part): readings stored per second through the MQTT subscriber.

``storekeeper serve`` subscribes to the system Mosquitto (127.0.0.1:1883) under a topic prefix and
client id of this run. 200 simulated sensors (``PUBLISHERS`` paho clients of 50 sensors each,
one MQTT connection per client, as a gateway would hold) publish one reading per message, QoS 1,
for the slice; the figure is readings stored / seconds from the first publish until the last
published reading is in the database (so the subscriber's backlog is paid within the slice).

Ceiling in the same run, in turns with the app (A B B A): W5's, the same kind of rows inserted
with one ``executemany`` in one transaction through the raw driver.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench import infra, report, schedule
from bench.infra import BenchDatabase, Server
from bench.options import Options
from bench.w3 import device_token

# Seeding, the ceiling and the summary are the HTTP part's, so both parts measure against the
# same floor and report alike.
from bench.w5 import SENSORS, WAREHOUSE, alternate_with_ceiling, finish, seed_sensors, sensor_id
from storekeeper.bootstrap import Container
from storekeeper.telemetry.models import Reading

BROKER = ("127.0.0.1", 1883)
PUBLISHERS = 4
DRAIN_TIMEOUT_S = 120.0
BACKLOG = 800  # readings published but not yet stored, at most


class _Rows:
    """Counts ``telemetry_reading`` rows through one container kept open for the run."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def count(self) -> int:
        """Rows in the table now."""
        with self._container.db.reading() as session:
            return int(session.scalar(select(func.count()).select_from(Reading)) or 0)

    def wait_for(self, expected: int) -> bool:
        """Whether the table reaches ``expected`` rows within ``DRAIN_TIMEOUT_S``."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.count() < expected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class _Publishers:
    """``PUBLISHERS`` paho clients, each publishing for its share of the sensors.

    Closed loop: publishing pauses while more than ``BACKLOG`` readings are published but not
    yet stored, because the broker drops QoS 1 messages past a subscriber's queue limit
    (Mosquitto's ``max_queued_messages``, 1000): the figure is what is stored at a sustained
    rate, not what a broker can buffer.
    """

    def __init__(self, prefix: str, token: str, rows: _Rows) -> None:
        self.prefix, self.token, self.rows = prefix, token, rows
        self.start = (datetime.now(UTC) - timedelta(days=6)).replace(microsecond=0)
        self.sent = 0  # readings published so far
        self._tick = 0  # each round of all sensors gets its own millisecond

    def publish_for(self, seconds: float) -> int:
        """Publish round after round for ``seconds``; the number of readings published."""
        deadline = time.perf_counter() + seconds
        tick_base = self._tick
        base_rows = self.rows.count()
        lock = threading.Lock()
        state = {"sent": 0, "stored": 0, "rounds": 0}
        running = threading.Event()
        running.set()

        def monitor() -> None:
            while running.is_set():
                stored = self.rows.count() - base_rows
                with lock:
                    state["stored"] = stored
                time.sleep(0.02)

        def publisher(index: int) -> None:
            client = paho.Client(
                CallbackAPIVersion.VERSION2, client_id=f"{self.prefix}-pub-{index}"
            )
            client.max_inflight_messages_set(1000)
            client.connect(*BROKER)
            client.loop_start()
            sensors = [sensor_id(i) for i in range(index, SENSORS, PUBLISHERS)]
            infos: list[paho.MQTTMessageInfo] = []
            rounds = 0
            while time.perf_counter() < deadline:
                with lock:
                    backlog = state["sent"] - state["stored"]
                if backlog > BACKLOG:
                    time.sleep(0.002)
                    continue
                ts = (self.start + timedelta(milliseconds=tick_base + rounds)).isoformat()
                for sensor in sensors:
                    body = json.dumps(
                        {"token": self.token, "ts": ts, "temp_c": 4.5, "humidity": 60.0}
                    )
                    topic = f"{self.prefix}/sensors/{sensor}/readings"
                    infos.append(client.publish(topic, body, qos=1))
                with lock:
                    state["sent"] += len(sensors)
                rounds += 1
                infos = [info for info in infos if not info.is_published()]
            for info in infos:
                info.wait_for_publish(DRAIN_TIMEOUT_S)
            client.loop_stop()
            client.disconnect()
            with lock:
                state["rounds"] = max(state["rounds"], rounds)

        watcher = threading.Thread(target=monitor)
        watcher.start()
        threads = [threading.Thread(target=publisher, args=(i,)) for i in range(PUBLISHERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        running.clear()
        watcher.join()
        self._tick = tick_base + state["rounds"] + 1
        self.sent += state["sent"]
        return state["sent"]


def _serve(db: BenchDatabase, opts: Options, prefix: str, name: str) -> Any:
    port = infra.free_port()
    extra = {
        "STOREKEEPER_MQTT_URL": f"mqtt://{BROKER[0]}:{BROKER[1]}",
        "STOREKEEPER_MQTT_TOPIC_PREFIX": prefix,
        "STOREKEEPER_MQTT_CLIENT_ID": prefix,
        "STOREKEEPER_BROKER_PREFIX": prefix,
        "STOREKEEPER_TELEMETRY_PORT": str(infra.free_port()),
    }
    return infra.serve(
        infra.storekeeper_command(port, opts.workers),
        port=port,
        env=infra.server_env(db, extra),
        workdir=opts.workdir,
        name=name,
    )


def _ready(rows: _Rows, publishers: _Publishers) -> None:
    """Publish until the subscriber stores: it connects after the HTTP side is up."""
    deadline = time.monotonic() + 30
    while rows.count() == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the MQTT subscriber stored nothing within 30 s")
        publishers.publish_for(0.01)
        time.sleep(0.5)
    rows.wait_for(publishers.sent)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W5-mqtt on ``backend``; returns the results document and whether it was clean."""
    report.heading(f"W5 telemetry over MQTT on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    problems: list[str] = []
    app_runs: list[dict[str, Any]] = []
    prefix = f"sk-bench-w5-{uuid.uuid4().hex[:8]}"
    with infra.fresh_database(backend, "w5mqtt", opts.workdir) as db:
        admin = seed_sensors(db)
        server: Server
        with (
            _serve(db, opts, prefix, f"W5-mqtt-{backend}-app") as server,
            infra.container_for(db) as container,
        ):
            token = device_token(server, admin, label="w5-mqtt", scope=f"warehouse:{WAREHOUSE}")
            rows = _Rows(container)
            publishers = _Publishers(prefix, token, rows)
            _ready(rows, publishers)
            if opts.warmup_s:
                publishers.publish_for(opts.warmup_s)
                rows.wait_for(publishers.sent)

            def app_slice(_: int) -> None:
                before = rows.count()
                started = time.perf_counter()
                published = publishers.publish_for(opts.slice_s)
                drained = rows.wait_for(before + published)
                seconds = time.perf_counter() - started
                stored = rows.count() - before
                app_runs.append(
                    {
                        "seconds": round(seconds, 3),
                        "published": published,
                        "stored": stored,
                        "readings_per_s": round(stored / seconds, 1),
                    }
                )
                if not drained or stored != published:
                    problems.append(f"{published} readings published, {stored} stored")

            ceiling_runs = alternate_with_ceiling(db, app_slice, opts.rounds)
            held = rows.count()
    return finish(
        backend,
        workload="W5-mqtt",
        name="telemetry-mqtt",
        app=("app (MQTT subscriber)", f"{SENSORS} sensors, 1 reading per message, QoS 1"),
        clean_label="every reading stored once",
        runs=(app_runs, ceiling_runs),
        rows=(held, publishers.sent, "published"),
        problems=problems,
        setup={
            "sensors": SENSORS,
            "publishers": PUBLISHERS,
            "message": "one reading per message, JSON, QoS 1",
            "broker": "system Mosquitto on 127.0.0.1:1883",
            "workers": opts.workers,
            "slice_s": opts.slice_s,
            "rounds": opts.rounds,
            "ceiling": "W5's: rows into telemetry_reading with one executemany in one "
            "transaction through the raw driver, in turns with the app (A B B A)",
        },
        busy=busy,
    )
