"""Distributed mode with real brokers: PostgreSQL, RabbitMQ or Redis, API and worker processes.

Each test gets its own queue names (``STOREKEEPER_BROKER_PREFIX``), so tests running in parallel
share the brokers without seeing each other's messages. Processes are killed with SIGKILL, the
broker is taken down for real (a Redis server of the test's own).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kombu import Connection
from sqlalchemy import func, select, update

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.events.models import OutboxEvent
from storekeeper.events.relay import processed_by_consumer
from storekeeper.events.relay import status as relay_status
from storekeeper.tasks.celery_app import delete_broker_queues
from storekeeper.tasks.models import Job
from tests.conftest import (
    Actors,
    LiveServer,
    env_for,
    start_server,
    stop_server,
)
from tests.payment_sim import free_port, start_sim, stop_sim, storekeeper_script
from tests.poison import mails_to, open_failure, poison, processed, run_cli
from tests.shop import add_product, add_warehouses

BROKERS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
    "redis": "redis://127.0.0.1:6379/0",
}


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Distributed mode runs on PostgreSQL."""
    return str(request.param)


def _distributed(settings: Settings, broker_url: str, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "broker_url": broker_url,
            "broker_prefix": f"test-{uuid.uuid4().hex[:12]}",
            "job_lease_s": 3.0,
            "lease_s": 3.0,
            **overrides,
        }
    )


def _delete_queues(settings: Settings) -> None:
    with contextlib.suppress(Exception):  # the broker may be the test's own, already gone
        delete_broker_queues(settings)


class Worker:
    """A ``storekeeper worker`` process."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [storekeeper_script(), "worker", "--concurrency", "4"],
                env=env_for(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(log_path.read_text(errors="replace"))
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, unacknowledged messages go back to the broker."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Warm shutdown, killing it if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts servers and workers and stops whatever is left at the end."""
    started: list[Worker | LiveServer] = []

    def start(kind: str, settings: Settings) -> Any:
        log = tmp_path / f"{kind}-{len(started)}.log"
        process = Worker(settings, log) if kind == "worker" else start_server(settings, log)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        if isinstance(process, Worker):
            process.stop()
        elif process.process.poll() is None:
            stop_server(process)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _shop(url: str, actors: Actors) -> tuple[Any, Any]:
    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    with httpx.Client(base_url=url, timeout=10) as http:
        add_warehouses(http, manager.headers)  # type: ignore[arg-type]
        add_product(http, manager.headers, "BREAD", stock={"BER": 10_000})  # type: ignore[arg-type]
    return manager, customer


def _order(http: httpx.Client, customer: Any, method: str = "manual") -> httpx.Response:
    return http.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "BREAD", "qty": 1}], "payment": {"method": method, "token": "t"}},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )


def _count(container: Container, event_type: str) -> int:
    with container.db.reading() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == event_type)
            )
            or 0
        )


def _mails(settings: Settings) -> int:
    return len(list((settings.data_dir / "outbox-mail").glob("*.eml")))


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_events_go_through_the_broker_to_workers_that_send_the_mail(
    broker: str, settings: Settings, container: Container, actors: Actors, processes: Any
) -> None:
    settings = _distributed(settings, BROKERS[broker], metrics_port=free_port())
    try:
        server = processes("server", settings)
        processes("worker", settings)
        _, customer = _shop(server.url, actors)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(10):
                assert _order(http, customer).status_code == 201
            r = http.post(
                "/api/v1/auth/register",
                json={"email": "new@example.com", "password": "a-long-enough-password"},
            )
            assert r.status_code == 201, r.text
        # Ten confirmations and one welcome, each sent once by a worker's job.
        _wait_for(lambda: _mails(settings) == 11, "the e-mails")
        assert relay_status(container.db).pending == 0
        assert processed_by_consumer(container.db)["notifications"] == 11
        # The worker has no API: its own /metrics port shows the jobs it ran.
        scraped = httpx.get(f"http://127.0.0.1:{settings.metrics_port}/metrics").text
        mail_jobs = 'storekeeper_job_runs_total{name="notifications.send_mail",outcome="done"}'
        assert f"{mail_jobs} 11.0" in scraped.splitlines()
    finally:
        _delete_queues(settings)


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_a_job_whose_worker_is_killed_mid_run_completes_on_a_later_worker(
    broker: str,
    settings: Settings,
    container: Container,
    actors: Actors,
    processes: Any,
    tmp_path: Path,
) -> None:
    sim = start_sim(tmp_path / "sim.log", "--latency-ms", "2500")
    settings = _distributed(settings, BROKERS[broker], payment_url=sim.url, payment_timeout_s=10.0)
    try:
        server = processes("server", settings)
        worker = processes("worker", settings)
        _, customer = _shop(server.url, actors)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            order_id = _order(http, customer, method="card").json()["id"]
        # The worker is inside the gateway call when it dies.
        _wait_for(lambda: sim.stats()["in_flight"] == 1, "the authorization request")
        worker.kill()
        with container.db.reading() as session:
            job = session.scalar(select(Job).where(Job.name == "ordering.collect_payment"))
            assert job is not None and job.status == "running"

        processes("worker", settings)
        with httpx.Client(base_url=server.url, timeout=10) as http:

            def settled() -> bool:
                r = http.get(f"/api/v1/orders/{order_id}", headers=customer.headers)
                return bool(r.json()["status"] != "pending_payment")

            _wait_for(settled, "the order to be settled")
            assert (
                http.get(f"/api/v1/orders/{order_id}", headers=customer.headers).json()["status"]
                == "confirmed"
            )

        def collect_job() -> Job | None:
            with container.db.reading() as session:
                return session.scalar(select(Job).where(Job.name == "ordering.collect_payment"))

        # The job is marked done just after it settled the order.
        _wait_for(lambda: getattr(collect_job(), "status", None) == "done", "the job to finish")
        job = collect_job()
        assert job is not None and job.attempts == 2
        stats = sim.stats()
        assert stats["max_authorizations_per_order"] == 1  # the retry reused the idempotency key
        assert stats["held_orders"] == [order_id]
    finally:
        stop_sim(sim)
        _delete_queues(settings)


