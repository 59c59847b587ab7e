"""Replicas pushing at the same time: no oversell, no double application, nothing lost."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.inventory.models import Movement, StockLevel
from storekeeper.sync import service
from storekeeper.sync.models import SyncException
from storekeeper.sync.schemas import MutationIn
from tests.integration.sync.support import make_shop


def test_concurrent_offline_sales_and_their_retries_are_applied_once(
    container: Container,
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["MILK"], stock=20)
    clerk = Principal(user_id=uuid.uuid4(), role=Role.CLERK, warehouses=frozenset({"BER"}))
    # Four replicas sell 5 x 2 units each offline: 40 units of the 20 there.
    batches = {
        f"till-{n}": [
            MutationIn(
                id=uuid.uuid4(),
                type="stock.sell",
                data={"warehouse": "BER", "sku": "MILK", "qty": 2},
                hlc=f"{i + 1}-0-till-{n}",
            )
            for i in range(5)
        ]
        for n in range(4)
    }
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sync(replica: str) -> None:
        try:
            answer = service.push(
                db, principal=clerk, replica_id=replica, mutations=batches[replica]
            )
            with lock:
                results.extend(answer)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    # Each replica pushes its batch twice at once: a retry racing the original request.
    threads = [threading.Thread(target=sync, args=(r,)) for r in batches for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    ids = [m.id for batch in batches.values() for m in batch]
    verdicts = Counter(
        r["detail"]["original"]["status"] if r["status"] == "duplicate" else r["status"]
        for r in results
    )
    assert verdicts["applied"] + verdicts["conflict"] == 2 * len(ids)
    assert Counter(r["status"] for r in results)["duplicate"] == len(ids)
    with db.reading() as session:
        moves = dict(
            session.execute(
                select(Movement.mutation_id, func.count())
                .where(Movement.mutation_id.in_(ids))
                .group_by(Movement.mutation_id)
            ).all()
        )
        taken = -session.scalar(
            select(func.sum(Movement.delta)).where(Movement.mutation_id.in_(ids))
        )
        short = session.scalar(select(func.sum(SyncException.shortfall))) or 0
        level = session.get(StockLevel, ("MILK", "BER"))
    assert moves == dict.fromkeys(ids, 1)
    assert (taken, short) == (20, 20)
    assert level is not None and level.on_hand == 0
