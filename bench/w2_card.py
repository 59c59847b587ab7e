"""W2-card: W2's orders paid by card, through a payment simulator started by the bench.

Same data, load generator and 32 connections as W2; every order carries a card token, is
answered ``201 pending_payment``, and the saga (``collect_payment`` jobs in the server's job
threads, embedded mode) asks ``storekeeper payment-sim`` and confirms or cancels it. Figures:
placement rate and p99, settle rate (placed -> confirmed/cancelled, measured until every order
of the window has settled), confirmed share against the share the simulator's rates predict,
and the saga's invariants. Ceiling: W2's manual-payment placement rate on the same server, in
alternating slices; each slice starts with the background idle (no payment, event or job left).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench import card_checks, checks, infra, report, schedule, w2
from bench.card_checks import Saga, Settled
from bench.infra import BenchDatabase, Server
from bench.loadgen import run_load
from bench.measure import LoadResult, LoadSpec, merge
from bench.options import Options, environment
from storekeeper.config import Settings
from storekeeper.db import Database, utcnow

SIM = {"latency_ms": 10, "jitter_ms": 20, "failure_rate": 0.05, "decline_rate": 0.02, "seed": 29}
"""The gateway: 10 + up to 20 ms (20 ms ± 10 ms), 5 % of calls fail with 503, 2 % declined."""
CARD_PAYMENT = {"method": "card", "token": "tok_ok"}
_SETTLE_TIMEOUT_MIN_S = 60.0
_SETTLE_TIMEOUT_PER_SLICE = 20.0
"""Settling may take this many times as long as placing (2 job threads against 32 clients)."""


@dataclass(frozen=True, slots=True)
class CardSlice:
    """One measured card slice: what the clients saw and how the saga settled it."""

    load: LoadResult
    settled: Settled
    backlog_at_end: int
    """Orders still pending_payment when the load stopped: the job lag."""


@dataclass(frozen=True, slots=True)
class _Runs:
    card: LoadResult
    settled: Settled
    backlog_at_end: list[int]
    manual: LoadResult
    manual_drain_s: list[float | None]
    saga: Saga
    integrity: checks.Integrity
    settings: Settings


def settle_timeout_s(opts: Options) -> float:
    """How long to wait for a slice's orders to settle before calling it a failure."""
    return max(_SETTLE_TIMEOUT_MIN_S, _SETTLE_TIMEOUT_PER_SLICE * opts.slice_s)


def _sim_command(port: int) -> list[str]:
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SIM.items()]
    return infra.storekeeper_cli(
        "payment-sim", "--host", infra.LOOPBACK, "--port", str(port), *flags
    )


def _load(spec: LoadSpec, server: Server, opts: Options, duration_s: float) -> LoadResult:
    return run_load(
        spec, server.url, connections=w2.CONNECTIONS, duration_s=duration_s, workdir=opts.workdir
    )


def _card_slice(db: Database, spec: LoadSpec, server: Server, opts: Options) -> CardSlice:
    since = utcnow()
    load = _load(spec, server, opts, opts.slice_s)
    backlog = card_checks.pending(db)
    card_checks.wait_idle(db, timeout_s=settle_timeout_s(opts))
    return CardSlice(load, card_checks.settled_since(db, since), backlog)


