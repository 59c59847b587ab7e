"""Property: simulated offline replicas converge on the server, and no offline work is lost.

Replicas are plain-Python models of a device: a copy of the server made only from pulls, a
queue of offline mutations, a hybrid logical clock. Hypothesis draws what they do offline and
how they sync: pushes of part of a queue in any interleaving, retries of mutations already
acknowledged, responses lost on the way back (applied, but the replica retries), pulls, and
server-side writes in between. Then every replica pushes what it still holds and pulls.

Both backends: a run of 30 examples takes a few seconds on each.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database
from storekeeper.errors import Conflict
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.sync import service
from storekeeper.sync.hlc import Hlc
from storekeeper.sync.schemas import MutationIn
from tests.integration.sync.support import apply, check_ledger, make_shop, pull_all, server_copy

# Derandomized (the same runs in CI and on a laptop), and without shrinking: every example
# works a real database, and shrinking a failure took minutes; the failing steps are printed.
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=False,
)
ROLES = (Role.CLERK, Role.MANAGER, Role.DEVICE)  # replica i acts as ROLES[i]


@dataclass
class Replica:
    """A device: its copy of the server, its queue of unacknowledged mutations, its clock."""

    name: str
    principal: Principal
    scope: str
    skew_ms: int
    copy: dict[tuple[str, str], Any] = field(default_factory=dict)
    cursor: str | None = None
    queue: list[MutationIn] = field(default_factory=list)
    acked: list[MutationIn] = field(default_factory=list)
    clock: Hlc = field(default_factory=lambda: Hlc(0, 0, "x"))

    def stamp(self) -> str:
        """The HLC send rule."""
        now = int(time.time() * 1000) + self.skew_ms
        if now > self.clock.wall_ms:
            self.clock = Hlc(now, 0, self.name)
        else:
            self.clock = Hlc(self.clock.wall_ms, self.clock.counter + 1, self.name)
        return str(self.clock)

    def observe(self, stamp: str | None) -> None:
        """The HLC receive rule, for stamps seen in pulled products."""
        if stamp is not None:
            seen = Hlc.parse(stamp)
            if (seen.wall_ms, seen.counter) > (self.clock.wall_ms, self.clock.counter):
                self.clock = Hlc(seen.wall_ms, seen.counter, self.name)

    def pull(self, db: Database) -> None:
        """Bring the copy up to date."""
        changes, self.cursor = pull_all(
            db, self.scope, self.cursor, principal=self.principal, limit=4
        )
        apply(self.copy, changes)
        for change in changes:
            if change["entity"] == "product" and change["data"]:
                self.observe(change["data"]["hlc"])

    def seen_on_hand(self, sku: str) -> int:
        """On-hand of ``sku`` in the copy."""
        level = self.copy.get(("stock", sku))
        return int(level["on_hand"]) if level else 0


@dataclass
class World:
    """One example's shop, replicas and what the server answered."""

    db: Database
    skus: list[str]
    replicas: list[Replica]
    mutations: dict[uuid.UUID, tuple[Replica, MutationIn]] = field(default_factory=dict)
    heard: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)

    def push(self, replica: Replica, batch: list[MutationIn], *, lost: bool) -> None:
        results = service.push(
            self.db, principal=replica.principal, replica_id=replica.name, mutations=batch
        )
        if lost:  # applied on the server; the replica never hears of it and keeps its queue
            self.seen["lost response"] += 1
            return
        for result in results:
            self.heard.setdefault(result["id"], []).append(result)
            self.seen[f"{result['status']} {result['detail']['code']}"] += 1
        acked = {result["id"] for result in results}
        replica.acked.extend(m for m in replica.queue if m.id in acked)
        replica.queue = [m for m in replica.queue if m.id not in acked]


def _mutation(replica: Replica, kind: str, sku: str, n: int, flag: bool) -> MutationIn:
    warehouse = replica.scope.removeprefix("warehouse:")
    data: dict[str, Any] = {"warehouse": warehouse, "sku": sku}
    if kind == "stock.receive" or kind == "stock.sell":
        data["qty"] = n
    elif kind == "stock.adjust":
        data |= {"delta": n if flag else -n, "reason": "correction" if flag else "damage"}
    elif kind == "stock.count":
        seen = replica.seen_on_hand(sku)
        data |= {"counted": max(0, seen + n - 3), "seen_on_hand": seen}
    else:
        data["fields"] = {"name": f"{replica.name}-{n}"} if flag else {"price_cents": n * 100}
    return MutationIn(id=uuid.uuid4(), type=kind, data=data, hlc=replica.stamp())


