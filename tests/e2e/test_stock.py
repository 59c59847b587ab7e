"""Stock through the HTTP API: warehouses, movements, counts, transfers and levels."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory.models import Movement
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_product, add_warehouses, stock


@pytest.fixture
def shop(client: TestClient, manager: Actor) -> TestClient:
    """BER, HAM and MUC, and the product TEA with no stock yet."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA")
    return client


def _move(
    client: TestClient,
    who: Actor,
    delta: int,
    reason: str = "receipt",
    *,
    sku: str = "TEA",
    warehouse: str = "BER",
    ref: str | None = None,
) -> Any:
    body: dict[str, Any] = {"sku": sku, "warehouse": warehouse, "delta": delta, "reason": reason}
    if ref is not None:
        body["ref"] = ref
    return client.post(f"{API}/stock/movements", headers=who.headers, json=body)


def _count(client: TestClient, who: Actor, counted: int, warehouse: str = "BER") -> Any:
    return client.post(
        f"{API}/stock/counts",
        headers=who.headers,
        json={"sku": "TEA", "warehouse": warehouse, "counted": counted},
    )


def _transfer(client: TestClient, who: Actor, source: str, target: str, qty: int) -> Any:
    return client.post(
        f"{API}/stock/transfers",
        headers=who.headers,
        json={"sku": "TEA", "from": source, "to": target, "qty": qty},
    )


def _reserve(client: TestClient, who: Actor, qty: int) -> None:
    r = client.post(
        f"{API}/orders",
        headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": [{"sku": "TEA", "qty": qty}]},
    )
    assert r.status_code == 201, r.text


def _ledger(container: Container, warehouse: str = "BER") -> list[tuple[int, str]]:
    """(delta, reason) of every movement of TEA in ``warehouse``, oldest first."""
    with container.db.reading() as session:
        rows = session.execute(
            select(Movement.delta, Movement.reason)
            .where(Movement.sku == "TEA", Movement.warehouse_code == warehouse)
            .order_by(Movement.id)
        )
        return [(row.delta, row.reason) for row in rows]


def _ledger_matches_on_hand(client: TestClient, container: Container, who: Actor) -> None:
    with container.db.reading() as session:
        totals = inventory_levels.ledger_totals(session, skus=["TEA"])
    levels = stock(client, who.headers, "TEA")
    on_hand = {wh: level["on_hand"] for wh, level in levels.items() if wh != "total"}
    assert {wh: totals.get(("TEA", wh), 0) for wh in on_hand} == on_hand


# --- movements --------------------------------------------------------------------------------


def test_receipt_damage_correction_and_sale_move_on_hand_and_the_ledger(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    answers = [
        _move(shop, manager, 10, "receipt", ref="delivery-1"),
        _move(shop, manager, -2, "damage"),
        _move(shop, manager, 1, "correction"),
        _move(shop, manager, -4, "sale", ref="till-7"),
    ]

    assert [r.status_code for r in answers] == [201] * 4
    assert [r.json()["on_hand"] for r in answers] == [10, 8, 9, 5]
    assert answers[-1].json() == {"warehouse": "BER", "on_hand": 5, "reserved": 0, "available": 5}
    assert _ledger(container) == [(10, "receipt"), (-2, "damage"), (1, "correction"), (-4, "sale")]
    _ledger_matches_on_hand(shop, container, manager)


def test_clerk_may_record_movements_at_an_assigned_warehouse(
    shop: TestClient, actors: Actors
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])

    r = _move(shop, clerk, 3)

    assert r.status_code == 201, r.text
    assert r.json()["on_hand"] == 3


def test_movement_taking_available_below_zero_is_409_and_records_nothing(
    shop: TestClient, manager: Actor, customer: Actor, container: Container
) -> None:
    _move(shop, manager, 5)
    _reserve(shop, customer, 3)  # on hand 5, reserved 3: 2 available

    too_much = _move(shop, manager, -3, "damage")
    from_empty = _move(shop, manager, -1, "sale", warehouse="HAM")
    just_enough = _move(shop, manager, -2, "damage")

    assert "TEA" in assert_error(too_much, 409, "insufficient_stock")
    assert_error(from_empty, 409, "insufficient_stock")
    assert just_enough.json() == {"warehouse": "BER", "on_hand": 3, "reserved": 3, "available": 0}
    assert _ledger(container) == [(5, "receipt"), (-2, "damage")]
    assert _ledger(container, "HAM") == []
    _ledger_matches_on_hand(shop, container, manager)


