"""The client's reading of a sync snapshot file and storing it (no server: the wire format of
docs/sync.md written by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storekeeper_client import Replica, SyncError
from storekeeper_client import snapshot as client_snapshot

MILK = {
    "sku": "MILK",
    "name": "Milk",
    "price_cents": 119,
    "barcodes": ["4006381333931"],
    "hlc": "9000-2-server",
}
TEA = {"sku": "TEA", "name": "Tea", "price_cents": 300, "barcodes": [], "hlc": "8000-7-server"}
STOCK = {"sku": "MILK", "warehouse": "BER", "on_hand": 5, "reserved": 1, "available": 4}


def body(header: dict[str, object] | None = None, cut: int = 0, **counts: object) -> bytes:
    head = {
        "format": "storekeeper-snapshot/1",
        "scope": "warehouse:BER",
        "cursor": "cursor-1",
        "hlc": "9000-2-server",
        **(header or {}),
    }
    lines = [json.dumps(head)]
    lines += ["MILK", "3", json.dumps(MILK), "TEA", "1", json.dumps(TEA)]
    lines += ["MILK", "12", json.dumps(STOCK)]
    lines += ["4006381333931", "MILK"]
    lines += [json.dumps({"products": 2, "stock": 1, "barcodes": 1, **counts})]
    text = ("\n".join(lines) + "\n").encode()
    return text[: len(text) - cut]


def test_a_snapshot_replaces_the_copy_in_one_step_and_keeps_the_queue(tmp_path: Path) -> None:
    parsed = client_snapshot.parse(body())
    assert parsed is not None
    assert list(parsed.rows("product"))[1] == ("TEA", "1", json.dumps(TEA))
    with Replica(tmp_path / "r.db", scope="warehouse:BER") as replica:
        replica._store.apply_page(
            [{"entity": "product", "key": "GHOST", "op": "upsert", "version": 1, "data": {}}], "c0"
        )
        sale = replica.sell("MILK", 2)
        replica._store.load_snapshot(parsed)

        assert [p["sku"] for p in replica.products()] == ["MILK", "TEA"]  # GHOST is gone
        assert replica.product_by_barcode("4006381333931") == MILK
        assert replica.stock("MILK") is not None and replica.stock("MILK").on_hand == 3  # type: ignore[union-attr]
        assert [m.id for m in replica.pending()] == [sale]
        assert replica._store.get_meta("cursor") == "cursor-1"
        # The clock observed the newest stamp: a later edit is stamped after it.
        assert replica._store.clock().wall_ms >= 9000


@pytest.mark.parametrize("cut", [1, 5, 60, 150])
def test_a_snapshot_cut_short_is_refused(cut: int) -> None:
    with pytest.raises(SyncError, match="incomplete"):
        client_snapshot.parse(body(cut=cut))
    with pytest.raises(SyncError, match="incomplete"):
        client_snapshot.parse(body(stock=2))  # a section cut out


def test_a_snapshot_of_an_unknown_format_is_left_to_the_paged_pull() -> None:
    assert client_snapshot.parse(body({"format": "storekeeper-snapshot/2"})) is None
    with pytest.raises(SyncError, match="malformed"):
        client_snapshot.parse(body(products="many"))