_KINDS = ["stock.receive", "stock.adjust", "stock.count", "stock.sell", "stock.sell"]
_mutate = st.tuples(
    st.just("mutate"),
    st.integers(0, 2),
    st.sampled_from(_KINDS),
    st.integers(0, 1),
    st.integers(1, 6),
    st.booleans(),
)
# Product edits come from the manager's replica (1): clerks' and devices' are refused, which
# tests/e2e/test_sync_api.py covers.
_edit = st.tuples(
    st.just("mutate"),
    st.just(1),
    st.just("product.update"),
    st.integers(0, 1),
    st.integers(1, 6),
    st.booleans(),
)
_steps = st.lists(
    st.one_of(
        _mutate,
        _mutate,
        _edit,
        st.tuples(
            st.just("push"), st.integers(0, 2), st.integers(1, 4), st.booleans(), st.booleans()
        ),
        st.tuples(st.just("pull"), st.integers(0, 2)),
        st.tuples(st.just("server"), st.booleans(), st.integers(0, 1), st.integers(1, 4)),
    ),
    min_size=10,
    max_size=40,
)


def _play(world: World, steps: list[tuple[Any, ...]]) -> None:
    db, skus, replicas = world.db, world.skus, world.replicas
    for step in steps:
        if step[0] == "mutate":
            _, who, kind, sku, n, flag = step
            replica = replicas[who]
            mutation = _mutation(replica, kind, skus[sku], n, flag)
            replica.queue.append(mutation)
            world.mutations[mutation.id] = (replica, mutation)
        elif step[0] == "push":
            _, who, count, lost, retry_acked = step
            replica = replicas[who]
            batch = replica.queue[:count]
            if retry_acked and replica.acked:  # it crashed before it stored an ack
                batch = [replica.acked[len(batch) % len(replica.acked)], *batch]
            world.push(replica, batch, lost=lost)
        elif step[0] == "pull":
            replicas[step[1]].pull(db)
        else:
            _, rename, sku, n = step
            warehouse = replicas[0].scope.removeprefix("warehouse:")
            try:
                with db.transaction() as session:
                    if rename:
                        catalog_service.update(
                            session, sku=skus[sku], changes={"name": f"server-{n}"}
                        )
                    else:
                        inventory_ledger.record_movement(
                            session, sku=skus[sku], warehouse=warehouse, delta=-n, reason="sale"
                        )
            except Conflict:
                pass  # an online sale of more than is there is refused, as it should be
    # Everyone comes back online: push until acknowledged, then pull.
    for replica in replicas:
        while replica.queue:
            world.push(replica, replica.queue[:3], lost=False)
    for replica in replicas:
        replica.pull(db)


def _check(world: World) -> None:
    # Every replica equals the server for its scope.
    for replica in world.replicas:
        expected = server_copy(world.db, replica.scope.removeprefix("warehouse:"))
        assert replica.copy == expected, replica.name
    verdicts = check_ledger(
        world.db,
        {mutation_id: (m.type, m.data) for mutation_id, (_, m) in world.mutations.items()},
        world.skus,
    )
    # Each replica heard the one stored verdict (a retry hears it as a duplicate).
    for mutation_id, answers in world.heard.items():
        for answer in answers:
            first = (
                answer["detail"]["original"]["status"]
                if answer["status"] == "duplicate"
                else answer["status"]
            )
            assert first == verdicts[mutation_id]


def test_replicas_converge_and_lose_no_offline_work(container: Container) -> None:
    db = container.db
    seen: Counter[str] = Counter()

    @EXAMPLES
    @given(steps=_steps, skews=st.lists(st.integers(-5000, 5000), min_size=3, max_size=3))
    def run(steps: list[tuple[Any, ...]], skews: list[int]) -> None:
        tag = uuid.uuid4().hex[:6].upper()
        warehouses = [f"W{tag}", f"X{tag}"]
        skus = [f"A{tag}", f"B{tag}"]
        make_shop(db, warehouses, skus, stock=3)
        scopes = [
            f"warehouse:{warehouses[0]}",
            f"warehouse:{warehouses[0]}",
            f"warehouse:{warehouses[1]}",
        ]
        replicas = [
            Replica(
                name=f"r{i}-{tag}",
                principal=Principal(
                    user_id=uuid.uuid4(),
                    role=role,
                    warehouses=frozenset({scopes[i].removeprefix("warehouse:")}),
                    scope=scopes[i] if role is Role.DEVICE else None,
                ),
                scope=scopes[i],
                skew_ms=skews[i],
            )
            for i, role in enumerate(ROLES)
        ]
        for replica in replicas:
            replica.pull(db)
        world = World(db, skus, replicas)
        _play(world, steps)
        _check(world)
        seen.update(world.seen)

    run()
    # The examples did go through every case the properties are about.
    assert {
        "applied applied",
        "duplicate duplicate",
        "conflict short_stock",
        "conflict stale_edit",
        "lost response",
    } <= set(seen), seen