@pytest.mark.parametrize("reason", ["count", "transfer", "reserved", "theft", ""])
def test_reasons_other_than_the_manual_four_are_422(
    shop: TestClient, manager: Actor, container: Container, reason: str
) -> None:
    assert_error(_move(shop, manager, 5, reason), 422)
    assert _ledger(container) == []


def test_zero_delta_is_422(shop: TestClient, manager: Actor, container: Container) -> None:
    assert_error(_move(shop, manager, 0, "correction"), 422, "invalid_delta")
    assert _ledger(container) == []


def test_movement_of_unknown_sku_or_warehouse_is_404(shop: TestClient, manager: Actor) -> None:
    assert "NOPE" in assert_error(_move(shop, manager, 1, sku="NOPE"), 404, "unknown_sku")
    assert "XYZ" in assert_error(_move(shop, manager, 1, warehouse="XYZ"), 404, "unknown_warehouse")


def test_archived_product_still_takes_movements(shop: TestClient, manager: Actor) -> None:
    _move(shop, manager, 4)
    shop.delete(f"{API}/products/TEA", headers=manager.headers)

    r = _move(shop, manager, -4, "damage")

    assert r.status_code == 201, r.text
    assert r.json()["on_hand"] == 0


# --- counts -----------------------------------------------------------------------------------


