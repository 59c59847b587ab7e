"""Product barcodes through the HTTP API, on both backends: set on create and edit, checked,
unique across every product (archived ones too), looked up by ``?barcode=``, and carried by the
sync feed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.catalog.barcodes import check_digit
from storekeeper.catalog.schemas import ProductCreate
from storekeeper.events.models import OutboxEvent
from tests.conftest import Actor
from tests.e2e.api_support import API, assert_error, product
from tests.e2e.test_sync_api import pull_all, state
from tests.shop import add_warehouses

EAN13 = "4006381333931"
UPC = "036000291452"
UPC_AS_EAN13 = "0" + UPC
EAN8 = "96385074"


def ean13(body: str) -> str:
    """A valid EAN-13 from its first 12 digits."""
    return body + check_digit(body)


def _create(client: TestClient, who: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"{API}/products", headers=who.headers, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _patch(client: TestClient, who: Actor, sku: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.patch(f"{API}/products/{sku}", headers=who.headers, json=body)
    assert r.status_code == 200, r.text
    patched: dict[str, Any] = r.json()
    return patched


def _found(client: TestClient, code: str, **params: Any) -> list[str]:
    r = client.get(f"{API}/products", params={"barcode": code, **params})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return [item["sku"] for item in r.json()["items"]]


def _product_events(container: Container, sku: str) -> list[tuple[int, str]]:
    with container.db.reading() as session:
        rows = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.aggregate_type == "product", OutboxEvent.aggregate_id == sku)
            .order_by(OutboxEvent.id)
        )
        return [(int(e.payload["version"]), str(e.payload["change"])) for e in rows]


def test_a_product_is_created_with_barcodes_of_every_kind_in_their_stored_form(
    client: TestClient, manager: Actor
) -> None:
    codes = [" " + EAN13 + "\n", UPC_AS_EAN13, EAN8, "SHELF 7/b"]

    created = _create(client, manager, product("MILK", barcodes=codes))
    fetched = client.get(f"{API}/products/MILK").json()
    listed = client.get(f"{API}/products").json()["items"]

    assert created["barcodes"] == sorted([EAN13, UPC, EAN8, "SHELF 7/b"])
    assert fetched == created
    assert listed == [created]
    assert _create(client, manager, product("BREAD"))["barcodes"] == []
    assert client.get(f"{API}/products/BREAD").json()["barcodes"] == []


def test_a_wrong_check_digit_is_422_with_the_reason_and_nothing_is_created(
    client: TestClient, manager: Actor
) -> None:
    r = client.post(
        f"{API}/products",
        headers=manager.headers,
        json=product("MILK", barcodes=[EAN13, "4006381333932"]),
    )

    (problem,) = assert_error(r, 422, "validation_error")
    assert problem["type"] == "invalid_barcode"
    assert problem["loc"] == ["body", "barcodes", 1]
    assert "check digit (the last) should be 1, not 2" in problem["msg"]
    assert_error(client.get(f"{API}/products/MILK"), 404, "unknown_sku")


@pytest.mark.parametrize(
    ("codes", "problem_type"),
    [
        ([UPC, UPC_AS_EAN13], "duplicate_barcode"),
        (["käse"], "invalid_barcode"),
        (["x" * 49], "invalid_barcode"),
        ([""], "string_too_short"),
        ([f"A{i}" for i in range(21)], "too_long"),
        ([4006381333931], "string_type"),
    ],
    ids=["listed-twice", "not-ascii", "too-long", "blank", "too-many", "a-number"],
)
def test_other_bad_barcode_lists_are_422(
    client: TestClient, manager: Actor, codes: list[Any], problem_type: str
) -> None:
    r = client.post(f"{API}/products", headers=manager.headers, json=product("X", barcodes=codes))

    problems = assert_error(r, 422, "validation_error")
    assert problem_type in {p["type"] for p in problems}, problems


def test_a_barcode_another_product_has_is_409_naming_that_product(
    client: TestClient, manager: Actor
) -> None:
    _create(client, manager, product("MILK", barcodes=[UPC]))
    _create(client, manager, product("BREAD", barcodes=[EAN8]))

    on_create = client.post(
        f"{API}/products", headers=manager.headers, json=product("TEA", barcodes=[UPC_AS_EAN13])
    )
    on_edit = client.patch(
        f"{API}/products/BREAD", headers=manager.headers, json={"barcodes": [EAN8, UPC]}
    )

    assert assert_error(on_create, 409, "duplicate_barcode") == (
        f"barcode {UPC} belongs to product MILK"
    )
    assert "belongs to product MILK" in assert_error(on_edit, 409, "duplicate_barcode")
    assert_error(client.get(f"{API}/products/TEA"), 404, "unknown_sku")
    bread = client.get(f"{API}/products/BREAD").json()
    assert (bread["barcodes"], bread["version"]) == ([EAN8], 1)


def test_an_archived_products_barcodes_stay_taken(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("OLD", barcodes=[EAN13]))
    assert client.delete(f"{API}/products/OLD", headers=manager.headers).status_code == 200

    r = client.post(
        f"{API}/products", headers=manager.headers, json=product("NEW", barcodes=[EAN13])
    )

    assert "belongs to product OLD (archived" in assert_error(r, 409, "duplicate_barcode")
    assert client.get(f"{API}/products/OLD").json()["barcodes"] == [EAN13]
    assert _found(client, EAN13) == []  # the list shows products on sale only


def test_barcode_lookup_finds_the_product_on_sale_by_any_form_of_its_code(
    client: TestClient, manager: Actor
) -> None:
    for i in range(5):
        _create(client, manager, product(f"P-{i}", barcodes=[ean13(f"20000000000{i}")]))
    _create(client, manager, product("MILK", barcodes=[UPC, "SHELF-7"]))

    assert _found(client, ean13("200000000003")) == ["P-3"]
    assert _found(client, UPC) == ["MILK"]
    assert _found(client, UPC_AS_EAN13) == ["MILK"]
    assert _found(client, " SHELF-7\t") == ["MILK"]
    assert _found(client, "shelf-7") == []  # Code 128 is case-sensitive
    assert _found(client, EAN13) == []
    assert _found(client, UPC, q="milk") == ["MILK"]
    assert _found(client, UPC, q="bread") == []


@pytest.mark.parametrize(
    ("code", "reason"),
    [("4006381333932", "check digit"), ("x" * 65, "at most 64"), ("a\u00e9", "character 2")],
)
def test_barcode_lookup_of_an_invalid_code_is_422_with_the_reason(
    client: TestClient, code: str, reason: str
) -> None:
    (problem,) = assert_error(
        client.get(f"{API}/products", params={"barcode": code}), 422, "validation_error"
    )
    assert problem["loc"] == ["query", "barcode"]
    assert reason in problem["msg"]


def test_an_edit_replaces_the_list_bumps_the_version_and_records_a_change_event(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _create(client, manager, product("MILK", barcodes=[EAN13, UPC]))

    replaced = _patch(client, manager, "MILK", {"barcodes": [UPC_AS_EAN13, EAN8]})
    same_set = _patch(client, manager, "MILK", {"barcodes": [EAN8, UPC]})
    renamed = _patch(client, manager, "MILK", {"name": "Milk"})  # barcodes left as they are
    cleared = _patch(client, manager, "MILK", {"barcodes": []})
    freed = _create(client, manager, product("TEA", barcodes=[EAN13, UPC]))

    assert (replaced["barcodes"], replaced["version"]) == ([UPC, EAN8], 2)
    assert same_set["version"] == 2
    assert (renamed["barcodes"], renamed["version"]) == ([UPC, EAN8], 3)
    assert (cleared["barcodes"], cleared["version"]) == ([], 4)
    assert freed["barcodes"] == [UPC, EAN13]
    assert _product_events(container, "MILK") == [
        (1, "created"),
        (2, "updated"),
        (3, "updated"),
        (4, "updated"),
    ]
    r = client.patch(f"{API}/products/MILK", headers=manager.headers, json={"barcodes": None})
    assert_error(r, 422, "validation_error")


def test_a_barcode_change_honours_if_match(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("MILK"))
    _patch(client, manager, "MILK", {"price_cents": 99})

    stale = client.patch(
        f"{API}/products/MILK",
        headers={**manager.headers, "If-Match": '"1"'},
        json={"barcodes": [EAN13]},
    )

    assert_error(stale, 409, "stale_version")
    assert client.get(f"{API}/products/MILK").json()["barcodes"] == []


def test_the_sync_feed_carries_barcodes_in_the_snapshot_and_in_later_changes(
    client: TestClient, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    _create(client, manager, product("MILK", barcodes=[EAN13]))
    _create(client, manager, product("OLD", barcodes=[EAN8]))
    client.delete(f"{API}/products/OLD", headers=manager.headers)

    snapshot, cursor = pull_all(client, manager.headers, "warehouse:BER")
    _patch(client, manager, "MILK", {"barcodes": [EAN13, UPC_AS_EAN13]})
    later, _ = pull_all(client, manager.headers, "warehouse:BER", since=cursor)

    first = state(snapshot)
    assert first[("product", "MILK")]["barcodes"] == [EAN13]  # type: ignore[index]
    assert first[("product", "OLD")] is None
    (change,) = later
    assert (change["key"], change["version"]) == ("MILK", 2)
    assert change["data"]["barcodes"] == [UPC, EAN13]


def test_two_products_claiming_one_barcode_at_once_get_one_409(container: Container) -> None:
    # The first transaction holds its new barcode uncommitted while the second one checks and
    # inserts: on PostgreSQL the second waits on the first and then fails on the primary key,
    # on SQLite it waits for the writer lock; either way it answers duplicate_barcode.
    inserted, release = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def first() -> None:
        with container.db.transaction() as session:
            catalog.create(session, data=_body("FIRST"))
            inserted.set()
            release.wait(10)

    def second() -> None:
        inserted.wait(10)
        try:
            with container.db.transaction() as session:
                catalog.create(session, data=_body("SECOND"))
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inserted.wait(10)
    time.sleep(0.3)  # let the second reach its insert (or the writer lock)
    release.set()
    for thread in threads:
        thread.join(20)

    (error,) = outcome
    assert isinstance(error, catalog.DuplicateBarcode), repr(error)
    assert (error.barcode, error.sku) == (EAN13, "FIRST")
    with container.db.reading() as session:
        assert catalog.by_barcode(session, code=EAN13).sku == "FIRST"  # type: ignore[union-attr]
        assert not catalog.exists(session, sku="SECOND")


def _body(sku: str) -> dict[str, Any]:
    return ProductCreate(sku=sku, name=sku, price_cents=1, barcodes=[EAN13]).model_dump()
