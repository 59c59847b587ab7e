"""``WatchStock`` re-proves its caller as SSE does, and one account holds only its share of the
watch streams; a real gRPC server on a free port, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts import devices as accounts_devices
from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.grpc import server as grpc_server
from storekeeper.grpc.client import InventoryClient, InventoryError, StockWatch
from tests.conftest import Actor, Actors
from tests.shop import add_product, add_warehouses

WAIT_S = 30.0  # a safety net against a hung stream, never a measure of speed


def token_of(actor: Actor) -> str:
    """The bearer token in an actor's HTTP headers."""
    return actor.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def target(container: Container, client: TestClient, manager: Actor) -> Iterator[str]:
    """A gRPC server re-checking callers every 0.2 s, at most 2 watches per account."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "W-1", stock={"BER": 10})
    running = grpc_server.start(
        db=container.db,
        authenticator=container.authenticator,
        host="127.0.0.1",
        port=0,
        threads=16,
        watch_poll_s=0.05,
        recheck_s=0.2,
        max_watches_per_account=2,
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(grace_s=1)


def _ended_with(watch: StockWatch) -> grpc.StatusCode | None:
    """How the server ended the stream (no stock changes here, so it sends nothing)."""
    ended: list[grpc.StatusCode] = []

    def read() -> None:
        try:
            for _ in watch:
                pass
        except InventoryError as exc:
            ended.append(exc.status)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(WAIT_S)
    if reader.is_alive():  # the server kept streaming: end it here, the test fails
        watch.cancel()
        reader.join(WAIT_S)
        return None
    return ended[0] if ended else grpc.StatusCode.OK


def test_a_revoked_devices_watch_ends_unauthenticated(target: str, container: Container) -> None:
    with container.db.transaction() as session:
        device = accounts_devices.create_device(
            session,
            container.settings,
            key=container.signing_key,
            label="handheld",
            scope="warehouse:BER",
            actor_id=uuid.uuid4(),
        )
    with InventoryClient(target, device.token, timeout_s=WAIT_S) as inventory:
        watch = inventory.watch_stock()
        with container.db.transaction() as session:
            accounts_devices.revoke_device(
                session, device_id=device.device.id, actor_id=uuid.uuid4()
            )
        assert _ended_with(watch) is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"is_active": False}, grpc.StatusCode.UNAUTHENTICATED),
        ({"role": Role.CUSTOMER}, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_a_disabled_or_demoted_managers_watch_ends(
    target: str,
    container: Container,
    actors: Actors,
    change: dict[str, object],
    status: grpc.StatusCode,
) -> None:
    watcher = actors.make(Role.MANAGER)
    with InventoryClient(target, token_of(watcher), timeout_s=WAIT_S) as inventory:
        watch = inventory.watch_stock()
        fields: dict[str, object] = {"role": None, "is_active": None, "warehouses": None}
        with container.db.transaction() as session:
            accounts_users.update(
                session,
                user_id=watcher.id,
                actor_id=uuid.uuid4(),
                **{**fields, **change},  # type: ignore[arg-type]
            )
        assert _ended_with(watch) is status


def test_one_account_holds_only_its_share_of_watch_streams(
    target: str, actors: Actors, manager: Actor
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    with InventoryClient(target, token_of(clerk), timeout_s=WAIT_S) as inventory:
        held = [inventory.watch_stock(), inventory.watch_stock()]
        with pytest.raises(InventoryError) as refused:
            inventory.watch_stock()
        assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
        # Another account still gets a stream while the clerk holds theirs.
        with InventoryClient(target, token_of(manager), timeout_s=WAIT_S) as other:
            other.watch_stock().cancel()
        for watch in held:
            watch.cancel()