def test_count_sets_on_hand_and_records_the_difference(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    _move(shop, manager, 10)

    down = _count(shop, manager, 7)
    up = _count(shop, manager, 12)
    same = _count(shop, manager, 12)

    assert [r.status_code for r in (down, up, same)] == [201] * 3
    assert [r.json()["on_hand"] for r in (down, up, same)] == [7, 12, 12]
    # A count that matches is still in the ledger: it shows the count took place.
    assert _ledger(container) == [(10, "receipt"), (-3, "count"), (5, "count"), (0, "count")]
    _ledger_matches_on_hand(shop, container, manager)


def test_count_in_a_warehouse_that_never_held_the_sku_starts_its_stock(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    r = _count(shop, manager, 6, warehouse="MUC")

    assert r.json() == {"warehouse": "MUC", "on_hand": 6, "reserved": 0, "available": 6}
    assert _ledger(container, "MUC") == [(6, "count")]


def test_count_below_reserved_is_409_and_changes_nothing(
    shop: TestClient, manager: Actor, customer: Actor, container: Container
) -> None:
    _move(shop, manager, 5)
    _reserve(shop, customer, 3)

    below = _count(shop, manager, 2)
    at_reserved = _count(shop, manager, 3)

    assert_error(below, 409, "below_reserved")
    assert at_reserved.json() == {"warehouse": "BER", "on_hand": 3, "reserved": 3, "available": 0}
    assert _ledger(container) == [(5, "receipt"), (-2, "count")]


@pytest.mark.parametrize("counted", [-1, 1.5, "many", None])
def test_count_must_be_a_whole_non_negative_number(
    shop: TestClient, manager: Actor, counted: object
) -> None:
    r = shop.post(
        f"{API}/stock/counts",
        headers=manager.headers,
        json={"sku": "TEA", "warehouse": "BER", "counted": counted},
    )

    assert_error(r, 422, "validation_error")


def test_count_of_unknown_sku_or_warehouse_is_404(shop: TestClient, manager: Actor) -> None:
    unknown_sku = shop.post(
        f"{API}/stock/counts",
        headers=manager.headers,
        json={"sku": "NOPE", "warehouse": "BER", "counted": 1},
    )

    assert_error(unknown_sku, 404, "unknown_sku")
    assert_error(_count(shop, manager, 1, warehouse="XYZ"), 404, "unknown_warehouse")


# --- whole counts (stocktake) -------------------------------------------------------------------


def _count_batch(
    client: TestClient, who: Actor, lines: list[tuple[str, Any]], warehouse: str = "BER"
) -> Any:
    return client.post(
        f"{API}/stock/counts/batch",
        headers=who.headers,
        json={
            "warehouse": warehouse,
            "ref": "stocktake-1",
            "lines": [{"sku": sku, "counted": counted} for sku, counted in lines],
        },
    )


def test_batch_count_records_every_line_in_one_go_and_answers_the_levels(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    add_product(shop, manager.headers, "MATE", stock={"BER": 2})
    _move(shop, manager, 10)

    r = _count_batch(shop, manager, [("TEA", 8), ("MATE", 5)])

    assert r.status_code == 201, r.text
    assert r.json() == {
        "warehouse": "BER",
        "ref": "stocktake-1",
        "lines": [
            {"sku": "TEA", "on_hand": 8, "reserved": 0, "available": 8},
            {"sku": "MATE", "on_hand": 5, "reserved": 0, "available": 5},
        ],
    }
    assert _ledger(container) == [(10, "receipt"), (-2, "count")]
    with container.db.reading() as session:
        rows = session.execute(
            select(Movement.sku, Movement.delta, Movement.ref).where(Movement.reason == "count")
        )
        assert sorted(tuple(row) for row in rows) == [
            ("MATE", 3, "stocktake-1"),
            ("TEA", -2, "stocktake-1"),
        ]
    _ledger_matches_on_hand(shop, container, manager)


def test_batch_count_names_every_invalid_line_at_once_and_records_none(
    shop: TestClient, manager: Actor, customer: Actor, container: Container
) -> None:
    _move(shop, manager, 5)
    _reserve(shop, customer, 3)

    r = _count_batch(shop, manager, [("TEA", 4), ("NOPE", 1), ("TEA", 4), ("TEA", -1)])
    below = _count_batch(shop, manager, [("TEA", 2)])

    problems = assert_error(r, 422, "invalid_lines")
    assert [(p["loc"], p["type"]) for p in problems] == [
        (["body", "lines", 1], "invalid_line"),
        (["body", "lines", 2], "invalid_line"),
        (["body", "lines", 3], "invalid_line"),
        (["body", "lines", 3], "invalid_line"),
    ]
    assert "no product with SKU NOPE" in problems[0]["msg"]
    assert "TEA is on line 1 already" in problems[1]["msg"]
    assert "negative" in problems[3]["msg"]
    assert "3 are reserved for orders" in assert_error(below, 422, "invalid_lines")[0]["msg"]
    assert _ledger(container) == [(5, "receipt")]


def test_batch_count_follows_the_clerk_rules_of_single_counts(
    shop: TestClient, manager: Actor, actors: Actors, container: Container
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])

    at_ber = _count_batch(shop, clerk, [("TEA", 4)])
    at_ham = _count_batch(shop, clerk, [("TEA", 4)], warehouse="HAM")
    nowhere = _count_batch(shop, manager, [("TEA", 4)], warehouse="XYZ")

    assert at_ber.status_code == 201, at_ber.text
    assert_error(at_ham, 403, "warehouse_not_assigned")
    assert_error(nowhere, 404, "unknown_warehouse")
    assert _ledger(container, "HAM") == []


@pytest.mark.parametrize(
    "body",
    [
        {"warehouse": "BER", "lines": []},
        {"warehouse": "BER", "lines": [{"sku": "TEA", "counted": 1.5}]},
        {"warehouse": "BER", "lines": [{"sku": "TEA", "counted": "4"}]},
        {"warehouse": "BER", "lines": [{"sku": "TEA"}]},
        {"lines": [{"sku": "TEA", "counted": 4}]},
    ],
)
def test_batch_count_of_malformed_lines_is_422(
    shop: TestClient, manager: Actor, body: dict[str, Any]
) -> None:
    r = shop.post(f"{API}/stock/counts/batch", headers=manager.headers, json=body)

    assert_error(r, 422, "validation_error")


# --- transfers --------------------------------------------------------------------------------


def test_transfer_moves_units_and_reports_both_sides(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    _move(shop, manager, 10)

    r = _transfer(shop, manager, "BER", "HAM", 4)

    assert r.status_code == 201, r.text
    assert r.json() == {
        "sku": "TEA",
        "from": {"warehouse": "BER", "on_hand": 6, "reserved": 0, "available": 6},
        "to": {"warehouse": "HAM", "on_hand": 4, "reserved": 0, "available": 4},
    }
    assert stock(shop, manager.headers, "TEA")["total"]["on_hand"] == 10
    assert _ledger(container, "BER") == [(10, "receipt"), (-4, "transfer")]
    assert _ledger(container, "HAM") == [(4, "transfer")]
    _ledger_matches_on_hand(shop, container, manager)


def test_transfer_within_one_warehouse_is_422(shop: TestClient, manager: Actor) -> None:
    _move(shop, manager, 10)

    assert_error(_transfer(shop, manager, "BER", "BER", 1), 422, "invalid_transfer")


def test_transfer_of_more_than_available_is_409_and_moves_nothing(
    shop: TestClient, manager: Actor, customer: Actor, container: Container
) -> None:
    _move(shop, manager, 5)
    _reserve(shop, customer, 2)  # 3 available

    r = _transfer(shop, manager, "BER", "HAM", 4)

    assert_error(r, 409, "insufficient_stock")
    levels = stock(shop, manager.headers, "TEA")
    assert set(levels) == {"BER", "total"}
    assert levels["total"] == {"on_hand": 5, "reserved": 2, "available": 3}
    assert _ledger(container, "HAM") == []


@pytest.mark.parametrize("qty", [0, -3])
def test_transfer_quantity_must_be_positive(shop: TestClient, manager: Actor, qty: int) -> None:
    _move(shop, manager, 10)

    assert_error(_transfer(shop, manager, "BER", "HAM", qty), 422, "validation_error")


def test_transfer_naming_an_unknown_warehouse_is_404(shop: TestClient, manager: Actor) -> None:
    _move(shop, manager, 10)

    assert_error(_transfer(shop, manager, "BER", "XYZ", 1), 404, "unknown_warehouse")
    assert_error(_transfer(shop, manager, "XYZ", "BER", 1), 404, "unknown_warehouse")
    assert stock(shop, manager.headers, "TEA")["BER"]["on_hand"] == 10


# --- levels -----------------------------------------------------------------------------------


def test_stock_of_a_sku_gives_totals_and_each_warehouse(
    shop: TestClient, manager: Actor, customer: Actor
) -> None:
    _move(shop, manager, 4, warehouse="MUC")
    _move(shop, manager, 6, warehouse="BER")
    _reserve(shop, customer, 5)  # no ship_to: from the warehouse with most available

    r = shop.get(f"{API}/stock/TEA", headers=manager.headers)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "sku": "TEA",
        "on_hand": 10,
        "reserved": 5,
        "available": 5,
        "warehouses": [
            {"warehouse": "BER", "on_hand": 6, "reserved": 5, "available": 1},
            {"warehouse": "MUC", "on_hand": 4, "reserved": 0, "available": 4},
        ],
    }


def test_stock_of_a_never_stocked_sku_is_zero(shop: TestClient, manager: Actor) -> None:
    r = shop.get(f"{API}/stock/TEA", headers=manager.headers)

    assert r.json() == {"sku": "TEA", "on_hand": 0, "reserved": 0, "available": 0, "warehouses": []}


def test_stock_of_unknown_sku_is_404(shop: TestClient, manager: Actor) -> None:
    assert_error(shop.get(f"{API}/stock/NOPE", headers=manager.headers), 404, "unknown_sku")


# --- warehouses -------------------------------------------------------------------------------


def test_created_warehouses_are_listed_in_code_order(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    for code in ("MUC", "BER", "HAM"):
        r = client.post(
            f"{API}/warehouses",
            headers=manager.headers,
            json={"code": code, "name": f"Site {code}", "lat": 50.5, "lon": -8.25},
        )
        assert r.status_code == 201, r.text
        assert {k: r.json()[k] for k in ("code", "name", "lat", "lon")} == {
            "code": code,
            "name": f"Site {code}",
            "lat": 50.5,
            "lon": -8.25,
        }

    listed = client.get(f"{API}/warehouses", headers=customer.headers)

    assert listed.status_code == 200
    assert [w["code"] for w in listed.json()] == ["BER", "HAM", "MUC"]


def test_duplicate_warehouse_code_is_409(client: TestClient, manager: Actor) -> None:
    body = {"code": "BER", "name": "Berlin", "lat": 52.5, "lon": 13.4}
    client.post(f"{API}/warehouses", headers=manager.headers, json=body)

    r = client.post(f"{API}/warehouses", headers=manager.headers, json={**body, "name": "Other"})

    assert_error(r, 409, "duplicate_warehouse")
    assert [w["name"] for w in client.get(f"{API}/warehouses", headers=manager.headers).json()] == [
        "Berlin"
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"lat": 90.5},
        {"lat": -91},
        {"lon": 181},
        {"code": "no spaces"},
        {"code": ""},
        {"name": ""},
        {"elevation": 30},
    ],
    ids=lambda fields: "-".join(f"{k}={v}" for k, v in fields.items()),
)
def test_invalid_warehouse_is_422(
    client: TestClient, manager: Actor, fields: dict[str, Any]
) -> None:
    body = {"code": "BER", "name": "Berlin", "lat": 52.5, "lon": 13.4, **fields}

    assert_error(
        client.post(f"{API}/warehouses", headers=manager.headers, json=body),
        422,
        "validation_error",
    )


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.DEVICE])
def test_callers_who_do_not_handle_stock_cannot_touch_it(
    shop: TestClient, manager: Actor, actors: Actors, container: Container, role: Role
) -> None:
    _move(shop, manager, 10)
    outsider = actors.make(role)

    answers = [
        _move(shop, outsider, 5),
        _count(shop, outsider, 1),
        _transfer(shop, outsider, "BER", "HAM", 1),
        shop.get(f"{API}/stock/TEA", headers=outsider.headers),
        shop.post(
            f"{API}/warehouses",
            headers=outsider.headers,
            json={"code": "NEW", "name": "New", "lat": 0, "lon": 0},
        ),
    ]

    for r in answers:
        assert_error(r, 403, "forbidden")
    assert _ledger(container) == [(10, "receipt")]