def _measure(db: BenchDatabase, opts: Options) -> _Runs:
    settings = infra.settings_for(db)
    with infra.container_for(db) as container:
        customers = w2.seed_orders(container)
        sim_port, port = infra.free_port(), infra.free_port()
        env = infra.server_env(db)
        with (
            infra.serve(
                _sim_command(sim_port),
                port=sim_port,
                env=env,
                workdir=opts.workdir,
                name=f"W2-card-{db.backend}-sim",
            ) as sim,
            infra.serve(
                infra.storekeeper_command(port, opts.workers),
                port=port,
                env={**env, "STOREKEEPER_PAYMENT_URL": sim.url},
                workdir=opts.workdir,
                name=f"W2-card-{db.backend}-app",
            ) as server,
        ):

            def card_spec() -> LoadSpec:
                return w2.orders_spec(customers, payment=CARD_PAYMENT)

            timeout = settle_timeout_s(opts)
            _load(w2.orders_spec(customers), server, opts, opts.warmup_s)
            card_checks.wait_idle(container.db, timeout_s=timeout)
            cards: list[CardSlice] = []
            manual: list[LoadResult] = []
            drains: list[float | None] = []

            def manual_slice(_round: int) -> None:
                manual.append(_load(w2.orders_spec(customers), server, opts, opts.slice_s))
                drains.append(card_checks.wait_idle(container.db, timeout_s=timeout))

            schedule.alternate(
                [
                    lambda _round: cards.append(
                        _card_slice(container.db, card_spec(), server, opts)
                    ),
                    manual_slice,
                ],
                opts.rounds,
            )
            # Refunds of cancelled orders must be through before comparing with the gateway.
            card_checks.wait_idle(container.db, timeout_s=timeout)
            saga = card_checks.verify(container.db, sim.url)
        return _Runs(
            card=merge([c.load for c in cards]),
            settled=card_checks.merge([c.settled for c in cards]),
            backlog_at_end=[c.backlog_at_end for c in cards],
            manual=merge(manual),
            manual_drain_s=drains,
            saga=saga,
            integrity=checks.verify(container.db),
            settings=settings,
        )


def expected_confirmed_share(settings: Settings) -> float:
    """Authorized at last: not every attempt failed (503), and not declined."""
    unavailable = SIM["failure_rate"] ** (settings.payment_retries + 1)
    return (1 - unavailable) * (1 - SIM["decline_rate"])


def _rate(load: LoadResult) -> float:
    return load.statuses.get("201", 0) / load.duration_s if load.duration_s else 0.0


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W2-card on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W2-card order-place, card payments, on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with infra.fresh_database(backend, "w2card", opts.workdir) as db:
        runs = _measure(db, opts)
    card_rate, manual_rate = _rate(runs.card), _rate(runs.manual)
    settled = runs.settled
    settle_rate = report.ratio(settled.settled, settled.settle_s)
    expected = expected_confirmed_share(runs.settings)
    share = report.ratio(runs.saga.confirmed, runs.saga.confirmed + runs.saga.cancelled)
    problems = _problems(runs)
    _print(runs, card_rate, manual_rate, settle_rate, share, expected, problems)
    p50, p99 = card_checks.settle_percentiles(settled)
    document = {
        "workload": "W2-card",
        "name": "order-place-card",
        "backend": backend,
        "figures": {
            "orders_per_s": round(card_rate, 1),
            "p99_ms": round(runs.card.p99_ms, 3),
            "p50_ms": round(runs.card.p50_ms, 3),
            "settled_per_s": round(settle_rate, 1),
            "settle_s": round(settled.settle_s, 3),
            "settle_p50_ms": round(p50, 1),
            "settle_p99_ms": round(p99, 1),
            "backlog_at_end_of_load": runs.backlog_at_end,
            "confirmed_share": round(share, 4),
            "expected_confirmed_share": round(expected, 4),
            "pending_left": runs.saga.pending,
            "max_authorizations_per_order": runs.saga.max_authorizations_per_order,
            "held_equals_confirmed": runs.saga.held_equals_confirmed,
            "oversold_units": runs.integrity.oversold_units,
        },
        "ceiling": {**runs.manual.to_json(), "orders_per_s": round(manual_rate, 1)},
        "ceiling_drain_s": [None if d is None else round(d, 2) for d in runs.manual_drain_s],
        "ratio": round(report.ratio(card_rate, manual_rate), 3),
        "saga": runs.saga.to_json(),
        "integrity": runs.integrity.to_json(),
        "problems": problems,
        "clean": not problems,
        "runs": {"card": runs.card.to_json(), "manual": runs.manual.to_json()},
        "setup": _setup(runs.settings, opts),
        "environment": environment(busy),
    }
    return document, not problems


