"""W2 order-place: ``POST /api/v1/orders`` from 32 clients, spread over 1k SKUs and on one hot SKU.

Spread: 1k SKUs x BER/HAM/MUC with ample stock; orders of 1-3 random lines, manual payment, a
unique Idempotency-Key and a customer's token each. Ceiling: the same statements per order
straight through the driver from 32 threads (``bench.w2_raw``). Hot: every order is for one SKU
with stock for only part of the run; ``409 insufficient_stock`` after that is the expected
refusal, and its rate is taken over the selling window only. Afterwards the database must show
nothing oversold (``bench.checks``).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import capture, checks, infra, profile, replay, report, schedule, seed, w2_raw
from bench.infra import BenchDatabase, Server
from bench.loadgen import run_load
from bench.measure import LoadResult, LoadSpec, merge
from bench.options import Options, environment
from storekeeper.bootstrap import Container

SKUS = 1_000
UNITS_PER_ROW = 1_000_000
CUSTOMERS = 32
CONNECTIONS = 32
GOAL_VS_CEILING = 0.5
GOAL_HOT_VS_SPREAD = 0.3
HOT_SHARE = 0.25
"""Hot stock lasts a quarter of the run at the spread rate: it sells out partway at any rate
that meets the hot goal."""
MANUAL_PAYMENT = {"method": "manual"}
_MEAN_QTY = 2
_RAW_REWARM_S = 0.5


@dataclass(frozen=True, slots=True)
class HotRun:
    """The hot variant: what the clients saw and what the database kept."""

    load: LoadResult
    sku: str
    units: int
    stored: checks.SkuOrders
    selling_s: float

    @property
    def accepted(self) -> int:
        """Orders answered 201."""
        return self.load.statuses.get("201", 0)

    @property
    def refused(self) -> int:
        """Orders answered 409 insufficient_stock: expected once the stock is gone."""
        return self.load.statuses.get("409:insufficient_stock", 0)

    @property
    def unexpected(self) -> int:
        """Any other answer."""
        return self.load.requests - self.accepted - self.refused + self.load.socket_errors

    @property
    def sold_out(self) -> bool:
        """Whether the stock ran out during the run."""
        return self.refused > 0

    @property
    def rate(self) -> float:
        """Orders accepted per second while there was stock to sell."""
        return self.accepted / self.selling_s if self.selling_s else 0.0


def orders_spec(
    customers: list[seed.Customer],
    *,
    sku_format: str = seed.SKU_FORMAT,
    sku_count: int = SKUS,
    max_lines: int = 3,
    payment: dict[str, str] | None = None,
) -> LoadSpec:
    """W2's order load: a fresh run id (Idempotency-Keys never repeat), ``payment`` per order."""
    config = {
        "seed": 23,
        "run_id": uuid.uuid4().hex[:12],
        "path": "/api/v1/orders",
        "sku_format": sku_format,
        "sku_count": sku_count,
        "max_lines": max_lines,
        "max_qty": 3,
        "tokens": [c.token for c in customers],
        "payment_json": json.dumps(payment or MANUAL_PAYMENT, separators=(",", ":")),
        **seed.SHIP_TO_AREA,
    }
    return LoadSpec("orders", config, count_statuses=True)


def seed_orders(container: Container) -> list[seed.Customer]:
    """W2's data: 1k SKUs with ample stock in BER/HAM/MUC and 32 customers with tokens."""
    seed.seed_warehouses(container.db)
    skus = seed.seed_products(container.db, count=SKUS)
    seed.seed_stock(container.db, skus=skus, units=UNITS_PER_ROW)
    return seed.seed_customers(container.db, count=CUSTOMERS, signing_key=container.signing_key)


def _load(spec: LoadSpec, server: Server, opts: Options, duration_s: float) -> LoadResult:
    return run_load(
        spec, server.url, connections=CONNECTIONS, duration_s=duration_s, workdir=opts.workdir
    )


