"""``storekeeper_client.Replica`` against a real API process, on both backends.

Offline first: writes and reads with no server, then sync; the merge rules as a replica sees
them; interruptions (a server gone between pull pages, a push answer lost) repaired by
reopening the file; replicas in separate processes using only ``storekeeper_client``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.inventory.models import Movement
from storekeeper_client import Offline, Replica
from tests.conftest import Actor, Actors, LiveServer, start_server, stop_server
from tests.shop import add_product, add_warehouses

pytestmark = pytest.mark.live

API = "/api/v1"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: "no network"
BER = "warehouse:BER"


@dataclass
class Shop:
    """A running server with BER/HAM/MUC, MILK (10 at BER) and BREAD (3 at BER)."""

    server: LiveServer
    http: httpx.Client
    manager: Actor
    clerk: Actor
    tmp: Path
    settings: Settings

    def token(self, actor: Actor) -> str:
        return actor.headers["Authorization"].removeprefix("Bearer ")

    def replica(self, name: str, actor: Actor | None = None, **kw: Any) -> Replica:
        """A replica file ``name`` of BER on this server, as ``actor`` (the clerk)."""
        token = self.token(actor or self.clerk)
        return Replica(self.tmp / f"{name}.db", self.server.url, token, scope=BER, **kw)

    def on_hand(self, sku: str) -> int:
        r = self.http.get(f"{API}/stock/{sku}", headers=self.manager.headers)
        assert r.status_code == 200, r.text
        (ber,) = [w for w in r.json()["warehouses"] if w["warehouse"] == "BER"]
        return int(ber["on_hand"])

    def restart(self) -> None:
        """Stop the server if running and start a new one (on a new port)."""
        if self.server.process.poll() is None:
            stop_server(self.server)
        self.server = start_server(self.settings, self.tmp / "server.log")
        self.http.close()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)


@pytest.fixture
def shop(settings: Settings, actors: Actors, tmp_path: Path) -> Iterator[Shop]:
    server = start_server(settings, tmp_path / "server.log")
    http = httpx.Client(base_url=server.url, timeout=10)
    manager = actors.make(Role.MANAGER)
    add_warehouses(http, manager.headers)  # type: ignore[arg-type]  # an httpx.Client will do
    add_product(http, manager.headers, "MILK", stock={"BER": 10, "HAM": 4})  # type: ignore[arg-type]
    add_product(http, manager.headers, "BREAD", stock={"BER": 3})  # type: ignore[arg-type]
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    built = Shop(server, http, manager, clerk, tmp_path, settings)
    yield built
    built.http.close()
    if built.server.process.poll() is None:
        stop_server(built.server)


def ledger_rows_per_mutation(container: Container) -> dict[uuid.UUID, int]:
    with container.db.reading() as session:
        rows = session.execute(
            select(Movement.mutation_id, func.count())
            .where(Movement.mutation_id.is_not(None))
            .group_by(Movement.mutation_id)
        ).all()
    return {mutation_id: count for mutation_id, count in rows}


def copy_of(replica: Replica) -> tuple[list[dict[str, Any]], list[Any]]:
    """What a replica shows: products and BER stock of every product."""
    products = replica.products()
    return products, [replica.stock(p["sku"]) for p in products]


def test_offline_work_shows_at_once_syncs_later_and_two_replicas_receiving_both_count(
    shop: Shop, container: Container
) -> None:
    anna, ben = shop.replica("anna"), shop.replica("ben")
    assert anna.sync().pulled == 4  # 2 products + 2 stock rows
    ben.sync()
    anna_id, ben_id = anna.replica_id, ben.replica_id
    anna.close()
    ben.close()

    # Offline (the same files, no network): writes show at once; a sync fails and keeps them.
    anna = Replica(shop.tmp / "anna.db", DEAD_URL, "x", timeout=2)
    ben = Replica(shop.tmp / "ben.db", DEAD_URL, "x", timeout=2)
    anna.receive("MILK", 6)
    anna.count("MILK", 16)  # as shown: a delta of 0
    ben.receive("MILK", 3)
    ben.count("MILK", 13)  # against the 10 he saw: +3
    ben.sell("BREAD", 1)
    assert anna.stock("MILK").on_hand == 16  # type: ignore[union-attr]
    assert ben.stock("MILK").on_hand == 13  # type: ignore[union-attr]
    assert ben.stock("BREAD").available == 2  # type: ignore[union-attr]
    with pytest.raises(Offline):
        anna.sync()
    assert len(anna.pending()) == 2
    anna.close()
    ben.close()

    # Back online.
    ben = shop.replica("ben")
    anna = shop.replica("anna")
    assert (anna.replica_id, ben.replica_id) == (anna_id, ben_id)
    summary = ben.sync()
    assert (summary.pushed, summary.conflicts, summary.rejected) == (3, 0, 0)
    assert anna.sync().pushed == 2
    ben.sync()
    assert shop.on_hand("MILK") == 19  # 10 + 6 + 0 + 3
    for replica in (anna, ben):
        assert replica.pending() == []
        milk = replica.stock("MILK")
        assert milk is not None and (milk.on_hand, milk.pending) == (19, 0)
        assert {v.status for v in replica.results()} == {"applied"}
    assert copy_of(anna) == copy_of(ben)
    assert set(ledger_rows_per_mutation(container).values()) == {1}
    anna.close()
    ben.close()


def test_a_stale_count_applies_its_difference_and_a_sale_beyond_stock_is_a_conflict(
    shop: Shop, container: Container
) -> None:
    with shop.replica("till") as till:
        till.sync()
        # Meanwhile 4 MILK are sold online; the till still shows 10.
        r = shop.http.post(
            f"{API}/stock/movements",
            headers=shop.manager.headers,
            json={"sku": "MILK", "warehouse": "BER", "delta": -4, "reason": "sale"},
        )
        assert r.status_code == 201, r.text
        till.count("MILK", 8)  # 2 broken bottles: 8 on the shelf against the 10 shown
        sale = till.sell("BREAD", 5)  # only 3 in stock
        assert till.stock("BREAD").on_hand == -2  # type: ignore[union-attr]

        summary = till.sync()

        assert (summary.pushed, summary.conflicts) == (2, 1)
        assert shop.on_hand("MILK") == 4  # 10 - 4 - 2, not "on-hand := 8"
        (conflict,) = till.conflicts()
        assert (conflict.id, conflict.type, conflict.status, conflict.code) == (
            sale,
            "stock.sell",
            "conflict",
            "short_stock",
        )
        assert (conflict.detail["applied"], conflict.detail["shortfall"]) == (3, 2)
        assert conflict.message
        exceptions = shop.http.get(
            f"{API}/sync/exceptions", params={"status": "open"}, headers=shop.manager.headers
        ).json()["items"]
        assert [(e["mutation_id"], e["shortfall"]) for e in exceptions] == [(sale, 2)]
        assert exceptions[0]["replica_id"] == till.replica_id
        bread, milk = till.stock("BREAD"), till.stock("MILK")
        assert bread is not None and (bread.on_hand, bread.pending) == (0, 0)
        assert milk is not None and milk.on_hand == 4


def test_product_edits_between_replicas_are_last_writer_wins(shop: Shop) -> None:
    a = shop.replica("a", shop.manager, replica_id="edit-a")
    b = shop.replica("b", shop.manager, replica_id="edit-b")
    a.sync()
    b.sync()
    a.update_product("MILK", name="Milk (A)", price_cents=199)
    b.update_product("MILK", name="Milk (B)")  # later: b's stamp is after a's
    assert a.product("MILK")["name"] == "Milk (A)"  # type: ignore[index]

    assert b.sync().conflicts == 0
    summary = a.sync()  # older name loses; the price nobody else edited wins

    assert summary.conflicts == 1
    (lost,) = a.conflicts()
    assert lost.code == "stale_edit"
    assert (lost.detail["lost_fields"], lost.detail["applied_fields"]) == (
        ["name"],
        ["price_cents"],
    )
    b.sync()
    for replica in (a, b):
        milk = replica.product("MILK")
        assert milk is not None and (milk["name"], milk["price_cents"]) == ("Milk (B)", 199)
    # A server edit is stamped after everything it overwrites; the replica's clock observes
    # that stamp in its pull, so an edit it makes afterwards is stamped later still and wins.
    r = shop.http.patch(
        f"{API}/products/MILK", headers=shop.manager.headers, json={"name": "Milk (server)"}
    )
    assert r.status_code == 200, r.text
    a.sync()
    a.update_product("MILK", name="Milk (A again)")
    assert a.sync().conflicts == 0
    b.sync()
    assert b.product("MILK")["name"] == "Milk (A again)"  # type: ignore[index]
    a.close()
    b.close()


def test_a_till_finds_products_by_barcode_offline_and_follows_barcode_changes(
    shop: Shop,
) -> None:
    ean13, upc = "4006381333931", "036000291452"

    def barcodes(sku: str, codes: list[str]) -> None:
        r = shop.http.patch(
            f"{API}/products/{sku}", headers=shop.manager.headers, json={"barcodes": codes}
        )
        assert r.status_code == 200, r.text

    barcodes("MILK", [ean13, upc])
    with shop.replica("till") as till:
        till.sync()

    # Offline: a scan (a UPC-A read as its EAN-13, ended by Enter) finds the product to sell.
    with Replica(shop.tmp / "till.db", DEAD_URL, "x", timeout=2) as till:
        scanned = till.product_by_barcode(f"0{upc}\r\n")
        assert scanned is not None and scanned["sku"] == "MILK"
        assert scanned["barcodes"] == [upc, ean13]
        till.sell(scanned["sku"], 2)
        assert till.product_by_barcode("4006381333932") is None  # a misread digit

    # On the server the EAN-13 moves to BREAD, then MILK is archived with its UPC-A.
    barcodes("MILK", [upc])
    barcodes("BREAD", [ean13])
    assert shop.http.delete(f"{API}/products/MILK", headers=shop.manager.headers).is_success

    with shop.replica("till") as till:
        summary = till.sync()
        assert (summary.pushed, summary.conflicts, summary.rejected) == (1, 0, 0)
        bread = till.product_by_barcode(ean13)
        assert bread is not None and bread["sku"] == "BREAD"
        assert till.product_by_barcode(upc) is None  # archived products leave the copy
    assert shop.on_hand("MILK") == 8


def test_an_interrupted_pull_and_a_lost_push_answer_converge_after_reopening(
    shop: Shop, container: Container
) -> None:
    for i in range(6):
        add_product(shop.http, shop.manager.headers, f"EGG-{i}", stock={"BER": i + 1})  # type: ignore[arg-type]
    path = shop.tmp / "till.db"
    # Page by page (no snapshot, which is stored whole or not at all): stopped between pages.
    till = shop.replica("till", page_size=3, use_snapshot=False)
    sold = [till.sell("MILK", 1), till.receive("EGG-1", 5)]
    till.close()
    shutil.copyfile(path, shop.tmp / "before-sync.db")  # the file as a crash would leave it

    till = shop.replica("till", page_size=3, use_snapshot=False)
    seen: list[int] = []

    def pull_the_plug(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 2:
            stop_server(shop.server)

    with pytest.raises(Offline):
        till.sync(on_progress=pull_the_plug)
    assert seen == [3, 6]
    assert till.pending() == []  # pushed and acknowledged before the pull began
    till.close()

    # The server comes back; the replica is reopened from a file that never heard the push
    # answers (the crash came first): it resends the same ids and learns the first verdicts.
    shop.restart()
    shutil.copyfile(shop.tmp / "before-sync.db", path)
    with shop.replica("till", page_size=3, use_snapshot=False) as till:
        assert [m.id for m in till.pending()] == sold
        summary = till.sync(on_progress=seen.append)
        assert summary.pushed == 2
        assert [(v.id, v.status) for v in till.results()] == [(s, "applied") for s in sold]
        assert till.pending() == []
        ledger = ledger_rows_per_mutation(container)
        assert {uuid.UUID(s) for s in sold} <= set(ledger)
        assert set(ledger.values()) == {1}
        assert shop.on_hand("MILK") == 9
        assert shop.on_hand("EGG-1") == 7
        reference = shop.replica("reference")
        reference.sync()
        assert copy_of(till) == copy_of(reference)
        assert len(till.products()) == 8
        reference.close()
        # Up to date: a further sync pulls nothing new.
        assert till.sync().pulled == 0


def test_local_writes_during_a_sync_stay_queued_and_lose_nothing(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storekeeper_client.replica.PUSH_BATCH", 7)  # several batches a sync
    with shop.replica("till", page_size=1) as till:
        till.sync()
        written: list[str] = []

        def write() -> None:
            for _ in range(60):
                written.append(till.receive("MILK", 1))
                time.sleep(0.002)

        writer = threading.Thread(target=write)
        writer.start()
        syncs = 0
        while writer.is_alive() or syncs == 0:
            till.sync()
            syncs += 1
        writer.join()
        till.sync()
        assert till.pending() == []
        assert [v.id for v in till.results()] == written
        assert shop.on_hand("MILK") == 10 + 60
        assert till.stock("MILK").on_hand == 70  # type: ignore[union-attr]


WORKER = textwrap.dedent(
    """
    import sys
    for name in ("fastapi", "sqlalchemy", "pydantic", "celery"):
        sys.modules[name] = None
    from storekeeper_client import Replica

    path, url, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Replica(path, url, token, scope="warehouse:BER") as replica:
        replica.sync()
        for i in range(n):
            replica.receive("MILK", 2)
            replica.sell("MILK", 1)
            if i % 5 == 4:
                replica.sync()
        replica.sync()
        print(replica.stock("MILK").on_hand, len(replica.pending()))
    """
)


def test_replicas_in_separate_processes_converge(shop: Shop, container: Container) -> None:
    token = shop.token(shop.clerk)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(shop.tmp / f"p{i}.db"),
                shop.server.url,
                token,
                "20",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    for p, (_out, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err
    assert shop.on_hand("MILK") == 10 + 3 * 20
    ledger = ledger_rows_per_mutation(container)
    assert len(ledger) == 3 * 40 and set(ledger.values()) == {1}
    for i in range(3):  # every replica, after one more pull, shows the server's stock
        with Replica(shop.tmp / f"p{i}.db", shop.server.url, token) as replica:
            replica.sync()
            assert replica.stock("MILK").on_hand == 70  # type: ignore[union-attr]


def test_the_sync_commands_work_a_replica_offline_and_sync_it(shop: Shop) -> None:
    from typer.testing import CliRunner

    from storekeeper.cli.main import app

    runner = CliRunner()
    path = str(shop.tmp / "cli.db")

    def run(*args: str) -> str:
        result = runner.invoke(app, ["sync", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())  # rich wraps long lines

    unknown = runner.invoke(
        app, ["sync", "receive", "--replica", path, "--scope", BER, "MILK", "5"]
    )
    assert unknown.exit_code == 1  # nothing pulled yet: MILK is not in the local catalog
    assert "not in this replica's local catalog" in " ".join(unknown.output.split())
    assert "0 pending change(s)" in run("pending", "--replica", path)
    queued = run("receive", "--replica", path, "--scope", BER, "MILK", "5", "--force")
    assert "queued receive MILK 5" in queued
    assert "warning" in queued
    run("sell", "--replica", path, "MILK", "2", "--force")
    assert "3" in run("stock", "--replica", path, "MILK")  # 0 known + 5 - 2, before any pull
    assert "2 pending change(s)" in run("pending", "--replica", path)
    bad = runner.invoke(app, ["sync", "sell", "--replica", path, "MILK", "0", "--force"])
    assert bad.exit_code == 2
    offline = runner.invoke(
        app, ["sync", "run", "--replica", path, "--server", DEAD_URL, "--token", "x"]
    )
    assert offline.exit_code == 1
    assert "2 change(s) stay queued" in " ".join(offline.output.split())

    out = run(
        "run", "--replica", path, "--server", shop.server.url, "--token", shop.token(shop.clerk)
    )

    assert "pushed 2 (0 conflict(s), 0 rejected), pulled 4 rows" in out
    assert shop.on_hand("MILK") == 13
    assert "13" in run("stock", "--replica", path, "MILK")
    assert "0 pending change(s)" in run("pending", "--replica", path)

    # Synced: a known SKU is queued at once, a mistyped one is refused without --force.
    assert "warning" not in run("sell", "--replica", path, "MILK", "1")
    typo = runner.invoke(app, ["sync", "sell", "--replica", path, "MLIK", "1"])
    assert typo.exit_code == 1
    assert "MLIK is not in this replica's local catalog" in " ".join(typo.output.split())
    assert "1 pending change(s)" in run("pending", "--replica", path)


def test_a_cursor_the_server_refuses_starts_a_clean_pull_and_keeps_the_queue(shop: Shop) -> None:
    with shop.replica("till") as till:
        till.sync()
        sale = till.sell("MILK", 1)
        # As if the file had been synced with another server: a foreign cursor, a stale row.
        till._store.apply_page(
            [{"entity": "product", "key": "GHOST", "op": "upsert", "version": 1, "data": {}}],
            "bm90LWEtY3Vyc29y",
        )

        summary = till.sync()

        assert summary.resynced and summary.pushed == 1
        assert summary.snapshot_rows == 4  # started over from the server's snapshot
        assert [v.id for v in till.results()] == [sale]
        assert [p["sku"] for p in till.products()] == ["BREAD", "MILK"]
        assert till.stock("MILK").on_hand == 9  # type: ignore[union-attr]
