"""The gRPC inventory service against a real server on a real port, on SQLite and PostgreSQL.

An in-process ``grpc.server`` (bound to a free port) serves the test's container; the HTTP side
is the in-process app of the same container. What must hold: the same numbers as HTTP, the same
authorization, idempotent Reserve and Release, clear status codes, and a live feed of changes.
The race with HTTP orders is in ``test_grpc_race.py``, the CLI process in ``test_grpc_cli.py``.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.errors import Conflict, DomainError, NotAuthenticated
from storekeeper.grpc import interceptors
from storekeeper.grpc import server as grpc_server
from storekeeper.grpc.client import InventoryClient, InventoryError, StockChange
from storekeeper.grpc.gen import inventory_pb2 as pb
from storekeeper.grpc.gen.inventory_pb2_grpc import InventoryStub
from storekeeper.inventory import handlers as inventory_handlers
from tests.conftest import Actor, Actors
from tests.shop import BREMEN, add_product, add_warehouses, stock

SKU = "GRPC-1"
WAIT_S = 15.0  # a safety net against a hung stream, never a measure of speed


def token_of(actor: Actor) -> str:
    """The bearer token in an actor's HTTP headers."""
    return actor.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def target(grpc_target: str) -> str:
    """The address of a real gRPC server on the test database (``grpc_target``)."""
    return grpc_target