def _hot(
    container: Container,
    server: Server,
    opts: Options,
    customers: list[seed.Customer],
    spread_rate: float,
) -> HotRun:
    """Sell one SKU with stock for about ``HOT_SHARE`` of the run at the spread rate."""
    units = max(30, math.ceil(spread_rate * opts.duration_s * HOT_SHARE * _MEAN_QTY))
    per_warehouse = math.ceil(units / len(seed.WAREHOUSES))
    hot = seed.seed_hot_sku(container.db, index=0, units_per_warehouse=per_warehouse)
    spec = orders_spec(customers, sku_format=seed.HOT_SKU_FORMAT, sku_count=1, max_lines=1)
    started = datetime.now(UTC)
    load = _load(spec, server, opts, opts.duration_s)
    stored = checks.orders_of(container.db, hot)
    selling_s = load.duration_s
    if load.statuses.get("409:insufficient_stock") and stored.last_created_at is not None:
        selling_s = max(0.001, (stored.last_created_at - started).total_seconds())
    return HotRun(load, hot, per_warehouse * len(seed.WAREHOUSES), stored, selling_s)


def _accepted_rate(load: LoadResult) -> float:
    return load.statuses.get("201", 0) / load.duration_s if load.duration_s else 0.0


def _profile(server: Server, customers: list[seed.Customer], opts: Options, name: str) -> str:
    """One more spread run, under py-spy; returns the summary."""
    folded = opts.results_dir / f"{name}.folded"
    spec = orders_spec(customers)
    with profile.recording(server.process.pid, folded, opts.duration_s):
        _load(spec, server, opts, opts.duration_s)
    summary = profile.summarise(folded, seconds=opts.duration_s)
    (opts.results_dir / f"{name}.txt").write_text(summary)
    return summary


@dataclass(frozen=True, slots=True)
class _Runs:
    spread: LoadResult
    raw: w2_raw.RawResult
    hot: HotRun
    statements: capture.Comparison
    integrity: checks.Integrity
    profile: str | None


def _measure(db: BenchDatabase, container: Container, opts: Options) -> _Runs:
    customers = seed_orders(container)
    statements = capture.compare(container, db.backend, db.driver_target, customers[0], seed.sku(0))
    port = infra.free_port()
    name = f"W2-{db.backend}-app"
    command = infra.storekeeper_command(port, opts.workers)
    with infra.serve(
        command, port=port, env=infra.server_env(db), workdir=opts.workdir, name=name
    ) as server:

        def spread_spec() -> LoadSpec:  # a fresh run id each time: keys must never repeat
            return orders_spec(customers)

        driver = replay.driver_for(db.backend, db.driver_target)

        def raw_slice(round_: int) -> w2_raw.RawResult:
            # The replay's threads and connections are new each slice: warm them up again.
            warmup = opts.warmup_s if round_ == 0 else min(opts.warmup_s, _RAW_REWARM_S)
            make_order = w2_raw.order_maker(
                sku_count=SKUS, customers=customers, run_id=uuid.uuid4().hex
            )
            return w2_raw.run(
                driver, make_order, threads=CONNECTIONS, warmup_s=warmup, duration_s=opts.slice_s
            )

        spread_slices: list[LoadResult] = []
        raw_slices: list[w2_raw.RawResult] = []
        _load(spread_spec(), server, opts, opts.warmup_s)
        schedule.alternate(
            [
                lambda _round: spread_slices.append(
                    _load(spread_spec(), server, opts, opts.slice_s)
                ),
                lambda round_: raw_slices.append(raw_slice(round_)),
            ],
            opts.rounds,
        )
        spread, raw = merge(spread_slices), w2_raw.merge(raw_slices)
        hot = _hot(container, server, opts, customers, _accepted_rate(spread))
        summary = _profile(server, customers, opts, name) if opts.profile else None
    return _Runs(spread, raw, hot, statements, checks.verify(container.db), summary)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W2 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W2 order-place on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with (
        infra.fresh_database(backend, "w2", opts.workdir) as db,
        infra.container_for(db) as container,
    ):
        runs = _measure(db, container, opts)
    spread_rate = _accepted_rate(runs.spread)
    vs_ceiling = report.ratio(spread_rate, runs.raw.rate)
    hot_vs_spread = report.ratio(runs.hot.rate, spread_rate)
    spread_unexpected = runs.spread.requests - runs.spread.statuses.get("201", 0)
    clean = (
        runs.integrity.ok
        and not spread_unexpected
        and not runs.hot.unexpected
        and not runs.spread.socket_errors
        and runs.hot.stored.orders == runs.hot.accepted
        and not runs.raw.refused
    )
    _print(runs, spread_rate, vs_ceiling, hot_vs_spread)
    document = {
        "workload": "W2",
        "name": "order-place",
        "backend": backend,
        "figures": {
            "orders_per_s": round(spread_rate, 1),
            "p99_ms": round(runs.spread.p99_ms, 3),
            "p50_ms": round(runs.spread.p50_ms, 3),
            "oversold_units": runs.integrity.oversold_units,
        },
        "ceiling": runs.raw.to_json(),
        "ratio": round(vs_ceiling, 3),
        "goal": GOAL_VS_CEILING,
        "goal_met": vs_ceiling >= GOAL_VS_CEILING,
        "hot": _hot_json(runs.hot, hot_vs_spread),
        "integrity": runs.integrity.to_json(),
        "statements_per_single_line_order": runs.statements.to_json(),
        "clean": clean,
        "runs": {"spread": runs.spread.to_json(), "hot": runs.hot.load.to_json()},
        "setup": {
            "skus": SKUS,
            "warehouses": [c for c, _, _ in seed.WAREHOUSES],
            "units_per_stock_row": UNITS_PER_ROW,
            "customers": CUSTOMERS,
            "connections": CONNECTIONS,
            "workers": opts.workers,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "rounds": opts.rounds,
            "ceiling": f"same statements per order via the raw driver, {CONNECTIONS} "
            "threads, one transaction each (BEGIN IMMEDIATE + in-process lock on SQLite)",
        },
        "environment": environment(busy),
    }
    return document, clean