def test_clerk_handles_stock_but_cannot_add_warehouses(shop: TestClient, actors: Actors) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER", "HAM"])

    assert _count(shop, clerk, 5).status_code == 201
    assert _transfer(shop, clerk, "BER", "HAM", 2).status_code == 201
    assert shop.get(f"{API}/stock/TEA", headers=clerk.headers).json()["on_hand"] == 5
    assert_error(
        shop.post(
            f"{API}/warehouses",
            headers=clerk.headers,
            json={"code": "NEW", "name": "New", "lat": 0, "lon": 0},
        ),
        403,
    )


def test_anonymous_callers_cannot_see_or_touch_stock(shop: TestClient) -> None:
    answers = [
        shop.post(
            f"{API}/stock/movements",
            json={"sku": "TEA", "warehouse": "BER", "delta": 1, "reason": "receipt"},
        ),
        shop.post(f"{API}/stock/counts", json={"sku": "TEA", "warehouse": "BER", "counted": 1}),
        shop.post(
            f"{API}/stock/transfers", json={"sku": "TEA", "from": "BER", "to": "HAM", "qty": 1}
        ),
        shop.get(f"{API}/stock/TEA"),
        shop.get(f"{API}/warehouses"),
    ]

    for r in answers:
        assert_error(r, 401, "not_authenticated")