@pytest.fixture
def shop(client: TestClient, manager: Actor) -> None:
    """BER, HAM, MUC; SKU with 10 in BER, 5 in HAM, 0 in MUC; GRPC-2 with 3 in MUC."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, SKU, stock={"BER": 10, "HAM": 5})
    add_product(client, manager.headers, "GRPC-2", stock={"MUC": 3})


@pytest.fixture
def inventory(target: str, manager: Actor) -> Iterator[InventoryClient]:
    """A client signed in as the manager."""
    with InventoryClient(target, token_of(manager)) as c:
        yield c


def calls(method: str, code: str) -> float:
    """How many gRPC calls of ``method`` ended with ``code`` so far, in this process."""
    value = REGISTRY.get_sample_value(
        "storekeeper_grpc_calls_total", {"method": method, "code": code}
    )
    return value or 0.0


def fails(status: grpc.StatusCode, code: str | None = None) -> pytest.RaisesExc[InventoryError]:
    """Expect an InventoryError with this status (and machine-readable code)."""
    return pytest.raises(InventoryError, check=lambda e: _matches(e, status, code))


def _matches(error: InventoryError, status: grpc.StatusCode, code: str | None) -> bool:
    assert error.status == status, error
    assert code is None or error.code == code, error
    assert error.detail, error
    return True


@pytest.mark.usefixtures("shop")
def test_get_stock_equals_http(
    inventory: InventoryClient, client: TestClient, manager: Actor, customer: Actor
) -> None:
    r = client.post(
        "/api/v1/orders",
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": [{"sku": SKU, "qty": 4}], "ship_to": BREMEN},
    )
    assert r.status_code == 201, r.text
    http = client.get(f"/api/v1/stock/{SKU}", headers=manager.headers).json()
    got = inventory.get_stock(SKU)
    assert (got.sku, got.on_hand, got.reserved, got.available) == (
        http["sku"],
        http["on_hand"],
        http["reserved"],
        http["available"],
    )
    assert [(lv.warehouse, lv.on_hand, lv.reserved, lv.available) for lv in got.warehouses] == [
        (w["warehouse"], w["on_hand"], w["reserved"], w["available"]) for w in http["warehouses"]
    ]
    assert got.reserved == 4


@pytest.mark.usefixtures("shop")
def test_reserve_and_release_are_idempotent(
    inventory: InventoryClient, client: TestClient, manager: Actor
) -> None:
    ok_before = calls("Reserve", "OK")
    first = inventory.reserve("pick-1", {SKU: 3}, ship_to=(BREMEN["lat"], BREMEN["lon"]))
    assert [(a.sku, a.warehouse, a.qty) for a in first.allocations] == [(SKU, "HAM", 3)]
    assert not first.replayed
    again = inventory.reserve("pick-1", {SKU: 3})
    assert again.allocations == first.allocations and again.replayed
    assert stock(client, manager.headers, SKU)["HAM"]["reserved"] == 3  # once, not twice
    with fails(grpc.StatusCode.ALREADY_EXISTS, "ref_in_use"):
        inventory.reserve("pick-1", {SKU: 4})
    assert calls("Reserve", "OK") - ok_before == 2
    assert calls("Reserve", "ALREADY_EXISTS") >= 1

    assert inventory.release("pick-1") == 3
    assert inventory.release("pick-1") == 0
    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 0
    with fails(grpc.StatusCode.ALREADY_EXISTS, "ref_in_use"):
        inventory.reserve("pick-1", {SKU: 3})  # a ref names one reservation for good
    with fails(grpc.StatusCode.NOT_FOUND, "unknown_reservation"):
        inventory.release("never-reserved")


@pytest.mark.usefixtures("shop")
def test_insufficient_stock_reserves_nothing(
    inventory: InventoryClient, client: TestClient, manager: Actor
) -> None:
    with fails(grpc.StatusCode.FAILED_PRECONDITION, "insufficient_stock"):
        inventory.reserve("too-much", {SKU: 10, "GRPC-2": 4})
    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 0
    assert stock(client, manager.headers, "GRPC-2")["total"]["reserved"] == 0
    split = inventory.reserve("split", {SKU: 12})  # no single warehouse has 12: split
    assert sorted((a.warehouse, a.qty) for a in split.allocations) == [("BER", 10), ("HAM", 2)]


@pytest.mark.usefixtures("shop")
def test_invalid_arguments_and_unknown_things(inventory: InventoryClient) -> None:
    with fails(grpc.StatusCode.INVALID_ARGUMENT):
        inventory.get_stock("not a sku!")
    with fails(grpc.StatusCode.NOT_FOUND, "unknown_sku"):
        inventory.get_stock("NO-SUCH-SKU")
    with fails(grpc.StatusCode.NOT_FOUND, "unknown_sku"):
        inventory.reserve("r-unknown", {"NO-SUCH-SKU": 1})
    with fails(grpc.StatusCode.NOT_FOUND, "unknown_warehouse"):
        inventory.reserve("r-wh", {SKU: 1}, warehouses=["XXX"])
    for bad_ref in ("", "x" * 121, "spaces are not allowed"):
        with fails(grpc.StatusCode.INVALID_ARGUMENT):
            inventory.reserve(bad_ref, {SKU: 1})
    for bad_lines in ({}, {SKU: 0}, {SKU: -1}, {SKU: 100_001}):
        with fails(grpc.StatusCode.INVALID_ARGUMENT):
            inventory.reserve("r-bad", bad_lines)
    with fails(grpc.StatusCode.INVALID_ARGUMENT):
        inventory.reserve("r-far", {SKU: 1}, ship_to=(91.0, 0.0))
    with fails(grpc.StatusCode.INVALID_ARGUMENT):
        inventory.reserve("r-nan", {SKU: 1}, ship_to=(float("nan"), 0.0))


@pytest.mark.usefixtures("shop")
def test_authentication_and_roles(
    target: str, actors: Actors, customer: Actor, client: TestClient
) -> None:
    with InventoryClient(target, "") as anonymous, fails(grpc.StatusCode.UNAUTHENTICATED):
        anonymous.get_stock(SKU)
    with InventoryClient(target, "not.a.jwt") as forged, fails(grpc.StatusCode.UNAUTHENTICATED):
        forged.get_stock(SKU)
    # No bearer metadata at all, straight through a channel.
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as raw:
            InventoryStub(channel).GetStock(pb.GetStockRequest(sku=SKU), timeout=WAIT_S)
        assert raw.value.code() is grpc.StatusCode.UNAUTHENTICATED

    with InventoryClient(target, token_of(customer)) as shopper:
        with fails(grpc.StatusCode.PERMISSION_DENIED, "forbidden"):
            shopper.get_stock(SKU)
        with fails(grpc.StatusCode.PERMISSION_DENIED, "forbidden"):
            shopper.reserve("c-1", {SKU: 1})

    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    with InventoryClient(target, token_of(clerk)) as handheld:
        assert handheld.get_stock(SKU).on_hand == 15
        r = client.post("/api/v1/auth/logout", headers=clerk.headers)
        assert r.status_code in (200, 204), r.text
        with fails(grpc.StatusCode.UNAUTHENTICATED, "invalid_token"):  # session ended: at once
            handheld.get_stock(SKU)


@pytest.mark.usefixtures("shop")
def test_clerk_reserves_only_at_assigned_warehouses(
    target: str, actors: Actors, inventory: InventoryClient, client: TestClient, manager: Actor
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    with InventoryClient(target, token_of(clerk)) as handheld:
        with fails(grpc.StatusCode.PERMISSION_DENIED, "warehouse_not_assigned"):
            handheld.reserve("k-1", {SKU: 1}, warehouses=["HAM"])
        # HAM is nearer to Bremen, but a clerk of BER reserves from BER.
        mine = handheld.reserve("k-2", {SKU: 2}, ship_to=(BREMEN["lat"], BREMEN["lon"]))
        assert [(a.warehouse, a.qty) for a in mine.allocations] == [("BER", 2)]
        with fails(grpc.StatusCode.FAILED_PRECONDITION, "insufficient_stock"):
            handheld.reserve("k-3", {"GRPC-2": 1})  # only MUC has it
        inventory.reserve("m-1", {SKU: 1}, warehouses=["HAM"])
        with fails(grpc.StatusCode.PERMISSION_DENIED, "warehouse_not_assigned"):
            handheld.release("m-1")  # held in HAM
        with fails(grpc.StatusCode.PERMISSION_DENIED, "warehouse_not_assigned"):
            handheld.reserve("m-1", {SKU: 1})  # a replay would show HAM's allocation
        assert handheld.release("k-2") == 2
    assert stock(client, manager.headers, SKU)["HAM"]["reserved"] == 1

    nowhere = actors.make(Role.CLERK)
    with (
        InventoryClient(target, token_of(nowhere)) as handheld,
        fails(grpc.StatusCode.PERMISSION_DENIED, "warehouse_not_assigned"),
    ):
        handheld.reserve("k-4", {SKU: 1})


@pytest.mark.usefixtures("shop")
def test_device_sees_only_its_warehouse(target: str, actors: Actors) -> None:
    device = actors.make(Role.DEVICE, warehouses=["HAM"])
    with InventoryClient(target, token_of(device)) as box:
        seen = box.get_stock(SKU)
        assert [lv.warehouse for lv in seen.warehouses] == ["HAM"]
        assert (seen.on_hand, seen.available) == (5, 5)
        with fails(grpc.StatusCode.PERMISSION_DENIED):
            box.reserve("d-1", {SKU: 1})
        with fails(grpc.StatusCode.PERMISSION_DENIED, "scope_not_allowed"):
            box.watch_stock(warehouse="BER")


def _collect(changes: Iterator[StockChange], into: queue.Queue[StockChange]) -> None:
    for change in changes:
        into.put(change)


@pytest.mark.usefixtures("shop")
def test_watch_stock_receives_changes_made_over_http(
    inventory: InventoryClient, client: TestClient, manager: Actor, customer: Actor
) -> None:
    received: queue.Queue[StockChange] = queue.Queue()
    with inventory.watch_stock(skus=[SKU], warehouse="BER") as watch:
        reader = threading.Thread(target=_collect, args=(iter(watch), received), daemon=True)
        reader.start()
        for sku, warehouse in (("GRPC-2", "MUC"), (SKU, "HAM"), (SKU, "BER")):
            r = client.post(
                "/api/v1/stock/movements",
                headers=manager.headers,
                json={"sku": sku, "warehouse": warehouse, "delta": 7, "reason": "receipt"},
            )
            assert r.status_code == 201, r.text
        r = client.post(
            "/api/v1/orders",
            headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
            json={"lines": [{"sku": SKU, "qty": 2}]},  # most available: BER (17)
        )
        assert r.status_code == 201, r.text
        inventory.reserve("w-1", {SKU: 1}, warehouses=["BER"])
        got = [received.get(timeout=WAIT_S) for _ in range(3)]
    reader.join(WAIT_S)
    assert not reader.is_alive()
    assert received.empty()  # the MUC and HAM changes were filtered out
    assert [(c.sku, c.warehouse, c.reason, c.on_hand, c.reserved) for c in got] == [
        (SKU, "BER", "receipt", 17, 0),
        (SKU, "BER", "reserved", 17, 2),
        (SKU, "BER", "reserved", 17, 3),
    ]
    assert got[1].ref.startswith("order:") and got[2].ref == "grpc:w-1"
    assert got[0].position < got[1].position < got[2].position
    assert got[2].available == 14


@pytest.mark.usefixtures("shop")
def test_concurrent_retries_of_one_ref_reserve_once(
    target: str, manager: Actor, client: TestClient
) -> None:
    callers = 8
    barrier = threading.Barrier(callers)

    def retry() -> tuple[tuple[str, int], ...]:
        with InventoryClient(target, token_of(manager)) as inventory:
            inventory.get_stock(SKU)  # connected before the start line
            barrier.wait(timeout=WAIT_S)
            done = inventory.reserve("same-ref", {SKU: 4})
        return tuple((a.warehouse, a.qty) for a in done.allocations)

    results: list[tuple[tuple[str, int], ...]] = []
    threads = [threading.Thread(target=lambda: results.append(retry())) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert len(results) == callers and len(set(results)) == 1, results
    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 4


@pytest.mark.usefixtures("shop")
def test_watch_streams_are_capped(container: Container, manager: Actor) -> None:
    running = grpc_server.start(
        db=container.db,
        authenticator=container.authenticator,
        host="127.0.0.1",
        port=0,
        threads=2,
    )  # 1 watcher
    try:
        with InventoryClient(f"127.0.0.1:{running.port}", token_of(manager)) as inventory:
            with inventory.watch_stock(), fails(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded"):
                inventory.watch_stock()
            assert inventory.get_stock(SKU).on_hand == 15  # unary calls still served
            # A hung-up watch gives its place back once the server notices.
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    inventory.watch_stock().cancel()
                    break
                except InventoryError as exc:
                    assert exc.code == "overloaded", exc
                    assert time.monotonic() < deadline, "the cancelled watch kept its place"
                    time.sleep(0.05)
    finally:
        running.stop(grace_s=1)


def test_every_failure_maps_to_a_status_never_unknown() -> None:
    assert interceptors.status_of(NotAuthenticated("x")) is grpc.StatusCode.UNAUTHENTICATED
    assert interceptors.status_of(Conflict("x")) is grpc.StatusCode.FAILED_PRECONDITION
    assert interceptors.status_of(DomainError("x")) is grpc.StatusCode.FAILED_PRECONDITION
    status, detail, code = interceptors._outcome(RuntimeError("secret internals"))
    assert (status, code) == (grpc.StatusCode.INTERNAL, "internal_error")
    assert "secret" not in detail  # no traceback text leaks to the client


@pytest.mark.usefixtures("shop")
def test_a_reservation_with_a_time_to_live_is_released_by_the_sweeper_once_it_runs_out(
    inventory: InventoryClient, client: TestClient, manager: Actor, container: Container
) -> None:
    inventory.reserve("cart-ttl", {SKU: 2}, ttl_s=1)
    inventory.reserve("cart-kept", {SKU: 3})
    r = client.post(
        "/api/v1/stock/reservations",
        headers=manager.headers,
        json={"ref": "http-ttl", "lines": [{"sku": SKU, "qty": 1}], "ttl_s": 1},
    )
    assert r.status_code == 201, r.text
    with fails(grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"):
        inventory.reserve("cart-forever", {SKU: 1}, ttl_s=8 * 24 * 3600)
    r = client.post(
        "/api/v1/stock/reservations",
        headers=manager.headers,
        json={"ref": "http-bad", "lines": [{"sku": SKU, "qty": 1}], "ttl_s": 0},
    )
    assert r.status_code == 422, r.text
    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 6

    inventory_handlers.release_expired(db=container.db)  # not yet run out: nothing released
    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 6
    time.sleep(1.2)
    inventory_handlers.release_expired(db=container.db)

    assert stock(client, manager.headers, SKU)["total"]["reserved"] == 3
    assert inventory.release("cart-ttl") == 0  # released already: nothing left to give back
    assert inventory.release("cart-kept") == 3
