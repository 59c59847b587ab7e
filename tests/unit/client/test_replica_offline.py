"""A replica with no server: local reads show local writes at once, and survive reopening.

Also: the client library imports on a device without the server's packages.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storekeeper_client import Offline, Replica
from storekeeper_client.store import Store

DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there


def seeded(path: Path) -> Replica:
    """A replica of BER whose server copy holds MILK (10 on hand, 4 reserved)."""
    replica = Replica(path, DEAD_URL, "t", scope="warehouse:BER", timeout=2)
    replica._store.apply_page(
        [
            {
                "entity": "product",
                "key": "MILK",
                "op": "upsert",
                "version": 1,
                "data": {"sku": "MILK", "name": "Milk", "price_cents": 119, "hlc": "5000-3-server"},
            },
            {
                "entity": "stock",
                "key": "MILK",
                "op": "upsert",
                "version": 1,
                "data": {
                    "sku": "MILK",
                    "warehouse": "BER",
                    "on_hand": 10,
                    "reserved": 4,
                    "available": 6,
                },
            },
        ],
        "cursor-1",
    )
    return replica


def test_offline_writes_show_at_once_and_persist_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with seeded(path) as replica:
        replica.receive("MILK", 5)
        replica.sell("MILK", 2)
        replica.adjust("MILK", -1, "damage")
        stock = replica.stock("MILK")
        assert stock is not None
        assert (stock.on_hand, stock.reserved, stock.available, stock.pending) == (12, 4, 8, 3)
        count_id = replica.count("MILK", 20)
        assert replica.pending()[-1].data == {
            "warehouse": "BER",
            "sku": "MILK",
            "counted": 20,
            "seen_on_hand": 12,
        }
        replica.update_product("MILK", name="Milk 1 l")
        replica_id = replica.replica_id
    with Replica(path) as reopened:
        assert reopened.replica_id == replica_id
        assert reopened.scope == "warehouse:BER"
        assert [m.type for m in reopened.pending()] == [
            "stock.receive",
            "stock.sell",
            "stock.adjust",
            "stock.count",
            "product.update",
        ]
        assert reopened.pending()[3].id == count_id
        stock = reopened.stock("MILK")
        assert stock is not None and stock.on_hand == 20
        product = reopened.product("MILK")
        assert product is not None and product["name"] == "Milk 1 l"
        assert reopened.products()[0]["name"] == "Milk 1 l"
        assert reopened.stock("NOPE") is None


def test_stamps_are_after_every_pulled_stamp_and_strictly_increasing(tmp_path: Path) -> None:
    with seeded(tmp_path / "r.db") as replica:
        replica._store.apply_page(
            [
                {
                    "entity": "product",
                    "key": "X",
                    "op": "upsert",
                    "version": 1,
                    "data": {"sku": "X", "hlc": "99999999999999-7-server"},
                }
            ],
            "cursor-2",
        )
        ids = [replica.update_product("X", price_cents=i) for i in range(3)]
        stamps = [m.hlc for m in replica.pending() if m.id in ids]
        assert stamps == [f"99999999999999-{c}-{replica.replica_id}" for c in (8, 9, 10)]


def test_a_sync_without_network_raises_offline_and_keeps_the_queue(tmp_path: Path) -> None:
    with seeded(tmp_path / "r.db") as replica:
        mutation_id = replica.sell("MILK", 1)
        with pytest.raises(Offline):
            replica.sync()
        assert [m.id for m in replica.pending()] == [mutation_id]
        assert replica._store.get_meta("cursor") == "cursor-1"


def test_a_file_keeps_its_scope_and_replica_id_and_bad_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    Replica(path, scope="warehouse:BER", replica_id="till-1").close()
    with pytest.raises(ValueError, match="scope"):
        Replica(path, scope="warehouse:HAM")
    with pytest.raises(ValueError, match="replica_id"):
        Replica(path, replica_id="till-2")
    with pytest.raises(ValueError, match="needs a scope"):
        Replica(tmp_path / "new.db")
    with pytest.raises(ValueError, match="replica_id"):
        Replica(tmp_path / "new2.db", scope="warehouse:BER", replica_id="server")
    with Replica(path) as replica:
        assert replica.replica_id == "till-1"
        for call in (
            lambda: replica.sell("MILK", 0),
            lambda: replica.receive("MILK", True),
            lambda: replica.adjust("MILK", 0, "damage"),
            lambda: replica.adjust("MILK", 1, "theft"),
            lambda: replica.count("MILK", -1),
            lambda: replica.update_product("MILK", currency="USD"),
            lambda: replica.update_product("MILK"),
        ):
            with pytest.raises(ValueError):
                call()
        assert replica.pending() == []


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    with seeded(tmp_path / "r.db") as replica:

        def work() -> None:
            for _ in range(50):
                replica.receive("MILK", 1)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stock = replica.stock("MILK")
        assert stock is not None and stock.on_hand == 210
        assert len({m.hlc for m in replica.pending()}) == 200


def test_a_page_and_its_cursor_are_stored_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    bad_page = [
        {"entity": "stock", "key": "A", "op": "upsert", "version": 1, "data": {"sku": "A"}},
        {"entity": "nonsense", "key": "B", "op": "upsert", "version": 1, "data": {}},
    ]
    with pytest.raises(ValueError):
        store.apply_page(bad_page, "cursor-x")
    assert store.copy_rows("stock") == []
    assert store.get_meta("cursor") is None
    store.close()


BLOCKED = (
    "storekeeper",  # the server package: the client is its own distribution
    "fastapi",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "celery",
    "alembic",
    "starlette",
    "typer",
    "rich",
)


def test_the_client_imports_without_the_servers_packages(tmp_path: Path) -> None:
    script = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # any import of these now raises ImportError
from storekeeper_client import Replica
with Replica({str(tmp_path / "d.db")!r}, scope="warehouse:BER") as r:
    r.receive("MILK", 3)
    assert r.stock("MILK").on_hand == 3
loaded = sorted(m for m, mod in sys.modules.items() if m.startswith("storekeeper") and mod)
assert loaded == ["storekeeper_client", "storekeeper_client.credentials",
                  "storekeeper_client.hlc", "storekeeper_client.records",
                  "storekeeper_client.replica", "storekeeper_client.snapshot",
                  "storekeeper_client.store"], loaded
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
