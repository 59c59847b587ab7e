"""``storekeeper backup`` and ``storekeeper restore`` as an operator runs them, on both backends.

A backup taken from a live server while orders flow restores into a fresh data directory or
database whole: the ledger matches on-hand, every order acknowledged before the backup began is
there, the outbox delivers what was pending, and a replica that synced after the backup point is
told to resync and converges. A restore refuses a target with data, a damaged dump, and a backup
from a newer schema; it migrates an older one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update

from storekeeper import migrations
from storekeeper.accounts.domain import Role
from storekeeper.backup import run
from storekeeper.backup.manifest import BackupError
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from storekeeper.events.models import OutboxEvent
from storekeeper.events.relay import status as relay_status
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory.models import StockLevel
from storekeeper_client import Replica
from tests.conftest import (
    PG_ADMIN_URL,
    TEST_SECRET,
    Actor,
    Actors,
    env_for,
    start_server,
    stop_server,
)
from tests.shop import add_product, add_warehouses

pytestmark = pytest.mark.live

API = "/api/v1"
SKUS = [f"TEA-{n}" for n in range(5)]


def _storekeeper(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``storekeeper`` console script with ``settings``' environment."""
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None, "the storekeeper console script is not installed in this venv"
    env = {**env_for(settings), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [script, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def target(backend: str, settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The test's settings pointed at an empty place to restore into: a new data dir (its
    default database file), or a new PostgreSQL database."""
    url = ""
    name = f"sk_restore_{uuid.uuid4().hex[:12]}"
    if backend == "postgresql":
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield settings.model_copy(update={"database_url": url, "data_dir": tmp_path / "restored"})
    if backend == "postgresql":
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _shop(client: TestClient, manager: Actor) -> None:
    add_warehouses(client, manager.headers)
    for sku in SKUS:
        add_product(client, manager.headers, sku, stock={"BER": 5000, "HAM": 50})


class _Orders:
    """Threads placing one-line orders until stopped, remembering the acknowledged ones."""

    def __init__(self, url: str, customer: Actor, threads: int = 2) -> None:
        self.url, self.customer = url, customer
        self.acknowledged: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._place) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _place(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stopping.is_set():
                r = http.post(
                    f"{API}/orders",
                    json={"lines": [{"sku": random.choice(SKUS), "qty": 1}]},
                    headers={**self.customer.headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                if r.status_code == 201:
                    with self.lock:
                        self.acknowledged.append(r.json()["id"])

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while self.count() < count:
            assert time.monotonic() < deadline, f"only {self.count()} orders acknowledged"
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _ledger_matches_on_hand(settings: Settings) -> int:
    container = bootstrap(settings)
    try:
        with container.db.reading() as session:
            ledger = inventory_levels.ledger_totals(session)
            on_hand = {
                (sku, warehouse): value
                for sku, warehouse, value in session.execute(
                    select(StockLevel.sku, StockLevel.warehouse_code, StockLevel.on_hand)
                )
            }
    finally:
        container.close()
    assert on_hand == ledger
    return len(on_hand)


def _outbox_max(settings: Settings) -> int:
    engine = create_engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0))) or 0)
    finally:
        engine.dispose()


def _make_one_event_pending(settings: Settings) -> None:
    """Leave the newest restored event undelivered, as a backup taken mid-relay would.

    Its consumers recorded it in their inbox (restored with it), so delivering it again is a
    no-op for them: what is checked is that the restored outbox's relay resumes at all.
    """
    engine = create_engine(settings.effective_database_url)
    try:
        with engine.begin() as conn:
            newest = conn.scalar(select(func.max(OutboxEvent.id)))
            conn.execute(
                update(OutboxEvent).where(OutboxEvent.id == newest).values(published_at=None)
            )
    finally:
        engine.dispose()


def _stock_of(replica: Replica) -> dict[str, int]:
    return {
        p["sku"]: stock.on_hand for p in replica.products() if (stock := replica.stock(p["sku"]))
    }


def _server_stock(http: httpx.Client, manager: Actor) -> dict[str, int]:
    skus = [p["sku"] for p in http.get(f"{API}/products", headers=manager.headers).json()["items"]]
    levels = {}
    for sku in skus:
        body = http.get(f"{API}/stock/{sku}", headers=manager.headers).json()
        (ber,) = [w for w in body["warehouses"] if w["warehouse"] == "BER"] or [{"on_hand": 0}]
        levels[sku] = int(ber["on_hand"])
    return levels


def test_a_backup_taken_while_orders_flow_restores_whole_and_replicas_resync(
    client: TestClient,
    settings: Settings,
    target: Settings,
    actors: Actors,
    manager: Actor,
    customer: Actor,
    tmp_path: Path,
) -> None:
    _shop(client, manager)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    token = clerk.headers["Authorization"].removeprefix("Bearer ")
    source = start_server(settings, tmp_path / "source.log")
    port = int(source.url.rsplit(":", 1)[1])
    orders = _Orders(source.url, customer)
    try:
        orders.wait_for(20)
        before = list(orders.acknowledged)
        backup = _storekeeper(settings, "backup", "--to", str(tmp_path / "backup"))
        assert backup.returncode == 0, backup.stdout + backup.stderr
        during = orders.count()
        orders.wait_for(during + 10)  # orders went on after the backup point
        with httpx.Client(base_url=source.url, timeout=10) as http:
            add_product(http, manager.headers, "LATE", stock={"BER": 7})  # type: ignore[arg-type]
        with Replica(tmp_path / "till.db", source.url, token, scope="warehouse:BER") as till:
            till.sync()  # a replica that synced after the backup point
            assert "LATE" in _stock_of(till)
    finally:
        orders.stop()
        stop_server(source)
    reached = _outbox_max(settings)
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["counts"]["ordering_order"] >= len(before)

    restored = _storekeeper(target, "restore", "--from", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    _make_one_event_pending(target)
    # The same address: the replica knows its server by URL, and the server came back restored.
    server = start_server(target, tmp_path / "restored.log", port=port)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for order_id in before:
                r = http.get(f"{API}/orders/{order_id}", headers=customer.headers)
                assert r.status_code == 200, f"order {order_id} acknowledged before the backup lost"
            container = bootstrap(target)
            try:
                deadline = time.monotonic() + 30
                while relay_status(container.db).pending and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert relay_status(container.db).pending == 0, "the outbox did not resume"
            finally:
                container.close()
            # The restored outbox grows past the replica's old position (its cursor no longer
            # looks "ahead"): only the restore's new generation tells the replica to resync.
            while _outbox_max(target) <= reached:
                r = http.post(
                    f"{API}/orders",
                    json={"lines": [{"sku": SKUS[0], "qty": 1}]},
                    headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                assert r.status_code == 201, r.text
            with Replica(tmp_path / "till.db", server.url, token, scope="warehouse:BER") as till:
                summary = till.sync()
                assert summary.resynced, "a replica past the backup point was not told to resync"
                assert "LATE" not in _stock_of(till)
                assert _stock_of(till) == _server_stock(http, manager)
                assert not till.sync().resynced  # converged: its new cursor is good
    finally:
        stop_server(server)
    assert _ledger_matches_on_hand(target) == len(SKUS) * 2
    print(
        f"backup under load ({settings.effective_database_url.split(':')[0]}): "
        f"{len(before)} acknowledged before it, {manifest['counts']['ordering_order']} in it, "
        f"{orders.count()} in all"
    )


def test_restore_refuses_a_target_with_data_and_a_damaged_dump(
    client: TestClient, settings: Settings, target: Settings, manager: Actor, tmp_path: Path
) -> None:
    _shop(client, manager)
    backup_dir = tmp_path / "backup"
    run.backup(settings, to=backup_dir, force=False, progress=None)
    with pytest.raises(BackupError, match="not empty"):
        run.backup(settings, to=backup_dir, force=False, progress=None)
    run.backup(settings, to=backup_dir, force=True, progress=None)

    # Into the database it came from: names what holds data there.
    into_source = _storekeeper(settings, "restore", "--from", str(backup_dir))
    assert into_source.returncode == 1
    assert "not empty" in into_source.stdout
    assert f"catalog_product: {len(SKUS)} rows" in into_source.stdout

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    dump = backup_dir / manifest["dump"]
    damaged = tmp_path / "damaged"
    shutil.copytree(backup_dir, damaged)
    with (damaged / manifest["dump"]).open("r+b") as handle:
        handle.seek(dump.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    refused = _storekeeper(target, "restore", "--from", str(damaged))
    assert refused.returncode == 1 and "damaged" in refused.stdout
    assert run.backend_of(target) == manifest["backend"]
    assert not _describe(target), "a refused restore wrote to the target"

    # The good backup goes in; a second time only with --force.
    run.restore(target, source=backup_dir, force=False, progress=None)
    with pytest.raises(run.TargetNotEmpty):
        run.restore(target, source=backup_dir, force=False, progress=None)
    run.restore(target, source=backup_dir, force=True, progress=None)
    assert _ledger_matches_on_hand(target) == len(SKUS) * 2


def _describe(settings: Settings) -> list[str]:
    copier: Any = run.postgres if run.backend_of(settings) == "postgresql" else run.sqlite
    return list(copier.describe(settings.effective_database_url))


def test_restore_refuses_a_newer_schema_and_migrates_an_older_one(
    backend: str, target: Settings, tmp_path: Path
) -> None:
    # An older installation: its database one revision behind this code's head.
    older = Settings(
        data_dir=tmp_path / "older",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )
    if backend == "postgresql":
        older = target.model_copy(update={"data_dir": tmp_path / "older"})
    older.data_dir.mkdir(parents=True)
    head = migrations.head_revision()
    assert head is not None
    previous = migrations.alembic_config("sqlite://")
    from alembic.script import ScriptDirectory

    behind = ScriptDirectory.from_config(previous).get_revision(head).down_revision
    assert isinstance(behind, str)
    migrations.upgrade(older.effective_database_url, behind)
    manifest = run.backup(older, to=tmp_path / "old-backup", force=False, progress=None)
    assert manifest.revision == behind
    if backend == "postgresql":  # the target was the source: empty it for the restore
        run.postgres.clear(target.effective_database_url)

    newer = tmp_path / "newer-backup"
    shutil.copytree(tmp_path / "old-backup", newer)
    body = json.loads((newer / "manifest.json").read_text())
    (newer / "manifest.json").write_text(json.dumps({**body, "revision": "9999_future"}))
    with pytest.raises(BackupError, match="newer than this Storekeeper knows"):
        run.restore(target, source=newer, force=False, progress=None)

    restored = run.restore(target, source=tmp_path / "old-backup", force=False, progress=None)
    assert restored.migrated and restored.revision == head
    assert restored.generation


def test_the_postgresql_password_travels_in_the_environment_not_on_the_command_line() -> None:
    conninfo, env = run.postgres.libpq(
        "postgresql+psycopg://shop:s3cr%40t@db.internal:5433/shop?sslmode=require"
    )
    assert "s3cr" not in conninfo
    assert conninfo == "postgresql://shop@db.internal:5433/shop?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t"


def test_a_missing_client_tool_is_named_with_how_to_install_it() -> None:
    with pytest.raises(BackupError, match="pg_nonexistent not found: install the PostgreSQL"):
        run.postgres.tool("pg_nonexistent")
