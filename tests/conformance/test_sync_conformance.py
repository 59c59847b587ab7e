"""One conformance suite, two clients: every scenario runs against the Python replica
(``storekeeper_client``) and the clerk app (``/app/``), and both must pass (docs/sync.md,
"Conformance suite").
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.inventory import ledger
from storekeeper.inventory.models import Movement
from tests.conformance.conftest import MakeClient
from tests.conformance.drivers import ClientDriver, Unreachable
from tests.conftest import Actors, LiveServer
from tests.tea_shop import ledger_sum, on_hand, tea_shop

pytestmark = pytest.mark.live


def _ledger_rows(container: Container, mutation_id: str) -> int:
    with container.db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Movement)
                .where(Movement.mutation_id == uuid.UUID(mutation_id))
            )
            or 0
        )


def test_offline_sales_and_receipts_sync_once_and_empty_the_queue(
    client: ClientDriver, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    client.attach()
    assert client.stock("TEA-1") == (10, 0)

    client.go_offline()
    sold = client.sell("TEA-1", 2)
    received = client.receive("TEA-1", 5)
    assert client.stock("TEA-1") == (13, 2)  # shown at once, pending on top of the copy
    with pytest.raises(Unreachable):
        client.sync()
    assert client.pending() == 2
    assert on_hand(container, "TEA-1") == 10

    client.go_online()
    client.sync()

    assert client.verdicts() == {sold: "applied", received: "applied"}
    assert client.pending() == 0
    assert client.stock("TEA-1") == (13, 0)
    assert (on_hand(container, "TEA-1"), ledger_sum(container, "TEA-1")) == (13, 13)
    assert _ledger_rows(container, sold) == _ledger_rows(container, received) == 1


def test_two_clerks_receiving_offline_for_one_sku_both_count(
    make_client: MakeClient, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    anna, ben = make_client(), make_client()
    for clerk in (anna, ben):
        clerk.attach()
        clerk.go_offline()
    anna.receive("TEA-1", 6)
    ben.receive("TEA-1", 3)

    for clerk in (anna, ben):
        clerk.go_online()
        clerk.sync()
    anna.sync()  # learns of Ben's receipt

    assert (on_hand(container, "TEA-1"), ledger_sum(container, "TEA-1")) == (19, 19)
    assert anna.stock("TEA-1") == ben.stock("TEA-1") == (19, 0)


def test_a_count_against_a_stale_on_hand_applies_its_difference(
    client: ClientDriver, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    client.attach()
    client.go_offline()
    with container.db.transaction() as session:  # meanwhile 4 are sold online: server 6
        ledger.record_movement(session, sku="TEA-1", warehouse="BER", delta=-4, reason="sale")
    counted = client.count("TEA-1", 8)  # 2 broken: 8 on the shelf against the 10 shown
    assert client.stock("TEA-1") == (8, 1)

    client.go_online()
    client.sync()

    assert client.verdicts()[counted] == "applied"
    assert on_hand(container, "TEA-1") == 4  # 6 - 2, not "on-hand := 8"
    assert client.stock("TEA-1") == (4, 0)


def test_a_sale_beyond_stock_is_a_conflict_and_a_sync_exception(
    client: ClientDriver, container: Container, actors: Actors, live_server: LiveServer
) -> None:
    tea_shop(container, {"TEA-1": 3})
    client.attach()
    client.go_offline()
    sold = client.sell("TEA-1", 5)
    assert client.stock("TEA-1") == (-2, 1)

    client.go_online()
    client.sync()

    assert client.verdicts() == {sold: "conflict"}
    assert client.pending() == 0
    assert on_hand(container, "TEA-1") == 0  # the server took what it had
    assert client.stock("TEA-1") == (0, 0)
    manager = actors.make(Role.MANAGER)
    listed = httpx.get(
        f"{live_server.url}/api/v1/sync/exceptions",
        params={"status": "open"},
        headers=manager.headers,
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    assert [(e["mutation_id"], e["requested"], e["shortfall"]) for e in listed.json()["items"]] == [
        (sold, 5, 2)
    ]


def test_a_lost_push_answer_is_retried_as_a_duplicate_with_one_ledger_row(
    client: ClientDriver, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    client.attach()
    sold = client.sell("TEA-1", 1)

    client.lose_next_push_answer()
    with pytest.raises(Unreachable):
        client.sync()
    assert client.pending() == 1  # the client never heard the answer...
    assert on_hand(container, "TEA-1") == 9  # ...but the server applied the push

    client.sync()

    assert client.wire() == [(sold, "duplicate")]
    assert client.verdicts() == {sold: "applied"}  # shown as the verdict it repeats
    assert client.pending() == 0
    assert _ledger_rows(container, sold) == 1
    assert (on_hand(container, "TEA-1"), ledger_sum(container, "TEA-1")) == (9, 9)
    assert client.stock("TEA-1") == (9, 0)


def test_a_product_edited_on_two_devices_offline_takes_the_later_edit_everywhere(
    make_client: MakeClient, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    anna, ben = make_client(Role.MANAGER), make_client(Role.MANAGER)
    for manager in (anna, ben):
        manager.attach()
        manager.go_offline()
    earlier = anna.edit_product("TEA-1", name="Tea (Anna)", price_cents=480)
    time.sleep(0.02)  # Ben's stamp is later: same machine clock, a later millisecond
    later = ben.edit_product("TEA-1", name="Tea (Ben)")
    assert anna.product("TEA-1") == ("Tea (Anna)", 480)  # the pending edit over the copy
    assert ben.product("TEA-1") == ("Tea (Ben)", 450)

    ben.go_online()
    ben.sync()  # the later edit reaches the server first
    anna.go_online()
    anna.sync()  # the earlier one after it: its name loses, its price (nobody else's) wins
    ben.sync()

    assert ben.verdicts() == {later: "applied"}
    assert anna.verdicts() == {earlier: "conflict"}
    assert anna.lost_fields(earlier) == ["name"]
    assert ben.lost_fields(later) == []
    with container.db.reading() as session:
        product = catalog.get_or_raise(session, sku="TEA-1")
        assert (product.name, product.price_cents) == ("Tea (Ben)", 480)
    assert anna.product("TEA-1") == ben.product("TEA-1") == ("Tea (Ben)", 480)
    assert anna.pending() == ben.pending() == 0


def test_a_clerks_product_edit_is_rejected_and_changes_nothing(
    client: ClientDriver, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    client.attach()
    edit = client.edit_product("TEA-1", name="Tea (clerk)")
    assert client.product("TEA-1") == ("Tea (clerk)", 450)

    client.sync()

    assert client.verdicts() == {edit: "rejected"}
    assert client.product("TEA-1") == ("Tea TEA-1", 450)
    with container.db.reading() as session:
        assert catalog.get_or_raise(session, sku="TEA-1").name == "Tea TEA-1"


def test_after_a_restore_from_a_backup_the_client_starts_over_keeping_its_queue(
    client: ClientDriver, container: Container
) -> None:
    from sqlalchemy import delete, update

    from storekeeper.events import restores
    from storekeeper.inventory.models import StockLevel

    tea_shop(container, {"TEA-1": 10, "TEA-2": 10})
    client.attach()
    received = client.receive("TEA-2", 5)
    client.sync()
    assert client.stock("TEA-2") == (15, 0)
    client.go_offline()
    sold = client.sell("TEA-1", 1)

    # What `storekeeper restore` of a backup taken before the receipt leaves behind: the
    # receipt gone (no event tells a replica so) and a new generation recorded.
    with container.db.transaction() as session:
        session.execute(delete(Movement).where(Movement.mutation_id == uuid.UUID(received)))
        session.execute(
            update(StockLevel)
            .where(StockLevel.sku == "TEA-2", StockLevel.warehouse_code == "BER")
            .values(on_hand=10)
        )
        restores.start_generation(session.connection(), backup_started_at=None, backup_point=0)

    client.go_online()
    client.sync()  # pushes the sale, is told to resync, pulls a fresh copy

    assert client.verdicts()[sold] == "applied"
    assert client.stock("TEA-2") == (10, 0)  # the copy no longer holds what the restore undid
    assert client.stock("TEA-1") == (9, 0)
    assert (on_hand(container, "TEA-1"), ledger_sum(container, "TEA-1")) == (9, 9)