class OwnRedis:
    """A Redis server of this test's own, persisting to an append-only file like a broker must."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (again) on the same port and data."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        _wait_for(self.answers, "redis-server to start", timeout_s=20)

    def answers(self) -> bool:
        """Whether it accepts connections."""
        try:
            with httpx.Client() as _, Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def kill(self) -> None:
        """Take the broker down hard."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def test_orders_are_accepted_while_the_broker_is_down_and_events_flow_when_it_is_back(
    settings: Settings, container: Container, actors: Actors, processes: Any, tmp_path: Path
) -> None:
    redis = OwnRedis(tmp_path)
    redis.start()
    settings = _distributed(settings, redis.url)
    try:
        server = processes("server", settings)
        processes("worker", settings)
        _, customer = _shop(server.url, actors)
        _wait_for(lambda: relay_status(container.db).pending == 0, "the shop's events")

        redis.kill()
        with httpx.Client(base_url=server.url, timeout=10) as http:
            statuses = [_order(http, customer).status_code for _ in range(10)]
        assert statuses == [201] * 10
        time.sleep(1)  # the relay keeps trying and keeps failing
        assert relay_status(container.db).pending >= 10

        redis.start()
        _wait_for(lambda: relay_status(container.db).pending == 0, "the relay to catch up")
        _wait_for(lambda: _mails(settings) == 10, "the confirmation e-mails")
        assert processed_by_consumer(container.db)["notifications"] == 10
    finally:
        redis.kill()


def test_orders_acknowledged_before_the_api_process_is_killed_all_arrive_with_their_events(
    settings: Settings, container: Container, actors: Actors, processes: Any
) -> None:
    settings = _distributed(settings, BROKERS["rabbitmq"])
    try:
        server = processes("server", settings)
        processes("worker", settings)
        _, customer = _shop(server.url, actors)
        acknowledged: list[str] = []
        lock = threading.Lock()
        enough = threading.Event()

        def place_orders() -> None:
            with httpx.Client(base_url=server.url, timeout=5) as http:
                while True:
                    try:
                        r = _order(http, customer)
                    except httpx.TransportError:
                        return  # the server is gone
                    if r.status_code == 201:
                        with lock:
                            acknowledged.append(r.json()["id"])
                            if len(acknowledged) >= 30:
                                enough.set()

        threads = [threading.Thread(target=place_orders) for _ in range(6)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=60), "no orders were acknowledged"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        for thread in threads:
            thread.join(timeout=30)

        restarted = processes("server", settings)
        with httpx.Client(base_url=restarted.url, timeout=10) as http:
            for order_id in acknowledged:
                r = http.get(f"/api/v1/orders/{order_id}", headers=customer.headers)
                assert r.status_code == 200, f"acknowledged order {order_id} lost"
        confirmed = _count(container, "order.confirmed")
        assert confirmed >= len(acknowledged)  # some committed but lost their answer
        _wait_for(lambda: relay_status(container.db).pending == 0, "the relay")
        _wait_for(lambda: _mails(settings) == confirmed, "one e-mail per confirmed order")
        # Each event reached the consumer's effect once, however often it was delivered.
        assert processed_by_consumer(container.db)["notifications"] == confirmed
        with container.db.reading() as session:
            mail_jobs = session.scalar(
                select(func.count()).select_from(Job).where(Job.name == "notifications.send_mail")
            )
        assert mail_jobs == confirmed
        print(f"kill -9 API: {len(acknowledged)} acknowledged, {confirmed} committed, 0 lost")
    finally:
        _delete_queues(settings)


def test_a_poison_event_is_retried_through_the_broker_parked_and_then_delivered(
    settings: Settings, container: Container, processes: Any
) -> None:
    settings = _distributed(
        settings,
        BROKERS["rabbitmq"],
        event_max_attempts=3,
        event_retry_base_s=0.5,
        metrics_port=free_port(),
    )
    try:
        processes("server", settings)
        processes("worker", settings)
        events = poison(container)

        _wait_for(lambda: mails_to(settings, "y@example.com"), "the other account's mail")
        _wait_for(lambda: getattr(open_failure(container), "parked_at", None), "parking")
        parked = open_failure(container)
        assert parked is not None and parked.attempts == 3
        assert not processed(container, events.later)
        # Every attempt ran in the worker: the first from the event's message, the retries
        # from the leader's redeliver messages (the API process only publishes).
        scraped = httpx.get(f"http://127.0.0.1:{settings.metrics_port}/metrics").text
        failures_line = 'storekeeper_event_delivery_failures_total{consumer="notifications"}'
        assert f"{failures_line} 3.0" in scraped.splitlines()

        with container.db.transaction() as session:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id == events.poison)
                .values(payload={"user_id": events.user, "email": "x@example.com"})
            )
        retried = run_cli(settings, "events", "retry", str(parked.id))
        assert retried.returncode == 0, retried.stdout + retried.stderr
        _wait_for(lambda: len(mails_to(settings, "x@example.com")) == 2, "X's two mails")
        assert processed(container, events.later) and open_failure(container) is None
    finally:
        _delete_queues(settings)
