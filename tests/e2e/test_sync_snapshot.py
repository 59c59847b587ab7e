"""Initial sync from a snapshot through the HTTP API and ``storekeeper_client.Replica``, on both
backends (docs/sync.md, "Initial sync from a snapshot").

The replicas talk to the real app in this process (a ``TestClient`` is an ``httpx.Client``), so
a test can write on the server at an exact point of a replica's sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container
from storekeeper_client import Replica
from storekeeper_client import snapshot as client_snapshot
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_product, add_warehouses

BER = "warehouse:BER"
MILK_EDIT = {
    "attributes": {"fat": 3.5, "origin": "Sächsische Schweiz", "tags": ["bio"]},
    "min_temp_c": 2.0,
    "max_temp_c": 7.5,
    "barcodes": ["4006381333931", "036000291452"],
}


def token(actor: Actor) -> str:
    return actor.headers["Authorization"].removeprefix("Bearer ")


def replica(app: Any, path: Path, actor: Actor, **kw: Any) -> Replica:
    """A replica of BER reaching ``app`` in this process."""
    made = Replica(path, "http://testserver", token(actor), scope=BER, **kw)
    assert made._http is not None
    made._http.close()
    made._http = TestClient(app)
    return made


def shown(till: Replica) -> list[Any]:
    """Everything a replica shows: products (pending edits applied) and their BER stock."""
    products = till.products()
    return [products, [till.stock(p["sku"]) for p in products]]


def test_the_snapshot_is_the_scope_as_of_its_cursor_for_those_who_may_sync_it(
    client: TestClient, actors: Actors, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", stock={"BER": 10, "HAM": 4})
    add_product(client, manager.headers, "TEA", stock={"HAM": 2})
    device = actors.make(Role.DEVICE, warehouses=["BER"])
    params = {"scope": BER}

    r = client.get(f"{API}/sync/snapshot", params=params, headers=device.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("text/plain")
    plain = client.get(
        f"{API}/sync/snapshot",
        params=params,
        headers={**device.headers, "Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers and plain.content == r.content
    parsed = client_snapshot.parse(r.content)
    assert parsed is not None
    assert parsed.products[0] == ["MILK", "TEA"]
    assert parsed.stock[0] == ["MILK"]  # BER's stock rows only
    # Its cursor is a pull cursor: nothing new after it yet.
    r = client.get(
        f"{API}/sync/pull", params={**params, "since": parsed.cursor}, headers=device.headers
    )
    assert r.status_code == 200 and r.json()["changes"] == []

    assert_error(
        client.get(
            f"{API}/sync/snapshot", params={"scope": "warehouse:HAM"}, headers=device.headers
        ),
        403,
        "scope_not_allowed",
    )
    customer = actors.make(Role.CUSTOMER)
    assert (
        client.get(f"{API}/sync/snapshot", params=params, headers=customer.headers).status_code
        == 403
    )
    assert client.get(f"{API}/sync/snapshot", params=params).status_code == 401
    assert_error(
        client.get(
            f"{API}/sync/snapshot", params={"scope": "warehouse:XXX"}, headers=manager.headers
        ),
        404,
        "unknown_warehouse",
    )
    bad = client.get(f"{API}/sync/snapshot", params={"scope": "BER"}, headers=manager.headers)
    assert bad.status_code == 422


def test_a_replica_started_from_the_snapshot_loses_no_write_made_before_its_feed_and_converges(
    client: TestClient, actors: Actors, manager: Actor, container: Container, tmp_path: Path
) -> None:
    add_warehouses(client, manager.headers)
    for sku in ("BREAD", "JAM", "MILK"):
        add_product(client, manager.headers, sku, stock={"BER": 10})
    r = client.patch(f"{API}/products/MILK", headers=manager.headers, json=MILK_EDIT)
    assert r.status_code == 200, r.text
    device = actors.make(Role.DEVICE, warehouses=["BER"])
    container.sync_snapshots.reuse_s = 3600  # the third replica below gets the same snapshot
    app = client.app

    def write_on_the_server(rows: int) -> None:
        # Called once the snapshot is stored, before the first pull from its cursor.
        if rows != 6:
            return
        for method, url, body in (
            (
                "POST",
                "/stock/movements",
                {"sku": "MILK", "warehouse": "BER", "delta": 5, "reason": "receipt"},
            ),
            ("PATCH", "/products/BREAD", {"name": "Roggenbrot", "barcodes": ["SHELF 7"]}),
            ("DELETE", "/products/JAM", None),
        ):
            answer = client.request(method, f"{API}{url}", headers=manager.headers, json=body)
            assert answer.is_success, answer.text

    with replica(app, tmp_path / "till.db", device) as till:
        till.sell("MILK", 2)  # queued offline before the first sync: pushed, then the copy
        summary = till.sync(on_progress=write_on_the_server)
        assert summary.snapshot_rows == 6  # 3 products + 3 stock rows
        assert summary.pulled > 6  # the writes came through the feed after it
        with replica(app, tmp_path / "paged.db", device, use_snapshot=False) as paged:
            assert paged.sync().snapshot_rows == 0
            assert shown(till) == shown(paged)
            with replica(app, tmp_path / "late.db", device) as late:
                # The cached snapshot, from before the writes; the feed brings them.
                assert late.sync().snapshot_rows == 6
                assert shown(late) == shown(till)
                # The clock saw the newest stamp either way (``till`` also ticked for its sale).
                assert late._store.clock() == paged._store.clock()
        assert container.sync_snapshots.builds == 1

        milk = till.product("MILK")
        assert milk is not None and milk["attributes"] == MILK_EDIT["attributes"]
        assert isinstance(milk["min_temp_c"], float) and milk["barcodes"] == [
            "036000291452",
            "4006381333931",
        ]
        assert till.stock("MILK").on_hand == 13  # type: ignore[union-attr]  # 10 - 2 + 5
        bread = till.product_by_barcode("SHELF 7")
        assert bread is not None and bread["name"] == "Roggenbrot"
        assert till.product("JAM") is None and till.stock("JAM") is not None
        assert till.sync().pulled == 0


def test_a_server_without_snapshots_is_pulled_page_by_page(
    client: TestClient, actors: Actors, manager: Actor, container: Container, tmp_path: Path
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", stock={"BER": 10})
    # A server from before snapshots: the path is unknown there, answered as any unknown path.
    old = create_app(container=container)

    async def unknown(_: Request) -> Response:
        raise HTTPException(status_code=404)

    old.router.routes.insert(0, Route(f"{API}/sync/snapshot", unknown))
    device = actors.make(Role.DEVICE, warehouses=["BER"])

    with replica(old, tmp_path / "till.db", device, page_size=1) as till:
        summary = till.sync()
        assert (summary.snapshot_rows, summary.pulled) == (0, 2)
        assert not till.use_snapshot  # not asked again by this replica
        assert till.stock("MILK").on_hand == 10  # type: ignore[union-attr]
