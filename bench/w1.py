"""W1 catalog-read: ``GET /api/v1/products/{sku}`` for random SKUs of 10k, 64 connections.

Ceiling: ``bench.ceiling_app``, a bare Starlette endpoint serving the same JSON from a dict, run
by the same uvicorn with the same flags and workers. Both servers run side by side (an idle one
costs nothing) and are measured in alternating slices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import infra, profile, report, schedule, seed
from bench.ceiling_app import PRODUCTS_FILE_ENV
from bench.infra import BenchDatabase, Server
from bench.loadgen import run_load
from bench.measure import LoadResult, LoadSpec, merge
from bench.options import Options, environment

PRODUCTS = 10_000
CONNECTIONS = 64
GOAL = 0.5
_SAMPLE_SKU = seed.sku(4242)


def _spec() -> LoadSpec:
    return LoadSpec(
        "catalog",
        {
            "seed": 11,
            "sku_format": seed.SKU_FORMAT,
            "sku_count": PRODUCTS,
            "path": "/api/v1/products/",
        },
    )


def _load(server: Server, opts: Options, duration_s: float) -> LoadResult:
    return run_load(
        _spec(), server.url, connections=CONNECTIONS, duration_s=duration_s, workdir=opts.workdir
    )


def _read_each_sku(server: Server, workers: int) -> None:
    """Read every product once (on as many fresh connections as there are worker processes),
    so the measured run finds each process's view cache filled: W1 measures a server that has
    been up for a while, not how fast a cold one fills its cache (on PostgreSQL a 2-second warm-up
    left about half the SKUs still cold and halved the ratio)."""
    for _ in range(max(1, workers)):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for index in range(PRODUCTS):
                client.get(f"/api/v1/products/{seed.sku(index)}").raise_for_status()


def _sample(server: Server) -> Any:
    return httpx.get(f"{server.url}/api/v1/products/{_SAMPLE_SKU}", timeout=10).json()


def _profile(server: Server, opts: Options, name: str) -> str:
    """One more run of the app under py-spy; returns the summary."""
    folded = opts.results_dir / f"{name}.folded"
    with profile.recording(server.process.pid, folded, opts.duration_s):
        _load(server, opts, opts.duration_s)
    summary = profile.summarise(folded, seconds=opts.duration_s)
    (opts.results_dir / f"{name}.txt").write_text(summary)
    return summary


def _seed(db: BenchDatabase, documents: Path) -> None:
    with infra.container_for(db) as container:
        seed.seed_products(container.db, count=PRODUCTS)
        seed.write_product_documents(container.db, documents)


def _measure(db: BenchDatabase, opts: Options) -> tuple[dict[str, LoadResult], bool, str | None]:
    documents = opts.workdir / "w1-products.json"
    _seed(db, documents)
    ceiling_port, app_port = infra.free_port(), infra.free_port()
    name = f"W1-{db.backend}"
    with contextlib.ExitStack() as stack:
        ceiling = stack.enter_context(
            infra.serve(
                infra.uvicorn_command("bench.ceiling_app:create_app", ceiling_port, opts.workers),
                port=ceiling_port,
                env=infra.server_env(db, {PRODUCTS_FILE_ENV: str(documents)}),
                workdir=opts.workdir,
                name=f"{name}-ceiling",
            )
        )
        app = stack.enter_context(
            infra.serve(
                infra.storekeeper_command(app_port, opts.workers),
                port=app_port,
                env=infra.server_env(db),
                workdir=opts.workdir,
                name=f"{name}-app",
            )
        )
        same_json = _sample(app) == _sample(ceiling)
        slices: dict[str, list[LoadResult]] = {"app": [], "ceiling": []}

        def runner(key: str, server: Server) -> Callable[[int], None]:
            return lambda _round: slices[key].append(_load(server, opts, opts.slice_s))

        _read_each_sku(app, opts.workers)
        for server in (app, ceiling):
            _load(server, opts, opts.warmup_s)
        schedule.alternate([runner("app", app), runner("ceiling", ceiling)], opts.rounds)
        summary = _profile(app, opts, f"{name}-app") if opts.profile else None
    return {key: merge(runs) for key, runs in slices.items()}, same_json, summary


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W1 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W1 catalog-read on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with infra.fresh_database(backend, "w1", opts.workdir) as db:
        loads, same_json, summary = _measure(db, opts)
    app, ceiling = loads["app"], loads["ceiling"]
    value = _print(app, ceiling, same_json)
    if summary:
        print("\n".join("    " + ln for ln in summary.splitlines()))
    clean = same_json and not (
        app.non_2xx or app.socket_errors or ceiling.non_2xx or ceiling.socket_errors
    )
    document = {
        "workload": "W1",
        "name": "catalog-read",
        "backend": backend,
        "figures": _figures(app),
        "ceiling": _figures(ceiling),
        "ratio": round(value, 3),
        "goal": GOAL,
        "goal_met": value >= GOAL,
        "clean": clean,
        "same_json_as_ceiling": same_json,
        "runs": {"app": app.to_json(), "ceiling": ceiling.to_json()},
        "setup": {
            "products": PRODUCTS,
            "connections": CONNECTIONS,
            "workers": opts.workers,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "rounds": opts.rounds,
            "ceiling": "bare Starlette endpoint, JSON from an in-memory dict, same uvicorn"
            " flags and workers, measured in alternating slices",
        },
        "environment": environment(busy),
    }
    return document, clean


def _figures(load: LoadResult) -> dict[str, float]:
    return {
        "req_per_s": round(load.rate, 1),
        "p50_ms": round(load.p50_ms, 3),
        "p99_ms": round(load.p99_ms, 3),
    }


def _print(app: LoadResult, ceiling: LoadResult, same_json: bool) -> float:
    value = report.ratio(app.rate, ceiling.rate)
    for label, load in (("storekeeper", app), ("ceiling (bare Starlette)", ceiling)):
        report.line(
            label,
            f"{load.rate:9.1f} req/s   p50 {load.p50_ms:7.2f} ms   "
            f"p99 {load.p99_ms:7.2f} ms   non-2xx {load.non_2xx}",
        )
    report.line("ratio", report.verdict(value, GOAL))
    report.line("same JSON as ceiling", "yes" if same_json else "NO")
    return value
