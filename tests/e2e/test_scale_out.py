"""Scale-out for real: two API processes and a worker behind nginx, on PostgreSQL and RabbitMQ.

The cluster is started by ``scripts/cluster.py``, the code behind ``make cluster``, with nginx
running the configuration in ``deploy/nginx/nginx.conf``. Customers place orders through nginx
from several threads while one API process is ``kill -9``'d and started again. Clients do what
docs/api.md asks of them: one Idempotency-Key per intended order, resent on 502 or a dropped
connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from scripts.cluster import Cluster, nginx_binary, running, upstream_counts
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.events.models import OutboxEvent
from storekeeper.events.relay import processed_by_consumer
from storekeeper.events.relay import status as relay_status
from storekeeper.ordering.models import Order
from storekeeper.tasks.celery_app import delete_broker_queues
from tests.conftest import Actor, Actors, env_for
from tests.e2e.test_concurrency import audit
from tests.shop import add_product, add_warehouses

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
THREADS = 6
HOT_UNITS = {"BER": 40, "HAM": 40}
"""SALT sells out late in the run: its last units are raced for through both API processes."""
RETRYABLE = {502, 503, 504}


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Several processes share one database: PostgreSQL."""
    return str(request.param)


@dataclass
class Outcomes:
    """What the clients were told, shared by the ordering threads."""

    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Order id -> (sku, qty) for every 201."""
    refused: int = 0
    retries: int = 0
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        """Orders acknowledged so far."""
        with self.lock:
            return len(self.acknowledged)


def _place(http: httpx.Client, customer: Actor, sku: str, qty: int, out: Outcomes) -> None:
    """One intended order, resent with the same key until it gets a real answer."""
    headers = {**customer.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = {"lines": [{"sku": sku, "qty": qty}], "payment": {"method": "manual"}}
    for _ in range(50):
        try:
            r = http.post("/api/v1/orders", json=body, headers=headers)
        except httpx.TransportError:
            r = None
        if r is None or r.status_code in RETRYABLE:
            with out.lock:
                out.retries += 1
            time.sleep(0.1)
            continue
        with out.lock:
            if r.status_code == 201:
                out.acknowledged[r.json()["id"]] = (sku, qty)
            elif r.status_code == 409 and r.json()["code"] == "insufficient_stock":
                out.refused += 1
            else:
                out.unexpected.append(f"{r.status_code} {r.text[:200]}")
        return
    with out.lock:
        out.unexpected.append("no answer after 50 attempts")


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _count_events(container: Container, event_type: str) -> int:
    with container.db.reading() as session:
        query = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == event_type)
        return int(session.scalar(query) or 0)


def _stored_orders(container: Container) -> set[str]:
    with container.db.reading() as session:
        return {str(order_id) for order_id in session.scalars(select(Order.id))}


def _orders_counted(url: str) -> float:
    """``POST /api/v1/orders`` requests in one process's ``storekeeper_http_requests_total``."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("storekeeper_http_requests_total{") and all(
            label in line for label in ('method="POST"', "/api/v1/orders")
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_orders_through_nginx_survive_a_killed_api_process_without_loss_or_oversell(
    settings: Settings, container: Container, actors: Actors, tmp_path: Path
) -> None:
    if nginx_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed: scripts/ensure-services.sh installs it")
        pytest.skip("nginx is not installed (make services installs it)")
    settings = settings.model_copy(
        update={
            "broker_url": RABBITMQ,
            "broker_prefix": f"test-scale-{uuid.uuid4().hex[:12]}",
            "job_lease_s": 3.0,
            "lease_s": 3.0,
            # One loopback address places hundreds of orders a minute here.
            "rate_limits_enabled": False,
        }
    )
    manager = actors.make(Role.MANAGER)
    customers = [actors.make(Role.CUSTOMER) for _ in range(THREADS)]
    cluster = Cluster(tmp_path / "cluster", env_for(settings), apis=2, workers=1)
    out = Outcomes()
    stop = threading.Event()

    def customer_loop(index: int) -> None:
        # Half the clients buy plentiful BREAD, half race for the little SALT there is.
        sku, qty = ("BREAD", 1) if index % 2 else ("SALT", 2)
        with httpx.Client(base_url=cluster.url, timeout=10) as http:
            while not stop.is_set():
                _place(http, customers[index], sku, qty, out)

    try:
        with running(cluster):
            with httpx.Client(base_url=cluster.url, timeout=10) as http:
                add_warehouses(http, manager.headers)  # type: ignore[arg-type]
                add_product(http, manager.headers, "BREAD", stock={"BER": 10_000})  # type: ignore[arg-type]
                add_product(http, manager.headers, "SALT", stock=HOT_UNITS)  # type: ignore[arg-type]
            threads = [threading.Thread(target=customer_loop, args=(i,)) for i in range(THREADS)]
            for thread in threads:
                thread.start()
            try:
                _wait_for(lambda: out.count() >= 20, "orders before the kill")
                victim = cluster.api_processes[0]
                cluster.kill_api(0)
                killed_at = out.count()
                _wait_for(lambda: out.count() >= killed_at + 20, "orders while one API is down")
                restart_offset = cluster.access_log.stat().st_size
                cluster.start_api(0)
                restarted_at = out.count()

                def restarted_api_serves() -> bool:
                    served = upstream_counts(cluster.access_log, offset=restart_offset)
                    return served[victim.upstream] >= 5 and out.count() >= restarted_at + 20

                _wait_for(restarted_api_serves, "the restarted API process to take orders")
                _wait_for(lambda: out.refused > 0, "SALT to sell out")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)

            assert not out.unexpected, out.unexpected[:5]
            served = upstream_counts(cluster.access_log)
            assert set(served) == {api.upstream for api in cluster.api_processes}, served

            # No acknowledged order lost: each one is in the database.
            stored = _stored_orders(container)
            lost = set(out.acknowledged) - stored
            assert not lost, f"{len(lost)} acknowledged orders lost"
            # No oversell: on-hand = ledger, 0 <= reserved <= on-hand, reserved = open lines.
            with httpx.Client(base_url=cluster.url, timeout=10) as http:
                salt = audit(container, http, manager, "SALT")
                audit(container, http, manager, "BREAD")
            acknowledged_salt = sum(q for s, q in out.acknowledged.values() if s == "SALT")
            assert acknowledged_salt <= salt.total_reserved <= sum(HOT_UNITS.values())
            assert salt.total_reserved == sum(HOT_UNITS.values())  # sold out, to the unit

            # Every event delivered: outbox drained, one notification and one e-mail per order.
            confirmed = len(stored)
            _wait_for(
                lambda: _count_events(container, "order.confirmed") == confirmed,
                "every stored order to be confirmed",
            )
            _wait_for(lambda: relay_status(container.db).pending == 0, "the outbox to drain")
            _wait_for(
                lambda: processed_by_consumer(container.db).get("notifications") == confirmed,
                "the notifications consumer",
            )
            mail_dir = settings.data_dir / "outbox-mail"
            _wait_for(lambda: len(list(mail_dir.glob("*.eml"))) == confirmed, "the e-mails")
            # Each process counts its own requests in its metrics (Prometheus scrapes each).
            for api in cluster.api_processes:
                assert _orders_counted(api.url) > 0, f"{api.url}/metrics counts no orders"
            print(
                f"\nscale-out: {len(out.acknowledged)} acknowledged, {len(stored)} stored, "
                f"{out.refused} refused (sold out), {out.retries} client retries, "
                f"served per API process {dict(served)}"
            )
    finally:
        with contextlib.suppress(Exception):
            delete_broker_queues(settings)


def test_upstream_counts_name_the_process_that_answered(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '127.0.0.1 "GET / HTTP/1.1" 200 2 upstream=127.0.0.1:1 upstream_status=200\n'
        '127.0.0.1 "POST / HTTP/1.1" 201 2 upstream=127.0.0.1:1, 127.0.0.1:2 upstream_status=502\n'
        '127.0.0.1 "GET /metrics HTTP/1.1" 404 2 upstream=- upstream_status=-\n'
    )
    assert upstream_counts(log) == Counter({"127.0.0.1:1": 1, "127.0.0.1:2": 1})
