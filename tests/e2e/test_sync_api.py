"""Offline-first sync through the HTTP API (DESIGN.md section 7, docs/sync.md), on both backends.

Pull: a paged snapshot, then only what changed, with cursors that outlive the app. Push:
per-mutation verdicts, idempotent replays, the merge rules. Exceptions: who sees and resolves
them. Malformed input: 422, never 500.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings
from storekeeper.inventory.models import Movement, StockLevel
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_product, add_warehouses, stock

Headers = dict[str, str]


def pull(
    client: TestClient, headers: Headers, scope: str, since: str | None = None, limit: int = 1000
) -> dict[str, Any]:
    """One pull page; asserts success."""
    params: dict[str, Any] = {"scope": scope, "limit": limit}
    if since is not None:
        params["since"] = since
    r = client.get(f"{API}/sync/pull", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"changes", "cursor", "has_more"}
    return body


def pull_all(
    client: TestClient, headers: Headers, scope: str, since: str | None = None, limit: int = 1000
) -> tuple[list[dict[str, Any]], str]:
    """Every change until ``has_more`` is false, and the cursor to go on from."""
    changes: list[dict[str, Any]] = []
    while True:
        body = pull(client, headers, scope, since, limit)
        changes.extend(body["changes"])
        since = body["cursor"]
        if not body["has_more"]:
            return changes, since


def state(changes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """A replica's copy after applying ``changes`` in order (None: deleted)."""
    copy: dict[tuple[str, str], dict[str, Any] | None] = {}
    for change in changes:
        copy[(change["entity"], change["key"])] = (
            change["data"] if change["op"] == "upsert" else None
        )
    return copy


def mutation(kind: str, hlc: str = "1-0-replica-a", **data: Any) -> dict[str, Any]:
    """A fresh mutation of type ``kind``."""
    return {"id": str(uuid.uuid4()), "type": kind, "data": data, "hlc": hlc}