def _problems(runs: _Runs) -> list[str]:
    found = list(runs.saga.problems)
    if not runs.integrity.ok:
        found.append(f"stock integrity: {runs.integrity.to_json()}")
    for name, load in (("card", runs.card), ("manual", runs.manual)):
        unexpected = load.requests - load.statuses.get("201", 0) + load.socket_errors
        if unexpected:
            found.append(f"{unexpected} {name} orders not answered 201: {load.statuses}")
    # Requests still in flight when the load generator stops are carried out but not counted.
    answered, slices = runs.card.statuses.get("201", 0), len(runs.backlog_at_end)
    if not 0 <= runs.settled.orders - answered <= w2.CONNECTIONS * slices:
        found.append(f"{answered} card orders answered 201 but {runs.settled.orders} stored")
    if runs.settled.pending:
        found.append(f"{runs.settled.pending} orders of the measured slices never settled")
    if any(drain is None for drain in runs.manual_drain_s):
        found.append("events or jobs still pending after a manual slice (timed out waiting)")
    return found


def _setup(settings: Settings, opts: Options) -> dict[str, Any]:
    return {
        "skus": w2.SKUS,
        "customers": w2.CUSTOMERS,
        "connections": w2.CONNECTIONS,
        "workers": opts.workers,
        "duration_s": opts.duration_s,
        "warmup_s": opts.warmup_s,
        "rounds": opts.rounds,
        "settle_timeout_s": settle_timeout_s(opts),
        "payment_sim": SIM,
        "job_threads": settings.job_threads,
        "payment_timeout_s": settings.payment_timeout_s,
        "payment_retries": settings.payment_retries,
        "payment_breaker_failures": settings.payment_breaker_failures,
        "payment_breaker_reset_s": settings.payment_breaker_reset_s,
        "payment_deadline_s": settings.payment_deadline_s,
        "ceiling": "W2's manual-payment orders on the same server, alternating slices",
    }


def _share_band(expected: float, n: int) -> str:
    if not n:
        return ""
    spread = 3 * math.sqrt(expected * (1 - expected) / n)
    low, high = max(0.0, expected - spread), min(1.0, expected + spread)
    return f" (3 sigma for {n} orders: {low:.1%}..{high:.1%})"


def _print(
    runs: _Runs,
    card_rate: float,
    manual_rate: float,
    settle_rate: float,
    share: float,
    expected: float,
    problems: list[str],
) -> None:
    card, manual, saga, settled = runs.card, runs.manual, runs.saga, runs.settled
    report.line(
        "storekeeper, card",
        f"{card_rate:8.1f} orders/s   p50 {card.p50_ms:7.2f} ms"
        f"   p99 {card.p99_ms:7.2f} ms   statuses {card.statuses}",
    )
    report.line(
        "ceiling (manual payment)",
        f"{manual_rate:8.1f} orders/s   p50 {manual.p50_ms:7.2f} ms"
        f"   p99 {manual.p99_ms:7.2f} ms   statuses {manual.statuses}",
    )
    report.line("ratio card / manual", f"{report.ratio(card_rate, manual_rate):.2f}")
    p50, p99 = card_checks.settle_percentiles(settled)
    report.line(
        "settled (confirm/cancel)",
        f"{settle_rate:8.1f} orders/s   {settled.settled} orders in {settled.settle_s:.1f} s"
        f"   placed->settled p50 {p50:.0f} ms, p99 {p99:.0f} ms",
    )
    report.line(
        "pending when load stopped",
        f"{', '.join(map(str, runs.backlog_at_end))} (per card slice: the job lag)",
    )
    report.line(
        "confirmed share",
        f"{share:.1%} of {saga.confirmed + saga.cancelled} card orders, expected "
        f"{expected:.1%}{_share_band(expected, saga.confirmed + saga.cancelled)}",
    )
    report.line("cancel reasons", str(saga.cancel_reasons or "-"))
    report.line("pending left", f"{saga.pending}   (must be 0)")
    report.line("max auths per order", f"{saga.max_authorizations_per_order}   (must be 1)")
    report.line(
        "held orders = confirmed",
        "yes"
        if saga.held_equals_confirmed
        else f"NO ({saga.held_not_confirmed} held not confirmed, "
        f"{saga.confirmed_not_held} confirmed not held)",
    )
    report.line("oversold units", f"{runs.integrity.oversold_units}   (must be 0)")
    sim = saga.sim
    report.line(
        "gateway",
        f"{sim['requests']} requests, {sim['injected_failures']} injected 503s, "
        f"authorizations {sim['authorizations']}, voids {sim['voids']}",
    )
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
