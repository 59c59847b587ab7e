"""Every report on random ledgers, on SQLite and PostgreSQL, against a plain-Python computation.

Hypothesis writes a random ledger (receipts with and without cost, sales, damage, counts,
transfers, over four months) straight into reporting's read model (the movement times are the
test's to choose, which the inventory service's are not); each report is then computed twice,
with no period closed and after the months are closed into snapshots, and must equal what a
few lines of Python compute from the same list of movements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.reporting import balances, readmodel, service, stock
from storekeeper.reporting.models import LedgerRow, LevelRow, Period, SalesMonthRow, SnapshotRow

EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=False,
)
PRICES = {"A": 250, "B": 1_000, "C": 35}
WAREHOUSES = ("BER", "HAM")
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
START = (NOW - timedelta(days=125)).replace(hour=0)

# One step: (kind, sku, warehouse, quantity, unit cost or None, days since the previous step)
steps = st.lists(
    st.tuples(
        st.sampled_from(["receipt", "receipt", "sale", "sale", "damage", "count", "transfer"]),
        st.sampled_from(sorted(PRICES)),
        st.sampled_from(WAREHOUSES),
        st.integers(1, 30),
        st.one_of(st.none(), st.integers(0, 5_000)),
        st.integers(0, 9),
    ),
    min_size=1,
    max_size=45,
)


def _ledger(raw: list[tuple[str, str, str, int, int | None, int]]) -> list[readmodel.Fact]:
    """Turn random steps into a ledger that never takes on-hand below zero."""
    on_hand: dict[tuple[str, str], int] = defaultdict(int)
    facts: list[readmodel.Fact] = []
    at = START
    for n, (kind, sku, wh, qty, cost, gap) in enumerate(raw):
        at = at + timedelta(days=gap, minutes=7)
        if at >= NOW:
            break

        def add(
            wh: str,
            delta: int,
            reason: str,
            ref: str | None,
            cost: int | None,
            sku: str = sku,
            at: datetime = at,
        ) -> None:
            on_hand[sku, wh] += delta
            facts.append(readmodel.Fact(len(facts) + 1, sku, wh, delta, reason, ref, cost, at))

        if kind == "receipt":
            add(wh, qty, "receipt", None, cost)
        elif kind == "count":
            add(wh, qty - on_hand[sku, wh], "count", None, None)
        elif kind == "transfer":
            other = WAREHOUSES[1 - WAREHOUSES.index(wh)]
            moved = min(qty, on_hand[sku, wh])
            if moved:
                add(wh, -moved, "transfer", f"transfer:{n}", None)
                add(other, moved, "transfer", f"transfer:{n}", None)
        else:
            taken = min(qty, on_hand[sku, wh])
            if taken:
                add(wh, -taken, kind, None, None)
    return facts


def _before(facts: list[readmodel.Fact], until: datetime) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = defaultdict(int)
    for f in facts:
        if f.moved_at < until:
            held[f.sku, f.warehouse] += f.delta
    return {k: v for k, v in held.items() if v}


def _valued(facts: list[readmodel.Fact], until: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """Moving average cost, written out plainly: units and value per series before ``until``."""
    units: dict[tuple[str, str], int] = defaultdict(int)
    value: dict[tuple[str, str], int] = defaultdict(int)
    left_with: dict[str, int] = {}
    for f in facts:
        if f.moved_at >= until:
            break
        key = (f.sku, f.warehouse)
        if f.delta < 0:
            part = value[key] if units[key] <= -f.delta else value[key] * -f.delta // units[key]
            value[key] -= part
            if f.reason == "transfer":
                left_with[f.ref or ""] = part
        elif f.reason == "receipt" and f.unit_cost_cents is not None:
            value[key] += f.delta * f.unit_cost_cents
        elif f.reason == "transfer":
            value[key] += left_with.pop(f.ref or "")
        elif units[key] > 0:
            value[key] += value[key] * f.delta // units[key]
        units[key] += f.delta
        if units[key] == 0:
            value[key] = 0
    return {k: (units[k], value[k]) for k in units if units[k] or value[k]}


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


@dataclass
class Shop:
    container: Container

    def load(self, facts: list[readmodel.Fact], reserved: dict[tuple[str, str], int]) -> None:
        with self.container.db.transaction() as session:
            for table in (SalesMonthRow, SnapshotRow, Period, LedgerRow, LevelRow):
                session.execute(delete(table))
            readmodel.record_facts(session, facts)
            held = _before(facts, NOW)
            for sku, wh in {(f.sku, f.warehouse) for f in facts}:  # what the events leave
                readmodel.set_level(
                    session,
                    sku=sku,
                    warehouse=wh,
                    on_hand=held.get((sku, wh), 0),
                    reserved=reserved.get((sku, wh), 0),
                )


def _shop(container: Container) -> Shop:
    with container.db.transaction() as session:
        for code in WAREHOUSES:
            inventory_warehouses.create_warehouse(session, code=code, name=code, lat=50, lon=10)
        for sku, cents in PRICES.items():
            catalog_service.create(
                session,
                data={"sku": sku, "name": f"Tea {sku}", "price_cents": cents, "currency": "EUR"},
            )
    return Shop(container)


def _both_ways(shop: Shop, facts: list[readmodel.Fact], check: Callable[[], None]) -> None:
    """Run ``check`` with no period closed, then with every ended month closed."""
    check()
    with shop.container.db.transaction() as session:
        closed = balances.close_periods(session, now=NOW)
    assert closed >= 3 or not facts
    check()


def test_sales_abc_and_daily_demand_match_python(container: Container) -> None:
    shop = _shop(container)

    @EXAMPLES
    # Periods ending today or up to two months back: with the months closed, their ends fall
    # in a closed month or the open one, on a month's first day or inside it.
    @given(raw=steps, top=st.integers(1, 4), span=st.integers(0, 120), back=st.integers(0, 60))
    def check(
        raw: list[tuple[str, str, str, int, int | None, int]], top: int, span: int, back: int
    ) -> None:
        facts = _ledger(raw)
        shop.load(facts, {})
        until = _day(NOW) - timedelta(days=back)
        since = until - timedelta(days=span)
        sold = [f for f in facts if f.reason == "sale" and since <= _day(f.moved_at) <= until]
        by_sku: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        by_wh: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for f in sold:
            for bucket, key in ((by_sku, f.sku), (by_wh, f.warehouse)):
                bucket[key][0] += -f.delta
                bucket[key][1] += -f.delta * PRICES[f.sku]

        def ranked(bucket: dict[str, list[int]]) -> list[tuple[str, int, int]]:
            rows = sorted(bucket.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
            return [(k, u, v) for k, (u, v) in rows[:top]]

        total = sum(v for _, v in by_sku.values())
        before, expected_abc = 0, []
        for sku, (units, value) in sorted(by_sku.items(), key=lambda kv: (-kv[1][1], kv[0])):
            if value <= 0:
                continue
            klass = "A" if before * 100 < total * 80 else "B" if before * 100 < total * 95 else "C"
            expected_abc.append((sku, units, value, klass))
            before += value

        def daily() -> list[tuple[str, str, list[int], list[int]]]:
            opening = _before(facts, balances.midnight(since))
            active = set(opening) | {
                (f.sku, f.warehouse) for f in facts if since <= _day(f.moved_at) <= until
            }
            out = []
            for series in sorted(active):
                level = opening.get(series, 0)
                sold_by_day, on_hand = [], []
                for n in range((until - since).days + 1):
                    day = since + timedelta(days=n)
                    todays = [
                        f
                        for f in facts
                        if (f.sku, f.warehouse) == series and _day(f.moved_at) == day
                    ]
                    level += sum(f.delta for f in todays)
                    sold_by_day.append(sum(-f.delta for f in todays if f.reason == "sale"))
                    on_hand.append(level)
                out.append((series[0], series[1], sold_by_day, on_hand))
            return out

        def compare() -> None:
            with container.db.reading() as session:
                got = service.sales(session, since=since, until=until, by="product", top=top)
                assert [(r.key, r.units, r.value_cents) for r in got] == ranked(by_sku)
                assert all(r.currency == "EUR" and r.name == f"Tea {r.key}" for r in got)
                got = service.sales(session, since=since, until=until, by="warehouse", top=top)
                assert [(r.key, r.units, r.value_cents) for r in got] == ranked(by_wh)
                got_abc = service.abc(session, since=since, until=until)
                assert [
                    (r.sku, r.units, r.value_cents, r.abc_class) for r in got_abc
                ] == expected_abc
                demand = service.daily_demand(session, since=since, until=until)
                assert [
                    (d.sku, d.warehouse, d.sold.tolist(), d.on_hand.tolist()) for d in demand
                ] == daily()

        _both_ways(shop, facts, compare)

    check()


def test_stock_reports_match_python(container: Container) -> None:
    shop = _shop(container)

    @EXAMPLES
    @given(
        raw=steps,
        reserved=st.dictionaries(
            st.tuples(st.sampled_from(sorted(PRICES)), st.sampled_from(WAREHOUSES)),
            st.integers(0, 10),
        ),
        threshold=st.integers(0, 20),
        days=st.one_of(st.none(), st.integers(1, 90)),
        at_day=st.integers(0, 130),
        span=st.integers(0, 60),
        sku=st.sampled_from(sorted(PRICES)),
    )
    def check(
        raw: list[tuple[str, str, str, int, int | None, int]],
        reserved: dict[tuple[str, str], int],
        threshold: int,
        days: int | None,
        at_day: int,
        span: int,
        sku: str,
    ) -> None:
        facts = _ledger(raw)
        held = _before(facts, NOW)
        reserved = {k: min(v, held.get(k, 0)) for k, v in reserved.items()}
        shop.load(facts, reserved)
        at = _day(START) + timedelta(days=at_day)
        valued = _valued(facts, balances.midnight(at + timedelta(days=1)))
        cutoff = NOW - timedelta(days=days) if days is not None else None
        last_sale: dict[tuple[str, str], datetime] = {}
        for f in facts:
            if f.reason == "sale":
                last_sale[f.sku, f.warehouse] = f.moved_at
        dead = sorted(
            (
                (k[0], k[1], units, last_sale.get(k))
                for k, units in held.items()
                if units > 0
                and (k not in last_sale or (cutoff is not None and last_sale[k] < cutoff))
            ),
            key=lambda r: (-r[2], r[0], r[1]),
        )
        series = {(f.sku, f.warehouse) for f in facts}
        low = sorted(
            (
                (s[0], s[1], held.get(s, 0), held.get(s, 0) - reserved.get(s, 0))
                for s in series
                if held.get(s, 0) - reserved.get(s, 0) < threshold
            ),
            key=lambda r: (r[3], r[0], r[1]),
        )
        until = at + timedelta(days=span)
        start, end = balances.midnight(at), balances.midnight(until + timedelta(days=1))
        opening = {wh: u for (s, wh), u in _before(facts, start).items() if s == sku}
        running = dict(opening)
        history = []
        for f in facts:
            if f.sku == sku and start <= f.moved_at < end:
                running[f.warehouse] = running.get(f.warehouse, 0) + f.delta
                history.append((f.movement_id, f.warehouse, f.delta, running[f.warehouse]))
        closing = {wh: u for (s, wh), u in _before(facts, end).items() if s == sku}

        def compare() -> None:
            with container.db.reading() as session:
                got_value = stock.valuation(session, at=at)
                assert {
                    (r.sku, r.warehouse): (r.on_hand, r.value_cents) for r in got_value
                } == valued
                got_dead = service.dead_stock(session, days=days, now=NOW)
                assert [(r.sku, r.warehouse, r.on_hand, r.last_sold_at) for r in got_dead] == dead
                got_low = service.low_stock(session, threshold=threshold)
                assert [(r.sku, r.warehouse, r.on_hand, r.available) for r in got_low] == low
                got_open, got_rows, got_close = stock.stock_history(
                    session, sku=sku, since=at, until=until
                )
                assert got_open == opening
                assert [
                    (r.movement_id, r.warehouse, r.delta, r.on_hand) for r in got_rows
                ] == history
                assert got_close == closing

        _both_ways(shop, facts, compare)

    check()