def push(
    client: TestClient,
    headers: Headers,
    mutations: list[dict[str, Any]],
    replica: str = "replica-a",
) -> list[dict[str, Any]]:
    """Push a batch; asserts success and one result per mutation, in order."""
    r = client.post(
        f"{API}/sync/push", json={"replica_id": replica, "mutations": mutations}, headers=headers
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert [res["id"] for res in results] == [m["id"] for m in mutations]
    for res in results:
        assert {"code", "message"} <= set(res["detail"]), res
    return results


def device(client: TestClient, admin: Actor, scope: str) -> Headers:
    """Bearer headers of a new device token bound to ``scope``."""
    r = client.post(f"{API}/devices", headers=admin.headers, json={"label": "till", "scope": scope})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def shop(client: TestClient, manager: Actor) -> TestClient:
    """BER, HAM and MUC; MILK (10 at BER, 4 at HAM) and BREAD (3 at BER)."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", stock={"BER": 10, "HAM": 4})
    add_product(client, manager.headers, "BREAD", stock={"BER": 3})
    return client


def test_a_first_pull_is_a_paged_snapshot_then_only_new_changes_come(
    shop: TestClient, manager: Actor
) -> None:
    for i in range(5):
        add_product(shop, manager.headers, f"EGG-{i}", stock={"BER": i + 1, "HAM": 1})

    changes, cursor = pull_all(shop, manager.headers, "warehouse:BER", limit=3)

    copy = state(changes)
    products = {key for entity, key in copy if entity == "product"}
    assert products == {"MILK", "BREAD"} | {f"EGG-{i}" for i in range(5)}
    assert copy[("product", "MILK")] == {
        "sku": "MILK",
        "name": "Product MILK",
        "price_cents": 250,
        "currency": "EUR",
        "attributes": {},
        "min_temp_c": None,
        "max_temp_c": None,
        "barcodes": [],
        "hlc": copy[("product", "MILK")]["hlc"],  # type: ignore[index]
    }
    assert copy[("stock", "MILK")] == {
        "sku": "MILK",
        "warehouse": "BER",
        "on_hand": 10,
        "reserved": 0,
        "available": 10,
    }
    assert copy[("stock", "EGG-4")]["on_hand"] == 5  # type: ignore[index]
    assert all(c["data"]["warehouse"] == "BER" for c in changes if c["entity"] == "stock")

    # Nothing new: an empty page, and the cursor moves on quietly.
    again = pull(shop, manager.headers, "warehouse:BER", cursor)
    assert again["changes"] == [] and again["has_more"] is False

    # A sale at BER, a receipt at HAM (not this scope), a rename, an archived product.
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "MILK", "warehouse": "BER", "delta": -2, "reason": "sale"},
    )
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "BREAD", "warehouse": "HAM", "delta": 7, "reason": "receipt"},
    )
    shop.patch(f"{API}/products/EGG-1", headers=manager.headers, json={"name": "Duck egg"})
    shop.delete(f"{API}/products/EGG-2", headers=manager.headers)

    new, _ = pull_all(shop, manager.headers, "warehouse:BER", again["cursor"])

    assert [(c["entity"], c["key"], c["op"]) for c in new] == [
        ("stock", "MILK", "upsert"),
        ("product", "EGG-1", "upsert"),
        ("product", "EGG-2", "delete"),
    ]
    assert new[0]["data"]["on_hand"] == 8
    assert new[1]["data"]["name"] == "Duck egg" and new[1]["version"] == 2
    assert new[2]["data"] is None and new[2]["version"] == 2


def test_a_cursor_stays_valid_after_the_app_restarts(
    shop: TestClient, manager: Actor, settings: Settings, container: Container
) -> None:
    _, cursor = pull_all(shop, manager.headers, "warehouse:BER")
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "BREAD", "warehouse": "BER", "delta": 5, "reason": "receipt"},
    )

    restarted = bootstrap(settings)
    try:
        with TestClient(create_app(container=restarted), raise_server_exceptions=False) as fresh:
            new, _ = pull_all(fresh, manager.headers, "warehouse:BER", cursor)
    finally:
        restarted.close()

    assert [(c["entity"], c["key"], c["data"]["on_hand"]) for c in new] == [("stock", "BREAD", 8)]


def test_pull_and_push_are_limited_to_the_callers_scope(
    shop: TestClient, actors: Actors, manager: Actor
) -> None:
    admin = actors.make(Role.ADMIN)
    clerk_ber = actors.make(Role.CLERK, warehouses=["BER"])
    clerk_ham = actors.make(Role.CLERK, warehouses=["HAM"])
    customer = actors.make(Role.CUSTOMER)
    till = device(shop, admin, "warehouse:BER")
    url = f"{API}/sync/pull"

    assert shop.get(url, params={"scope": "warehouse:BER"}, headers=clerk_ber.headers).is_success
    assert shop.get(url, params={"scope": "warehouse:BER"}, headers=till).is_success
    assert shop.get(url, params={"scope": "warehouse:HAM"}, headers=manager.headers).is_success
    assert_error(shop.get(url, params={"scope": "warehouse:BER"}, headers=clerk_ham.headers), 403)
    assert_error(shop.get(url, params={"scope": "warehouse:HAM"}, headers=till), 403)
    assert_error(shop.get(url, params={"scope": "warehouse:BER"}, headers=customer.headers), 403)
    assert_error(shop.get(url, params={"scope": "warehouse:BER"}), 401)
    assert_error(
        shop.get(url, params={"scope": "warehouse:NOPE"}, headers=manager.headers),
        404,
        "unknown_warehouse",
    )

    sale_ber = mutation("stock.sell", warehouse="BER", sku="MILK", qty=1)
    sale_ham = mutation("stock.sell", warehouse="HAM", sku="MILK", qty=1)
    results = push(shop, till, [sale_ham, sale_ber])

    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["detail"]["code"] == "scope_not_allowed"
    results = push(
        shop, clerk_ham.headers, [mutation("stock.sell", warehouse="BER", sku="MILK", qty=1)]
    )
    assert results[0]["status"] == "rejected"
    assert results[0]["detail"]["code"] == "warehouse_not_assigned"
    r = shop.post(
        f"{API}/sync/push",
        json={"replica_id": "x", "mutations": [sale_ber]},
        headers=customer.headers,
    )
    assert_error(r, 403)
    levels = stock(shop, manager.headers, "MILK")
    assert (levels["BER"]["on_hand"], levels["HAM"]["on_hand"]) == (9, 4)


def test_pushing_the_same_batch_twice_changes_nothing_the_second_time(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    batch = [
        mutation("stock.receive", warehouse="BER", sku="MILK", qty=5),
        mutation("stock.sell", warehouse="BER", sku="BREAD", qty=5),  # 3 there: an exception
        mutation("stock.receive", warehouse="BER", sku="NOPE", qty=1),  # rejected
    ]
    first = push(shop, manager.headers, batch)
    with container.db.reading() as session:
        ledger = session.scalar(select(func.count()).select_from(Movement))

    second = push(shop, manager.headers, batch)

    assert [r["status"] for r in first] == ["applied", "conflict", "rejected"]
    assert [r["status"] for r in second] == ["duplicate"] * 3
    assert [r["detail"]["original"] for r in second] == [
        {"status": r["status"], "detail": r["detail"]} for r in first
    ]
    with container.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Movement)) == ledger
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 15
    assert stock(shop, manager.headers, "BREAD")["BER"]["on_hand"] == 0
    exceptions = shop.get(f"{API}/sync/exceptions", headers=manager.headers).json()["items"]
    assert len(exceptions) == 1

    # The same id with other content is not a replay: refused, and still nothing changes.
    reused = {**batch[0], "data": {"warehouse": "BER", "sku": "MILK", "qty": 50}}
    assert push(shop, manager.headers, [reused])[0]["detail"]["code"] == "mutation_id_reused"
    other_replica = push(shop, manager.headers, [batch[0]], replica="replica-b")
    assert other_replica[0]["detail"]["code"] == "mutation_id_reused"
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 15


def test_two_clerks_receiving_offline_both_count(
    shop: TestClient, actors: Actors, manager: Actor
) -> None:
    anna = actors.make(Role.CLERK, warehouses=["BER"])
    ben = actors.make(Role.CLERK, warehouses=["BER"])
    # Both saw 10 units of MILK, took in a delivery each, and counted the shelf.
    anna_work = [
        mutation("stock.receive", warehouse="BER", sku="MILK", qty=6),
        mutation("stock.count", warehouse="BER", sku="MILK", counted=16, seen_on_hand=16),
    ]
    ben_work = [mutation("stock.count", warehouse="BER", sku="MILK", counted=13, seen_on_hand=10)]

    a = push(shop, anna.headers, anna_work, replica="anna")
    b = push(shop, ben.headers, ben_work, replica="ben")

    assert [r["status"] for r in a + b] == ["applied"] * 3
    assert b[0]["detail"]["on_hand"] == 19  # 10 + 6 (anna) + 3 (ben's count: 13 - 10)
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 19


def test_a_count_against_a_stale_on_hand_applies_only_the_difference_seen(
    shop: TestClient, manager: Actor
) -> None:
    # The replica last saw 10 of MILK at BER; meanwhile 4 were sold online.
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "MILK", "warehouse": "BER", "delta": -4, "reason": "sale"},
    )
    # Offline, the clerk found 2 broken bottles: counted 8 against the 10 seen.
    results = push(
        shop,
        manager.headers,
        [mutation("stock.count", warehouse="BER", sku="MILK", counted=8, seen_on_hand=10)],
    )

    assert results[0]["status"] == "applied"
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 4  # 10 - 4 - 2


def test_an_offline_sale_beyond_stock_is_applied_as_far_as_it_can_and_flagged(
    shop: TestClient, manager: Actor, actors: Actors, container: Container
) -> None:
    customer = actors.make(Role.CUSTOMER)
    r = shop.post(
        f"{API}/orders",
        json={"lines": [{"sku": "MILK", "qty": 6}], "ship_to": {"lat": 52.5, "lon": 13.4}},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text  # 6 of BER's 10 reserved: 4 available
    sale = mutation("stock.sell", warehouse="BER", sku="MILK", qty=7)

    result = push(shop, manager.headers, [sale])[0]

    assert result["status"] == "conflict"
    detail = result["detail"]
    assert detail["code"] == "short_stock"
    assert (detail["requested"], detail["applied"], detail["shortfall"]) == (7, 4, 3)
    assert (detail["on_hand"], detail["reserved"], detail["available"]) == (6, 6, 0)
    exceptions = shop.get(
        f"{API}/sync/exceptions", params={"status": "open"}, headers=manager.headers
    ).json()["items"]
    assert [(e["id"], e["kind"], e["sku"], e["warehouse"], e["shortfall"]) for e in exceptions] == [
        (detail["exception_id"], "stock.sell", "MILK", "BER", 3)
    ]
    assert exceptions[0]["mutation_id"] == sale["id"]
    with container.db.reading() as session:
        level = session.get(StockLevel, ("MILK", "BER"))
        moves = session.scalars(
            select(Movement).where(Movement.mutation_id == uuid.UUID(sale["id"]))
        )
        (move,) = list(moves)
    assert level is not None and (level.on_hand, level.reserved) == (6, 6)
    assert (move.delta, move.reason, move.replica_id, move.ref) == (
        -4,
        "sale",
        "replica-a",
        f"sync:{sale['id']}",
    )
    assert move.actor_id == str(manager.id)


def test_every_stock_mutation_type_moves_the_ledger_it_describes(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    batch = [
        mutation("stock.receive", warehouse="BER", sku="BREAD", qty=10),
        mutation("stock.adjust", warehouse="BER", sku="BREAD", delta=-2, reason="damage"),
        mutation("stock.adjust", warehouse="BER", sku="BREAD", delta=1, reason="correction"),
        mutation("stock.count", warehouse="BER", sku="BREAD", counted=11, seen_on_hand=12),
        mutation("stock.sell", warehouse="BER", sku="BREAD", qty=3),
        mutation("stock.adjust", warehouse="BER", sku="BREAD", delta=-50, reason="damage"),
    ]

    results = push(shop, manager.headers, batch)

    assert [r["status"] for r in results] == ["applied"] * 5 + ["conflict"]
    with container.db.reading() as session:
        moves = {
            str(m.mutation_id): (m.delta, m.reason)
            for m in session.scalars(select(Movement).where(Movement.replica_id == "replica-a"))
        }
    assert [moves[m["id"]] for m in batch] == [
        (10, "receipt"),
        (-2, "damage"),
        (1, "correction"),
        (-1, "count"),
        (-3, "sale"),
        (-8, "damage"),  # 3 + 10 - 2 + 1 - 1 - 3 = 8 were left
    ]
    assert stock(shop, manager.headers, "BREAD")["BER"]["on_hand"] == 0


def test_product_edits_are_last_writer_wins_by_hybrid_logical_clock(
    shop: TestClient, manager: Actor
) -> None:
    changes, cursor = pull_all(shop, manager.headers, "warehouse:BER")
    seen = int(state(changes)[("product", "MILK")]["hlc"].split("-")[0])  # type: ignore[index]
    # Two replicas rename MILK offline; B's edit is later but reaches the server first.
    edit_a = mutation(
        "product.update",
        f"{seen + 1000}-0-replica-a",
        warehouse="BER",
        sku="MILK",
        fields={"name": "Milk (A)", "price_cents": 199},
    )
    edit_b = mutation(
        "product.update",
        f"{seen + 2000}-0-replica-b",
        warehouse="BER",
        sku="MILK",
        fields={"name": "Milk (B)"},
    )

    b = push(shop, manager.headers, [edit_b], replica="replica-b")[0]
    a = push(shop, manager.headers, [edit_a], replica="replica-a")[0]

    assert b["status"] == "applied"
    # A loses the name but not the price, which nobody else edited.
    assert a["status"] == "conflict"
    assert a["detail"]["code"] == "stale_edit"
    assert (a["detail"]["lost_fields"], a["detail"]["applied_fields"]) == (
        ["name"],
        ["price_cents"],
    )
    product = shop.get(f"{API}/products/MILK").json()
    assert (product["name"], product["price_cents"]) == ("Milk (B)", 199)
    # The replica whose edit lost gets the winner on its next pull.
    new, cursor = pull_all(shop, manager.headers, "warehouse:BER", cursor)
    assert [(c["key"], c["data"]["name"], c["data"]["hlc"]) for c in new] == [
        ("MILK", "Milk (B)", f"{seen + 2000}-0-replica-b")
    ]

    # A server edit is stamped after every stamp it overwrites, even one from a replica clock
    # running ahead of the server's (B's) ...
    r = shop.patch(f"{API}/products/MILK", headers=manager.headers, json={"name": "Milk"})
    assert r.status_code == 200, r.text
    late = mutation(
        "product.update",
        f"{seen + 2000}-0-replica-c",
        warehouse="BER",
        sku="MILK",
        fields={"name": "Milk (C)"},
    )
    assert push(shop, manager.headers, [late], replica="replica-c")[0]["status"] == "conflict"
    (server,) = [c for c in pull_all(shop, manager.headers, "warehouse:BER", cursor)[0]]
    stamp = server["data"]["hlc"]
    assert server["data"]["name"] == "Milk" and stamp.endswith("-server")
    # ... and wins a tie of wall time and counter with a replica.
    wall, counter, _ = stamp.split("-", 2)
    tie = mutation(
        "product.update",
        f"{wall}-{counter}-replica-d",
        warehouse="BER",
        sku="MILK",
        fields={"name": "Milk (D)"},
    )
    later = mutation(
        "product.update",
        f"{wall}-{int(counter) + 1}-replica-d",
        warehouse="BER",
        sku="MILK",
        fields={"price_cents": 120},
    )
    assert [
        r["status"] for r in push(shop, manager.headers, [tie, later], replica="replica-d")
    ] == [
        "conflict",
        "applied",
    ]
    product = shop.get(f"{API}/products/MILK").json()
    assert (product["name"], product["price_cents"]) == ("Milk", 120)


def test_only_managers_and_admins_edit_products_offline(
    shop: TestClient, actors: Actors, manager: Actor
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    edit = mutation(
        "product.update", "9-0-till", warehouse="BER", sku="MILK", fields={"price_cents": 1}
    )

    result = push(shop, clerk.headers, [edit])[0]

    assert (result["status"], result["detail"]["code"]) == ("rejected", "forbidden")
    assert shop.get(f"{API}/products/MILK").json()["price_cents"] == 250


def test_offline_edits_of_archived_products_and_crossed_ranges_lose(
    shop: TestClient, manager: Actor
) -> None:
    r = shop.patch(f"{API}/products/MILK", headers=manager.headers, json={"max_temp_c": 8.0})
    assert r.status_code == 200
    far = "9999999999999"
    crossing = mutation(
        "product.update", f"{far}-0-r", warehouse="BER", sku="MILK", fields={"min_temp_c": 10.0}
    )
    shop.delete(f"{API}/products/BREAD", headers=manager.headers)
    archived = mutation(
        "product.update", "1-0-r", warehouse="BER", sku="BREAD", fields={"name": "Loaf"}
    )

    results = push(shop, manager.headers, [crossing, archived], replica="r")

    assert [r["status"] for r in results] == ["rejected", "conflict"]
    assert results[0]["detail"]["code"] == "hlc_in_future"
    assert results[1]["detail"]["code"] == "product_archived"
    crossing["hlc"] = "1-0-r"
    crossing["id"] = str(uuid.uuid4())
    result = push(shop, manager.headers, [crossing], replica="r")[0]
    assert (result["status"], result["detail"]["lost_fields"]) == ("conflict", ["min_temp_c"])
    assert shop.get(f"{API}/products/MILK").json()["min_temp_c"] is None


def test_exceptions_are_listed_by_warehouse_and_resolved_by_managers(
    shop: TestClient, actors: Actors, manager: Actor
) -> None:
    admin = actors.make(Role.ADMIN)
    clerk_ber = actors.make(Role.CLERK, warehouses=["BER"])
    clerk_ham = actors.make(Role.CLERK, warehouses=["HAM"])
    short_ber = push(
        shop, manager.headers, [mutation("stock.sell", warehouse="BER", sku="BREAD", qty=4)]
    )
    short_ham = push(
        shop, manager.headers, [mutation("stock.sell", warehouse="HAM", sku="MILK", qty=9)]
    )
    ber_id = short_ber[0]["detail"]["exception_id"]
    ham_id = short_ham[0]["detail"]["exception_id"]
    url = f"{API}/sync/exceptions"

    def ids(headers: Headers, **params: str) -> list[int]:
        r = shop.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert ids(manager.headers) == [ber_id, ham_id]
    assert ids(manager.headers, warehouse="HAM") == [ham_id]
    assert ids(clerk_ber.headers) == [ber_id]
    assert ids(clerk_ham.headers, warehouse="HAM") == [ham_id]
    assert_error(shop.get(url, params={"warehouse": "BER"}, headers=clerk_ham.headers), 403)
    assert_error(shop.get(url, headers=actors.make(Role.CUSTOMER).headers), 403)
    till = device(shop, admin, "warehouse:BER")
    assert_error(shop.get(url, headers=till), 403)

    resolve = f"{url}/{ber_id}/resolve"
    assert_error(shop.post(resolve, json={"note": "x"}, headers=clerk_ber.headers), 403)
    r = shop.post(resolve, json={"note": "one loaf was in the back room"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "resolved" and body["resolved_by"] == str(admin.id)
    assert body["note"] == "one loaf was in the back room" and body["resolved_at"]
    assert_error(
        shop.post(resolve, json={"note": "again"}, headers=manager.headers), 409, "already_resolved"
    )
    assert_error(
        shop.post(f"{url}/999999/resolve", json={"note": "x"}, headers=manager.headers), 404
    )
    assert ids(manager.headers, status="open") == [ham_id]
    assert ids(manager.headers, status="resolved") == [ber_id]
    page = shop.get(url, params={"limit": 1}, headers=manager.headers).json()
    assert [i["id"] for i in page["items"]] == [ber_id]
    rest = shop.get(url, params={"cursor": page["next_cursor"]}, headers=manager.headers).json()
    assert [i["id"] for i in rest["items"]] == [ham_id] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"scope": "shop:BER"},
        {"scope": "warehouse:"},
        {"scope": "warehouse:BER", "limit": 0},
        {"scope": "warehouse:BER", "limit": 5001},
        {"scope": "warehouse:BER", "since": "not a cursor!"},
        {"scope": "warehouse:BER", "since": "e30"},  # {}
        {"scope": "warehouse:BER", "since": "eyJ2IjoxfQ"},  # {"v":1}
        {"scope": "warehouse:BER", "since": "AAAA"},
        {"scope": "warehouse:BER", "since": "x" * 9000},
    ],
)
def test_malformed_pulls_are_refused_with_422(
    shop: TestClient, manager: Actor, params: dict[str, Any]
) -> None:
    assert_error(shop.get(f"{API}/sync/pull", params=params, headers=manager.headers), 422)


def test_a_cursor_serves_only_the_scope_and_server_it_came_from(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    _, cursor = pull_all(shop, manager.headers, "warehouse:BER")

    r = shop.get(
        f"{API}/sync/pull",
        params={"scope": "warehouse:HAM", "since": cursor},
        headers=manager.headers,
    )
    assert_error(r, 422, "invalid_cursor")

    # A cursor from a database that has since gone back in time (restored from a backup).
    from storekeeper.sync import cursor as cursors

    ahead = cursors.decode(cursor, scope="warehouse:BER", db=container.db.dialect)
    since = ahead.since.model_copy(update={"xmax": ahead.since.xmax + 10**6})
    r = shop.get(
        f"{API}/sync/pull",
        params={
            "scope": "warehouse:BER",
            "since": cursors.encode(ahead.model_copy(update={"since": since})),
        },
        headers=manager.headers,
    )
    assert_error(r, 409, "resync_required")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"replica_id": "r"},
        {"replica_id": "", "mutations": []},
        {"replica_id": "r r", "mutations": []},
        {
            "replica_id": "r",
            "mutations": [{"id": "nope", "type": "stock.sell", "data": {}, "hlc": "1-0-r"}],
        },
        {
            "replica_id": "r",
            "mutations": [{"id": str(uuid.UUID(int=1)), "type": "stock.sell", "data": []}],
        },
        {
            "replica_id": "r",
            "mutations": [{"id": str(uuid.UUID(int=1)), "type": "", "data": {}, "hlc": "1-0-r"}],
        },
        {
            "replica_id": "r",
            "mutations": [
                {
                    "id": str(uuid.UUID(int=1)),
                    "type": "stock.sell",
                    "data": {},
                    "hlc": "1-0-r",
                    "x": 1,
                }
            ],
        },
        {"replica_id": "r", "mutations": [mutation("stock.sell")] * 1001},
    ],
)
def test_malformed_pushes_are_refused_with_422(
    shop: TestClient, manager: Actor, body: dict[str, Any]
) -> None:
    assert_error(shop.post(f"{API}/sync/push", json=body, headers=manager.headers), 422)


def test_a_bad_mutation_is_rejected_on_its_own(shop: TestClient, manager: Actor) -> None:
    good = mutation("stock.receive", warehouse="BER", sku="MILK", qty=1)
    bad = [
        mutation("stock.teleport", warehouse="BER", sku="MILK"),
        mutation("stock.receive", "yesterday", warehouse="BER", sku="MILK", qty=1),
        mutation("stock.receive", "1-0-server", warehouse="BER", sku="MILK", qty=1),
        mutation("stock.receive", warehouse="BER", sku="MILK", qty=0),
        mutation("stock.receive", warehouse="BER", sku="MILK", qty="1"),
        mutation("stock.adjust", warehouse="BER", sku="MILK", delta=0, reason="damage"),
        mutation("stock.adjust", warehouse="BER", sku="MILK", delta=1, reason="theft"),
        mutation("stock.count", warehouse="BER", sku="MILK", counted=-1, seen_on_hand=0),
        mutation("stock.sell", warehouse="BER", sku="MILK", qty=1, extra="\x00"),
        mutation("stock.sell", warehouse="NOWHERE", sku="MILK", qty=1),
        mutation("stock.sell", warehouse="BER", sku="NOTHING", qty=1),
        mutation("product.update", warehouse="BER", sku="MILK", fields={}),
        mutation("product.update", warehouse="BER", sku="MILK", fields={"name": None}),
        mutation("product.update", warehouse="BER", sku="MILK", fields={"currency": "USD"}),
        mutation(
            "product.update", warehouse="BER", sku="MILK", fields={"min_temp_c": 5, "max_temp_c": 1}
        ),
        mutation("product.update", warehouse="BER", sku="NOTHING", fields={"name": "x"}),
    ]

    results = push(shop, manager.headers, [*bad, good])

    assert [r["status"] for r in results] == ["rejected"] * len(bad) + ["applied"]
    assert [r["detail"]["code"] for r in results[:3]] == [
        "unknown_type",
        "invalid_hlc",
        "invalid_hlc",
    ]
    assert {r["detail"]["code"] for r in results[3:9]} == {"invalid_data"}
    assert [r["detail"]["code"] for r in results[9:11]] == ["unknown_warehouse", "unknown_sku"]
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 11
    # A refusal is a verdict too: replayed, it is a duplicate.
    again = push(shop, manager.headers, [bad[0]])[0]
    assert (again["status"], again["detail"]["original"]["status"]) == ("duplicate", "rejected")


def test_an_exception_is_resolved_by_accepting_the_loss_counting_or_attaching_a_receipt(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    from storekeeper.inventory import history

    def receipts(sku: str) -> list[int]:
        with container.db.reading() as session:
            rows, _ = history.list_movements(session, sku=sku, warehouses=["BER"])
        return [m.id for m in rows if m.reason == "receipt"]  # newest first

    def exception_of(result: dict[str, Any]) -> str:
        assert result["detail"]["code"] == "short_stock", result
        return f"{API}/sync/exceptions/{result['detail']['exception_id']}/resolve"

    bread, milk_ham, milk_count = (
        exception_of(r)
        for r in push(
            shop,
            manager.headers,
            [
                mutation("stock.sell", warehouse="BER", sku="BREAD", qty=5),
                mutation("stock.sell", warehouse="HAM", sku="MILK", qty=6),
                mutation("stock.count", warehouse="BER", sku="MILK", counted=0, seen_on_hand=20),
            ],
        )
    )
    listed = shop.get(f"{API}/sync/exceptions", headers=manager.headers).json()["items"]
    assert [(e["seen_on_hand"], e["server_on_hand"], e["shortfall"]) for e in listed] == [
        (None, 0, 2),
        (None, 0, 2),
        (20, 0, 10),
    ]

    # The two BREAD the till sold came from a delivery booked only afterwards.
    add_product(shop, manager.headers, "SOAP", stock={"BER": 1})
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "BREAD", "warehouse": "BER", "delta": 5, "reason": "receipt"},
    )
    delivery = receipts("BREAD")[0]
    assert_error(
        shop.post(
            bread,
            json={"note": "x", "resolution": "attach_receipt", "receipt_id": receipts("SOAP")[0]},
            headers=manager.headers,
        ),
        422,
        "not_a_receipt",
    )
    r = shop.post(
        bread,
        json={
            "note": "delivery 7 came early",
            "resolution": "attach_receipt",
            "receipt_id": delivery,
        },
        headers=manager.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["resolution"], r.json()["receipt_id"]) == ("attach_receipt", delivery)
    assert stock(shop, manager.headers, "BREAD")["BER"]["on_hand"] == 3

    # A shelf count settles the count against a stale on-hand.
    assert_error(
        shop.post(
            milk_count, json={"note": "x", "resolution": "correct_count"}, headers=manager.headers
        ),
        422,
    )
    r = shop.post(
        milk_count,
        json={"note": "counted again", "resolution": "correct_count", "counted": 7},
        headers=manager.headers,
    )
    assert (r.status_code, r.json()["counted"]) == (200, 7), r.text
    assert stock(shop, manager.headers, "MILK")["BER"]["on_hand"] == 7

    # Accepting the loss leaves stock as it is.
    assert_error(
        shop.post(
            milk_ham,
            json={"note": "x", "resolution": "accept_loss", "counted": 1},
            headers=manager.headers,
        ),
        422,
    )
    r = shop.post(
        milk_ham, json={"note": "broken", "resolution": "accept_loss"}, headers=manager.headers
    )
    assert (r.status_code, r.json()["resolution"]) == (200, "accept_loss"), r.text
    assert stock(shop, manager.headers, "MILK")["HAM"]["on_hand"] == 0

    # A receipt covers no more units than it brought, across the exceptions attached to it.
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "BREAD", "warehouse": "BER", "delta": 20, "reason": "receipt"},
    )
    short = push(
        shop, manager.headers, [mutation("stock.sell", warehouse="BER", sku="BREAD", qty=30)]
    )
    again = exception_of(short[0])
    assert stock(shop, manager.headers, "BREAD")["BER"]["on_hand"] == 0
    shop.post(
        f"{API}/stock/movements",
        headers=manager.headers,
        json={"sku": "BREAD", "warehouse": "BER", "delta": 20, "reason": "receipt"},
    )
    body = {"note": "x", "resolution": "attach_receipt", "receipt_id": delivery}
    assert_error(shop.post(again, json=body, headers=manager.headers), 409, "receipt_used_up")
    assert stock(shop, manager.headers, "BREAD")["BER"]["on_hand"] == 20


def test_a_restore_from_a_backup_sends_every_earlier_cursor_back_to_the_start(
    shop: TestClient, manager: Actor, container: Container
) -> None:
    from storekeeper.events import restores
    from storekeeper.sync import cursor as cursors

    _, cursor = pull_all(shop, manager.headers, "warehouse:BER")
    # A cursor issued before cursors carried a generation reads as "never restored": still good.
    held = cursors.decode(cursor, scope="warehouse:BER", db=container.db.dialect)
    legacy = base64.urlsafe_b64encode(held.model_dump_json(exclude={"gen"}).encode())
    pull(shop, manager.headers, "warehouse:BER", legacy.decode().rstrip("="))

    with container.db.transaction() as session:  # what `storekeeper restore` records last
        restores.start_generation(session.connection(), backup_started_at=None, backup_point=0)
    r = shop.get(
        f"{API}/sync/pull",
        params={"scope": "warehouse:BER", "since": cursor},
        headers=manager.headers,
    )
    assert_error(r, 409, "resync_required")
    # Starting over works, and the new cursor is good in the new generation.
    _, fresh = pull_all(shop, manager.headers, "warehouse:BER")
    pull(shop, manager.headers, "warehouse:BER", fresh)
