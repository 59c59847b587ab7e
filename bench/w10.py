"""W10 forecast: 10k (SKU, warehouse) series x 2 years of days, fitted locally and on a Dask
cluster of 2 workers; series/s, speed-up, and whether the results are identical.

The series are synthetic (seeded): a rate per series from 0.02 to 20 units a day (log-uniform),
sales on a share of days (10 % to 100 %), a weekly pattern, and stock-out spells (nothing sold,
nothing left: censored days) on about 5 % of days. What is timed is the per-series work the
cluster takes over (``service.compute``: fit every candidate, backtest, choose, reorder point),
the same function the forecast job calls; reading the ledger is W9's subject.

Engines, one after another on the same series: the local engine in this process (the embedded
default), a local pool of 2 processes, and a cluster of a ``dask scheduler`` and 2 ``dask
worker`` processes (1 thread each) started for the run (tests/compute_cluster.py, as the tests
start it). A warm-up block goes to each pool first so that process start and imports are not
timed. No ceiling (DESIGN.md section 9): the figure is the speed-up over the local engine.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

import numpy as np

from bench import report, schedule
from bench.options import Options, environment
from storekeeper.reporting.forecast import service
from storekeeper.reporting.forecast.engines import DaskEngine, Engine, LocalEngine
from tests.compute_cluster import dask_cluster

SERIES = 10_000
DAYS = 730
WORKERS = 2
BLOCK = 250
POLICY = service.Policy(
    service_level=0.95, lead_time_days=7, service_levels={}, lead_times={"HAM": 3}
)


def synthetic_series(count: int = SERIES, days: int = DAYS, seed: int = 10) -> service.Series:
    """Seeded daily demand with intermittency, a weekly pattern and stock-outs."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.uniform(np.log(0.02), np.log(20), (count, 1)))
    share = rng.uniform(0.1, 1.0, (count, 1))
    weekly = 1 + 0.3 * np.sin(2 * np.pi * (np.arange(days) % 7) / 7)
    sells = rng.random((count, days)) < share
    sold = np.where(sells, rng.poisson(rate * weekly / share), 0).astype(np.int64)
    # Stock-out spells: a start on ~0.5 % of days, lasting 1-20 days.
    out = np.zeros((count, days), dtype=np.bool_)
    rows, starts = np.nonzero(rng.random((count, days)) < 0.005)
    for row, start, length in zip(rows, starts, rng.integers(1, 21, len(rows)), strict=True):
        out[row, start : start + length] = True
    sold[out] = 0
    keys = [(f"SKU-{n:05d}", ("BER", "HAM", "MUC")[n % 3]) for n in range(count)]
    since = date(2024, 1, 1)
    return service.Series(keys, sold, out, since, since + timedelta(days=days - 1))


def _timed(engine: Engine, series: service.Series) -> tuple[float, list[service.Result]]:
    started = time.perf_counter()
    results = service.compute(series, engine=engine, policy=POLICY, block_series=BLOCK)
    return time.perf_counter() - started, results


def _warm(engine: Engine, series: service.Series) -> None:
    small = service.Series(
        series.keys[: BLOCK * WORKERS],
        series.sold[: BLOCK * WORKERS],
        series.censored[: BLOCK * WORKERS],
        series.since,
        series.until,
    )
    service.compute(small, engine=engine, policy=POLICY, block_series=BLOCK)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W10 (the database is not involved: ``backend`` only names the result file)."""
    report.heading(f"W10 forecast ({SERIES} series x {DAYS} days; local vs {WORKERS}-worker Dask)")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    series = synthetic_series()
    local_s, local = _timed(LocalEngine(), series)
    pool = LocalEngine(WORKERS)
    pool_s, pooled = _timed(pool, series)
    with dask_cluster(opts.workdir, workers=WORKERS) as cluster:
        engine = DaskEngine(cluster.address)
        try:
            _warm(engine, series)
            cluster_s, remote = _timed(engine, series)
        finally:
            engine.close()
    identical = remote == local and pooled == local
    mase = [r.mase for r in local if r.mase is not None]
    mae = [r.mae for r in local if r.mae is not None]
    methods = Counter(r.method for r in local)
    document = {
        "benchmark": "W10",
        "backend": backend,
        "series": SERIES,
        "days": DAYS,
        "block_series": BLOCK,
        "local_s": round(local_s, 3),
        "local_series_per_s": round(SERIES / local_s, 1),
        "pool_s": round(pool_s, 3),
        "pool_series_per_s": round(SERIES / pool_s, 1),
        "cluster_workers": WORKERS,
        "cluster_s": round(cluster_s, 3),
        "cluster_series_per_s": round(SERIES / cluster_s, 1),
        "speed_up": round(local_s / cluster_s, 2),
        "identical": identical,
        "censored_share": round(float(series.censored.mean()), 4),
        "median_mase": round(statistics.median(mase), 3),
        "mean_mae": round(statistics.fmean(mae), 3),
        "series_with_mase_below_1": round(sum(m < 1 for m in mase) / len(mase), 3),
        "methods": dict(methods.most_common()),
        "environment": environment(busy),
    }
    report.line("local (this process)", f"{local_s:.2f} s, {SERIES / local_s:,.0f} series/s")
    report.line(f"local pool x{WORKERS}", f"{pool_s:.2f} s, {SERIES / pool_s:,.0f} series/s")
    report.line(
        f"Dask, {WORKERS} workers",
        f"{cluster_s:.2f} s, {SERIES / cluster_s:,.0f} series/s, "
        f"speed-up {local_s / cluster_s:.2f}",
    )
    report.line("identical results", "yes" if identical else "NO")
    report.line(
        "backtest",
        f"median MASE {document['median_mase']}, mean MAE {document['mean_mae']}, "
        f"MASE < 1 on {document['series_with_mase_below_1']:.0%}",
    )
    report.line("methods chosen", ", ".join(f"{m} {n}" for m, n in methods.most_common()))
    if not identical:
        print("  NOT CLEAN: the cluster's results differ from the local engine's", flush=True)
    return document, identical
