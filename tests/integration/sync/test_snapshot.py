"""The initial-sync snapshot (``storekeeper.sync.snapshot``) against the paged pull and the
server, on both backends: the same copy, a cursor that misses no write committed around it,
and a cache that is never served across a restore or past the pruning horizon.
"""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
from typing import Any

import pytest

from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.events import restores, retention
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.sync import feed
from storekeeper.sync import snapshot as snapshots
from storekeeper_client import snapshot as client_snapshot
from tests.integration.sync.support import MANAGER, apply, make_shop, pull_all, server_copy

BER = "warehouse:BER"
Copy = dict[tuple[str, str], Any]


def snapshot_copy(built: snapshots.Snapshot) -> tuple[Copy, str, client_snapshot.Snapshot]:
    """What a replica holds after storing ``built`` (read by the client's own parser)."""
    parsed = client_snapshot.parse(gzip.decompress(built.body))
    assert parsed is not None
    copy: Copy = {}
    for entity in ("product", "stock"):
        for sku, version, document in parsed.rows(entity):
            assert int(version) >= 0
            copy[(entity, sku)] = json.loads(document)
    return copy, parsed.cursor, parsed


def exact(copy: Copy) -> dict[tuple[str, str], str]:
    """The copy with each document as canonical JSON text: 2 and 2.0 differ here."""
    return {key: json.dumps(value, sort_keys=True) for key, value in copy.items()}


def test_a_snapshot_holds_what_a_paged_pull_gives_and_its_cursor_continues_the_feed(
    container: Container,
) -> None:
    db = container.db
    make_shop(db, ["BER", "HAM"], ["BREAD", "MILK", "OLD", "TEA"], stock=5)
    with db.transaction() as session:
        catalog_service.update(
            session,
            sku="MILK",
            changes={
                "attributes": {"fat": 3.5, "origin": 'Sächsische Schweiz\t\n"quoted"', "n": [1]},
                "min_temp_c": 2.0,
                "max_temp_c": 7.5,
                "barcodes": ["4006381333931", "036000291452"],
                "name": "Milch 1 l ☕",
            },
        )
        catalog_service.update(session, sku="TEA", changes={"barcodes": ["SHELF 7"]})
        catalog_service.archive(session, sku="OLD")
        inventory_ledger.record_movement(
            session, sku="TEA", warehouse="BER", delta=-2, reason="sale"
        )

    built = snapshots.build(db, scope=BER)
    copy, cursor, parsed = snapshot_copy(built)
    paged: Copy = {}
    apply(paged, pull_all(db, BER)[0])

    assert exact(copy) == exact(paged) == exact(server_copy(db, "BER"))
    assert ("product", "OLD") not in copy and ("stock", "OLD") in copy  # as a pull leaves it
    assert copy[("product", "MILK")]["barcodes"] == ["036000291452", "4006381333931"]
    assert sorted(parsed.rows("barcode")) == [
        ("036000291452", "MILK"),
        ("4006381333931", "MILK"),
        ("SHELF 7", "TEA"),
    ]
    stamps = [p["hlc"] for (entity, _), p in copy.items() if entity == "product"]
    assert parsed.newest_hlc == max(stamps, key=lambda s: tuple(map(int, s.split("-")[:2])))
    assert built.rows == len(copy)
    # The cursor is the feed's: nothing new yet, then exactly what is written after it.
    assert pull_all(db, BER, cursor)[0] == []
    with db.transaction() as session:
        inventory_ledger.record_movement(
            session, sku="MILK", warehouse="BER", delta=4, reason="receipt"
        )
    changes, _ = pull_all(db, BER, cursor)
    assert [(c["key"], c["data"]["on_hand"]) for c in changes] == [("MILK", 9)]


def test_snapshots_taken_while_writers_commit_miss_nothing_their_cursor_claims(
    container: Container,
) -> None:
    """Each SKU is written exactly once, so a write the snapshot lacks while its cursor claims
    it would never come back through the feed: the final copies would differ."""
    db = container.db
    skus = [f"S{i:03d}" for i in range(40)]
    make_shop(db, ["BER"], skus)
    errors: list[BaseException] = []

    def write(mine: list[str], seed: int) -> None:
        rng = random.Random(seed)
        try:
            for sku in mine:
                with db.transaction() as session:
                    inventory_ledger.record_movement(
                        session, sku=sku, warehouse="BER", delta=int(sku[1:]) + 1, reason="receipt"
                    )
                    time.sleep(rng.uniform(0, 0.01))  # commits overtake each other
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(skus[i::4], i)) for i in range(4)]
    for writer in writers:
        writer.start()
    taken = []
    while any(w.is_alive() for w in writers):
        taken.append(snapshot_copy(snapshots.build(db, scope=BER))[:2])
    for writer in writers:
        writer.join()

    assert errors == []
    assert len(taken) >= 2
    final = exact(server_copy(db, "BER"))
    for copy, cursor in taken:
        apply(copy, pull_all(db, BER, cursor)[0])
        assert exact(copy) == final


def test_a_cached_snapshot_is_reused_while_good_and_never_across_a_restore_or_pruning(
    container: Container,
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["MILK", "TEA"], stock=3)
    device = Principal(user_id=MANAGER.user_id, role=Role.DEVICE, scope=BER)
    young = snapshots.SnapshotCache(reuse_s=3600)
    old = snapshots.SnapshotCache(reuse_s=0)

    def get(cache: snapshots.SnapshotCache) -> snapshots.Snapshot:
        return snapshots.get(db, cache, principal=device, scope=BER)

    def receive(sku: str) -> None:
        with db.transaction() as session:
            inventory_ledger.record_movement(
                session, sku=sku, warehouse="BER", delta=1, reason="receipt"
            )

    first = get(young)
    assert get(old) is not None and old.builds == 1
    receive("MILK")
    assert get(young) is first  # young: still served; the replica pulls the receipt after it
    second = get(old)
    assert old.builds == 2  # old and the scope changed: built again
    assert get(old) is second  # old but current (no change of the scope since): reused

    # A restore starts a new generation: the cached snapshot's cursor would be refused.
    with db.transaction() as session:
        restores.start_generation(session.connection(), backup_started_at=None, backup_point=0)
    with pytest.raises(feed.ResyncRequired):
        pull_all(db, BER, snapshot_copy(first)[1])
    restored = get(young)
    assert restored is not first and young.builds == 2
    pull_all(db, BER, snapshot_copy(restored)[1])

    # Pruning past the snapshot's position: the same. (On PostgreSQL another test's open
    # transaction may sit below the horizon in the new position: no pruned row of it, no refusal.)
    receive("TEA")
    with db.transaction() as session:
        retention._raise_mark(session.connection(), restored.position.xmax + 1)
    with pytest.raises(feed.ResyncRequired):
        pull_all(db, BER, snapshot_copy(restored)[1])
    pruned = get(young)
    assert pruned is not restored and young.builds == 3
    copy, cursor, _ = snapshot_copy(pruned)
    apply(copy, pull_all(db, BER, cursor)[0])
    assert exact(copy) == exact(server_copy(db, "BER"))