def test_a_person_cannot_release_or_fulfil_an_orders_reservation(
    shop: TestClient, manager: Actor, customer: Actor, actors: Actors
) -> None:
    assert _move(shop, manager, 5).status_code == 201
    order = shop.post(
        f"{API}/orders",
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": [{"sku": "TEA", "qty": 2}], "ship_to": {"lat": 52.5, "lon": 13.4}},
    )
    assert order.status_code == 201, order.text
    ref = f"order:{order.json()['id']}"
    admin = actors.make(Role.ADMIN)

    for who in (manager, admin):
        for action in ("release", "fulfil"):
            r = shop.post(f"{API}/stock/reservations/{ref}/{action}", headers=who.headers)
            assert_error(r, 404, "unknown_reservation")
    # Nor can a person create a reservation in the orders' namespace.
    mine = shop.post(
        f"{API}/stock/reservations",
        headers=manager.headers,
        json={"ref": "order:424242", "lines": [{"sku": "TEA", "qty": 1}]},
    )
    assert mine.status_code == 201 and mine.json()["ref"] == "order:424242"
    assert shop.get(f"{API}/stock/TEA", headers=manager.headers).json()["reserved"] == 3
    # ... it is the manager's own reference, which they release as they named it.
    r = shop.post(f"{API}/stock/reservations/order:424242/release", headers=manager.headers)
    assert r.status_code == 200 and r.json()["units"] == 1
    assert shop.get(f"{API}/stock/TEA", headers=manager.headers).json()["reserved"] == 2
