"""Imports and exports through the HTTP API (a job with progress) and the import service, on
SQLite and PostgreSQL: dry-run diffs, stock semantics, idempotency, bad rows and bad files."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.catalog.models import Product
from storekeeper.db import Database
from storekeeper.events.relay import local_delivery, relay_once
from storekeeper.imports import service
from storekeeper.inventory import ledger, levels
from storekeeper.inventory.models import Movement
from storekeeper.inventory.warehouses import create_warehouse
from storekeeper.reporting.models import LedgerRow
from tests.conftest import Actor, Actors

HEADER = "sku,name,price_cents,currency,attributes,min_temp_c,max_temp_c,barcodes,quantity\n"
GOOD = (
    HEADER
    + 'TEA-1,Green tea,450,EUR,"{""origin"": ""Japan""}",,,4006381333931,10\n'
    + "TEA-2,Black tea,390,EUR,,2,8,,5\n"
    + 'TEA-3,"Oolong, dark",1200,USD,,,,"ABC-1\nABC-2",0\n'
)


@pytest.fixture
def shop(container: Container) -> Database:
    """Two warehouses, no products."""
    with container.db.transaction() as session:
        create_warehouse(session, code="BER", name="Berlin", lat=52.5, lon=13.4)
        create_warehouse(session, code="HAM", name="Hamburg", lat=53.5, lon=10.0)
    return container.db


def run_file(
    db: Database,
    content: str | bytes,
    *,
    stock: str | None = None,
    warehouse: str | None = None,
    dry_run: bool = False,
) -> service.RunView:
    """Submit and run an import in this process, as the CLI does."""
    data = content.encode() if isinstance(content, str) else content
    with db.transaction() as session:
        run_id = service.submit(
            session,
            content=data,
            filename="test.csv",
            stock_mode=stock,  # type: ignore[arg-type]
            warehouse=warehouse,
            dry_run=dry_run,
            actor_id=None,
        )
    return service.run(db, run_id=run_id)


def stock(db: Database, sku: str, warehouse: str = "BER") -> int:
    with db.reading() as session:
        return levels.level(session, sku=sku, warehouse=warehouse).on_hand


def movements(db: Database) -> int:
    with db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Movement)) or 0)


def test_dry_run_shows_the_diff_and_writes_nothing(
    shop: Database, client: TestClient, manager: Actor
) -> None:
    client.post(
        "/api/v1/products",
        json={"sku": "TEA-2", "name": "Black tea", "price_cents": 350},
        headers=manager.headers,
    )
    view = run_file(shop, GOOD, stock="set", warehouse="BER", dry_run=True)
    assert view.status == "done"
    counts = view.result["counts"]
    assert (counts["new"], counts["changed"], counts["unchanged"], counts["invalid"]) == (
        2,
        1,
        0,
        0,
    )
    assert view.result["rows"]["changed"] == [
        {"line": 3, "sku": "TEA-2", "fields": ["price_cents", "min_temp_c", "max_temp_c"]}
    ]
    assert [r["sku"] for r in view.result["rows"]["new"]] == ["TEA-1", "TEA-3"]
    # TEA-3's count of 0 equals its (absent) stock: not a change.
    assert counts["stock_changed"] == 2 and counts["stock_unchanged"] == 1
    assert client.get("/api/v1/products/TEA-1").status_code == 404
    assert client.get("/api/v1/products/TEA-2").json()["price_cents"] == 350
    assert movements(shop) == 0


def test_import_twice_changes_nothing_the_second_time(shop: Database, client: TestClient) -> None:
    first = run_file(shop, GOOD, stock="set", warehouse="BER")
    assert first.status == "done" and first.result["counts"]["new"] == 3
    product = client.get("/api/v1/products/TEA-3").json()
    assert product["name"] == "Oolong, dark" and product["barcodes"] == ["ABC-1", "ABC-2"]
    assert client.get("/api/v1/products/TEA-1").json()["attributes"] == {"origin": "Japan"}
    assert (stock(shop, "TEA-1"), stock(shop, "TEA-2")) == (10, 5)
    before = movements(shop)
    second = run_file(shop, GOOD, stock="set", warehouse="BER")
    counts = second.result["counts"]
    assert (counts["new"], counts["changed"], counts["unchanged"]) == (0, 0, 3)
    assert counts["stock_changed"] == 0
    assert movements(shop) == before
    assert client.get("/api/v1/products/TEA-1").json()["version"] == 1


def test_set_counts_and_add_receives(shop: Database) -> None:
    run_file(shop, GOOD, stock="set", warehouse="BER")
    with shop.transaction() as session:
        ledger.record_movement(session, sku="TEA-1", warehouse="BER", delta=7, reason="receipt")
    assert stock(shop, "TEA-1") == 17
    # set: on-hand becomes the quantity, recorded as a count movement of the difference
    run_file(
        shop,
        HEADER.split(",quantity")[0].replace(
            "name,price_cents,currency,attributes,min_temp_c,max_temp_c,barcodes", "quantity"
        )
        + "\nTEA-1,4\n",
        stock="set",
        warehouse="BER",
    )
    assert stock(shop, "TEA-1") == 4
    with shop.reading() as session:
        last = session.scalars(select(Movement).order_by(Movement.id.desc()).limit(1)).one()
    assert (last.reason, last.delta) == ("count", -13)
    assert last.ref is not None and last.ref.startswith("import:")
    # add: a receipt of the quantity, once per file and warehouse
    receipt = "sku,quantity\nTEA-1,6\nTEA-2,1\n"
    done = run_file(shop, receipt, stock="add", warehouse="HAM")
    assert done.result["counts"]["stock_changed"] == 2
    again = run_file(shop, receipt, stock="add", warehouse="HAM")
    assert again.id == done.id
    assert (stock(shop, "TEA-1", "HAM"), stock(shop, "TEA-2", "HAM")) == (6, 1)
    # the same file into another warehouse is another receipt
    run_file(shop, receipt, stock="add", warehouse="BER")
    assert stock(shop, "TEA-1") == 10
    # a refused receipt file received nothing: once the catalog has its SKU, it is received
    late = "sku,quantity\nLATE-1,3\n"
    assert run_file(shop, late, stock="add", warehouse="BER").status == "invalid"
    run_file(shop, "sku,name,price_cents\nLATE-1,Late,1\n")
    assert run_file(shop, late, stock="add", warehouse="BER").status == "done"
    assert stock(shop, "LATE-1") == 3


def test_every_invalid_row_is_reported_at_once_and_nothing_is_written(shop: Database) -> None:
    bad = (
        HEADER
        + "TEA-1,Green tea,450,EUR,,,,,1\n"
        + "TEA 2,Black tea,390,EUR,,,,,1\n"  # bad SKU
        + "TEA-3,,12x,EURO,[1],9,2,,-1\n"  # every field wrong
        + "TEA-1,Again,1,EUR,,,,,1\n"  # repeated SKU
        + "TEA-4,Fine,1,EUR,,,,4006381333932,1\n"  # wrong check digit
    )
    view = run_file(shop, bad, stock="set", warehouse="BER")
    assert view.status == "invalid"
    problems = view.result["rows"]["invalid"]
    assert {p["line"] for p in problems} == {3, 4, 5, 6}
    reasons = " | ".join(p["reason"] for p in problems if p["line"] == 4)
    for part in ("name", "price_cents", "currency", "attributes", "min_temp_c", "quantity"):
        assert part in reasons
    assert "line 2 already" in next(p["reason"] for p in problems if p["line"] == 5)
    assert view.result["counts"]["invalid"] == 4
    assert movements(shop) == 0
    with shop.reading() as session:
        assert levels.known_skus(session, skus={"TEA-1"}) == set()


def test_rows_invalid_against_the_catalog(
    shop: Database, client: TestClient, manager: Actor
) -> None:
    client.post(
        "/api/v1/products",
        json={"sku": "HELD", "name": "x", "price_cents": 1, "barcodes": ["4006381333931"]},
        headers=manager.headers,
    )
    view = run_file(shop, "sku,barcodes\nNEW-1,\nNEW-2,4006381333931\n")
    assert view.status == "invalid"
    reasons = {p["line"]: p["reason"] for p in view.result["rows"]["invalid"]}
    assert "name" in reasons[2] and "price_cents" in reasons[2]
    assert "belongs to product HELD" in reasons[3]


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b"", "unreadable_file", "empty"),
        ("sku,name\nTÉ,x\n".encode("latin-1"), "unreadable_file", "UTF-8"),
        (b"\x00\x01\x02garbage", "unreadable_file", "not a CSV"),
        (b"PK\x03\x04not really a zip", "unreadable_file", "XLSX"),
        (b"sku,name,colour,weight\nA,b,c,d\n", "unknown_columns", "'colour', 'weight'"),
        (b"sku,quantity\nA,1\n", "stock_mode_required", "quantity"),
    ],
)
def test_bad_files_answer_a_clear_error(
    shop: Database, client: TestClient, manager: Actor, content: bytes, code: str, words: str
) -> None:
    answer = client.post(
        "/api/v1/products/import", files={"file": ("x.csv", content)}, headers=manager.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    assert words in answer.json()["detail"]


@pytest.mark.parametrize(
    "content",
    ["sku,name,price_cents\nA,a,1\nB," + "x" * 100_000 + ",1\n", 'sku,name\nA,a\n"B,unterminated'],
)
def test_a_file_broken_further_down_fails_with_its_line(shop: Database, content: str) -> None:
    view = run_file(shop, content)
    assert view.status == "failed" and "line 3" in (view.error or ""), view.error


def test_stock_mode_needs_a_warehouse_that_exists(
    shop: Database, client: TestClient, manager: Actor
) -> None:
    files = {"file": ("s.csv", b"sku,quantity\nA,1\n")}
    answer = client.post(
        "/api/v1/products/import", files=files, data={"stock": "set"}, headers=manager.headers
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "warehouse_required")
    answer = client.post(
        "/api/v1/products/import",
        files=files,
        data={"stock": "set", "warehouse": "NOPE"},
        headers=manager.headers,
    )
    assert answer.status_code == 404


def wait_finished(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body = client.get(url, headers=headers).json()
        if body["status"] in ("done", "invalid", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_upload_is_a_job_with_progress_then_confirm(
    shop: Database, client: TestClient, manager: Actor
) -> None:
    answer = client.post(
        "/api/v1/products/import",
        files={"file": ("tea.csv", GOOD.encode())},
        data={"dry_run": "true", "stock": "set", "warehouse": "BER"},
        headers=manager.headers,
    )
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert run["status"] == "queued" and run["dry_run"] is True
    done = wait_finished(client, f"/api/v1/products/import/{run['id']}", manager.headers)
    assert done["status"] == "done" and done["total"] == 3
    assert done["result"]["counts"]["new"] == 3
    assert client.get("/api/v1/products/TEA-1").status_code == 404
    confirmed = client.post(f"/api/v1/products/import/{run['id']}/confirm", headers=manager.headers)
    assert confirmed.status_code == 202
    final = wait_finished(
        client, f"/api/v1/products/import/{confirmed.json()['id']}", manager.headers
    )
    assert final["status"] == "done" and final["processed"] == final["total"] == 3
    assert final["result"]["counts"]["new"] == 3
    assert client.get("/api/v1/products/TEA-1").status_code == 200
    assert stock(shop, "TEA-1") == 10


def test_only_managers_and_admins_import_and_export(
    shop: Database, client: TestClient, actors: Actors
) -> None:
    for role in (Role.CLERK, Role.CUSTOMER):
        headers = actors.make(role).headers
        files = {"file": ("t.csv", GOOD.encode())}
        assert (
            client.post("/api/v1/products/import", files=files, headers=headers).status_code == 403
        )
        assert client.get("/api/v1/products/export", headers=headers).status_code == 403
        assert client.get("/api/v1/products/import/1", headers=headers).status_code == 403
    assert client.get("/api/v1/products/export").status_code == 401
    admin = actors.make(Role.ADMIN).headers
    assert (
        client.get("/api/v1/products/import/999", headers=admin).json()["code"] == "unknown_import"
    )


def test_xlsx_imports_like_csv(shop: Database, client: TestClient) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["sku", "name", "price_cents", "min_temp_c", "barcodes", "quantity"])
    sheet.append(["X-1", "Chilled", 250, -18.5, "4006381333931\nABC", 12])
    sheet.append(["X-2", "Plain", 100.0, None, None, 3])
    sheet.append(["X-3", None, "abc", None, None, None])
    buffer = io.BytesIO()
    book.save(buffer)
    view = run_file(shop, buffer.getvalue(), stock="add", warehouse="BER")
    assert view.status == "invalid"
    assert [p["line"] for p in view.result["rows"]["invalid"]] == [4, 4]
    sheet.delete_rows(4)
    buffer = io.BytesIO()
    book.save(buffer)
    view = run_file(shop, buffer.getvalue(), stock="add", warehouse="BER")
    assert view.status == "done"
    product = client.get("/api/v1/products/X-1").json()
    assert (product["min_temp_c"], product["barcodes"]) == (-18.5, ["4006381333931", "ABC"])
    assert (stock(shop, "X-1"), stock(shop, "X-2")) == (12, 3)


def test_export_imports_back_into_a_fresh_database(
    shop: Database, client: TestClient, manager: Actor, tmp_path: Any, settings: Any
) -> None:
    tricky = (
        HEADER
        + 'A-1,"=SUM(1,2)",1,EUR,"{""k"": [1, ""ü""]}",-20,-2.5,"4006381333931\nx y,z",4\n'
        + 'A-2,"-minus, ""quoted""\nname",0,GBP,,,,,0\n'
    )
    run_file(shop, tricky, stock="set", warehouse="BER")
    exported = client.get("/api/v1/products/export", headers=manager.headers)
    assert exported.status_code == 200
    stock_csv = client.get("/api/v1/stock/export?warehouse=BER", headers=manager.headers)
    assert list(csv.reader(io.StringIO(stock_csv.text))) == [["sku", "quantity"], ["A-1", "4"]]
    before = [client.get(f"/api/v1/products/{s}").json() for s in ("A-1", "A-2")]
    # A fresh database of the same backend: this test's one, emptied of the catalog
    from storekeeper.bootstrap import bootstrap
    from storekeeper.config import Settings

    if settings.effective_database_url.startswith("sqlite"):
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        from storekeeper import migrations

        migrations.upgrade(fresh_url)
        fresh = bootstrap(Settings(**{**settings.model_dump(), "database_url": fresh_url}))
        try:
            with fresh.db.transaction() as session:
                create_warehouse(session, code="BER", name="Berlin", lat=52.5, lon=13.4)
            assert run_file(fresh.db, exported.content).result["counts"]["new"] == 2
            assert (
                run_file(fresh.db, stock_csv.content, stock="set", warehouse="BER").status == "done"
            )
            assert stock(fresh.db, "A-1") == 4
            from storekeeper.catalog import service as catalog

            with fresh.db.reading() as session:
                after = [catalog.get_or_raise(session, sku=s) for s in ("A-1", "A-2")]
            for old, new in zip(before, after, strict=True):
                for field in (
                    "name",
                    "price_cents",
                    "currency",
                    "attributes",
                    "min_temp_c",
                    "max_temp_c",
                    "barcodes",
                ):
                    assert old[field] == getattr(new, field), field
        finally:
            fresh.close()
    # And into the same database: nothing changes
    again = run_file(shop, exported.content)
    assert again.result["counts"]["unchanged"] == 2


def test_imported_stock_reaches_the_reports_through_its_events(container: Container) -> None:
    """Each movement an import writes announces itself (a ``stock.changed`` carrying the
    movement's id, delta and time) in its batch's transaction: the reporting read model, fed
    by those events only, holds exactly the import's ledger rows."""
    with container.db.transaction() as session:
        create_warehouse(session, code="BER", name="Berlin", lat=52.5, lon=13.4)
    run_file(container.db, GOOD, stock="set", warehouse="BER")
    run_file(container.db, "sku,quantity\nTEA-1,3\nTEA-2,5\n", stock="add", warehouse="BER")
    while relay_once(container.db, local_delivery(container.db, container.consumers)):
        pass
    with container.db.reading() as session:
        ledger_rows = {
            (m.id, m.sku, m.delta, m.reason)
            for m in session.scalars(select(Movement).where(Movement.warehouse_code == "BER"))
        }
        copied = {
            (r.movement_id, r.sku, r.delta, r.reason)
            for r in session.scalars(select(LedgerRow).where(LedgerRow.warehouse == "BER"))
        }
    assert copied == ledger_rows
    # TEA-1 and TEA-2 counted (TEA-3 counted 0: no movement), then both received
    assert len(ledger_rows) == 4


def test_an_edit_between_the_check_and_a_batch_is_seen_by_that_batch(shop: Database) -> None:
    """The batches use what the check found only while nothing else has written since; a
    product created meanwhile with a barcode the file gives a later row is reported on that
    row, not inserted twice."""
    rows = "".join(f"NEW-{n:03d},Item {n},{100 + n},CODE-{n:03d}\n" for n in range(300))
    content = ("sku,name,price_cents,barcodes\n" + rows).encode()
    with shop.transaction() as session:
        run_id = service.submit(
            session,
            content=content,
            filename="test.csv",
            stock_mode=None,
            warehouse=None,
            dry_run=False,
            actor_id=None,
        )
    edited: list[int] = []

    def meanwhile(phase: str, done: int, total: int) -> None:
        if phase == "importing" and not edited and done < 250:
            with shop.transaction() as session:
                catalog.create(
                    session,
                    data={
                        "sku": "OTHER",
                        "name": "x",
                        "price_cents": 1,
                        "currency": "EUR",
                        "barcodes": ["CODE-250"],
                    },
                )
            edited.append(done)

    view = service.run(shop, run_id=run_id, on_progress=meanwhile)
    assert edited and view.status == "done"
    assert view.result["counts"]["new"] == 299
    assert [(r["line"], r["reason"]) for r in view.result["rows"]["invalid"]] == [
        (252, "barcode CODE-250 belongs to product OTHER")
    ]
    with shop.reading() as session:
        assert session.get(Product, "NEW-250") is None
        assert session.get(Product, "NEW-251") is not None