def _hot_json(hot: HotRun, vs_spread: float) -> dict[str, Any]:
    return {
        "sku": hot.sku,
        "units_stocked": hot.units,
        "orders_per_s": round(hot.rate, 1),
        "ratio_to_spread": round(vs_spread, 3),
        "goal": GOAL_HOT_VS_SPREAD,
        "goal_met": vs_spread >= GOAL_HOT_VS_SPREAD,
        "accepted": hot.accepted,
        "refused_insufficient_stock": hot.refused,
        "unexpected": hot.unexpected,
        "sold_out": hot.sold_out,
        "selling_s": round(hot.selling_s, 3),
        "p50_ms": round(hot.load.p50_ms, 3),
        "p99_ms": round(hot.load.p99_ms, 3),
        "responses_per_s": round(hot.load.rate, 1),
        "stored_orders": hot.stored.orders,
        "stored_units": hot.stored.units,
    }


def _print(runs: _Runs, spread_rate: float, vs_ceiling: float, hot_vs_spread: float) -> None:
    spread, raw, hot, integrity = runs.spread, runs.raw, runs.hot, runs.integrity
    report.line(
        "storekeeper, spread",
        f"{spread_rate:8.1f} orders/s   p50 {spread.p50_ms:7.2f} ms"
        f"   p99 {spread.p99_ms:7.2f} ms   statuses {spread.statuses}",
    )
    report.line(
        "ceiling (raw driver)",
        f"{raw.rate:8.1f} orders/s   p50 {raw.p50_ms:7.2f} ms"
        f"   p99 {raw.p99_ms:7.2f} ms   refused {raw.refused}",
    )
    report.line("ratio", report.verdict(vs_ceiling, GOAL_VS_CEILING))
    sold = f"sold out after {hot.selling_s:.1f} s" if hot.sold_out else "did NOT sell out"
    report.line(
        "storekeeper, hot SKU",
        f"{hot.rate:8.1f} orders/s   p50 {hot.load.p50_ms:7.2f} ms"
        f"   p99 {hot.load.p99_ms:7.2f} ms   ({sold}; {hot.accepted} accepted, "
        f"{hot.refused} refused 409, {hot.unexpected} unexpected)",
    )
    report.line("hot / spread", report.verdict(hot_vs_spread, GOAL_HOT_VS_SPREAD))
    report.line(
        "oversold units",
        f"{integrity.oversold_units}   (ledger mismatches "
        f"{integrity.ledger_mismatches}, reservation mismatches "
        f"{integrity.reservation_mismatches}, order-line mismatches "
        f"{integrity.order_line_mismatches}, {integrity.accepted_orders} orders checked)",
    )
    report.line(
        "hot: answered 201 = stored",
        "yes"
        if hot.stored.orders == hot.accepted
        else f"NO ({hot.accepted} answered, {hot.stored.orders} stored)",
    )
    stm = runs.statements
    differs = f"app only {stm.only_in_app}, replay only {stm.only_in_replay}"
    same = "yes" if not (stm.only_in_app or stm.only_in_replay) else f"NO ({differs})"
    report.line(
        "statements, 1-line order",
        f"app {len(stm.app)}, replay {len(stm.replay)}; same kinds: {same}",
    )
    if runs.profile:
        print("\n".join("    " + ln for ln in runs.profile.splitlines()))
