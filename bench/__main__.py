"""Run the benchmarks of DESIGN.md section 9 (W1, W2, W2-card, EV, W3, W4, W5, W6, W7, W8, W9, W10,
console).

Results go to bench/results.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import (
    console,
    ev,
    grpc_bench,
    infra,
    loadgen,
    report,
    w1,
    w2,
    w2_card,
    w3,
    w4,
    w5,
    w5_mqtt,
    w6,
    w7,
    w8,
    w9,
    w10,
)
from bench.options import Options, environment

Benchmark = Callable[[str, Options], tuple[dict[str, Any], bool]]
BENCHMARKS: dict[str, Benchmark] = {
    "W1": w1.run,
    "W2": w2.run,
    "W2-card": w2_card.run,
    "EV": ev.run,
    "W3": w3.run,
    "W4": w4.run,
    "W5": w5.run,
    "W5-mqtt": w5_mqtt.run,
    "W6": w6.run,
    "W7": w7.run,
    "W8": w8.run,
    "W9": w9.run,
    "W10": w10.run,
    "GRPC": grpc_bench.run,
    "console": console.run,
}
BACKENDS = ("sqlite", "postgresql")
RESULTS_DIR = Path(__file__).parent / "results"
_EPILOG = """benchmarks (--only; see bench/README.md):
  W1       catalog-read: GET /products/{sku}, 64 connections
           ceiling: a bare Starlette endpoint serving the same JSON
  W2       order-place: POST /orders, manual payment, 32 connections, plus a hot SKU
           ceiling: the same SQL statements per order through the driver
  W2-card  W2 paid by card via a payment-sim the bench starts: placement rate, settle
           rate, confirmed share, saga invariants (pending left, double authorization,
           held = confirmed); ceiling: W2's manual orders on the same server
  EV       events/s through the outbox relay per publisher: inprocess, rabbitmq, redis
           (+ a storekeeper worker end to end on PostgreSQL)
           ceilings: a Celery send_task loop without database; the inbox rows in one
           executemany
  W3       sync-initial: a fresh Replica pulls --w3-products products + their BER stock
           floor: the same pages by a bare httpx loop + one executemany transaction
  W4       sync-merge: 20 replicas x 500 offline mutations, concurrent sync, final pull;
           mutations/s and converged yes/no (no ceiling)
  W5       telemetry over HTTP: 200 sensors, batches of 200 readings, 4 clients;
           readings/s stored; ceiling: the same rows by one executemany transaction
           (goal ratio >= 0.2)
  W5-mqtt  telemetry over MQTT: 200 sensors, one reading per QoS 1 message, through the
           system Mosquitto into storekeeper serve's subscriber; readings/s stored;
           ceiling: W5's
  W6       scale-out: W2's order load through nginx to 1, then 2 API processes, on
           PostgreSQL + RabbitMQ (scripts/cluster.py); orders/s each, scaling factor,
           CPU used per kind of process (no ceiling; PostgreSQL only)
  GRPC     gRPC Reserve calls/s (storekeeper grpc, 32 client threads) next to W2's
           POST /orders/s on the same data, alternating slices; ratio Reserve / order
  console  console pages (products, search over 100k products; dashboard over 1M
           movements): server ms and bytes per view; ceiling: the JSON API for the
           same data, alternating slices; ratio page / API (goal <= 1.5)
  W7       sync-initial in the browser: the clerk PWA (/app/replica.js + IndexedDB) in
           headless Chromium pulls --w7-products products + BER stock; rows/s (goal
           >= 50k) next to W3's Python replica (same run) and PowerSync's published
           figures; floor: the same pages by fetch + JSON.parse, not stored
  W8       import: a 100k-row product + stock CSV (stock add) through storekeeper.imports;
           rows/s and the longest write transaction (goal <= 250 ms); ceiling: the same
           rows by one executemany transaction per run (goal ratio >= 0.3); then W2's
           orders (8 clients) during the import against alone, same server, same run
  W9       reports over 1M ledger rows (reporting's read model, months closed into
           snapshots): each report's time as a multiple of one full scan of the same
           rows (goal <= 3; reads as of a date <= 1)
  W10      forecast: 10k synthetic series x 730 days fitted by the local engine, a
           local pool of 2 processes and a Dask cluster of 2 workers (started for the
           run); series/s, speed-up over local, identical results yes/no (no ceiling;
           the database is not involved)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        choices=sorted(BENCHMARKS),
        action="append",
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        action="append",
        help="run only on this database (repeatable; default: both)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds measured per side, app and ceiling (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds of warm-up before each measured run (default 2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="slices the measurement is split into, app and ceiling taking "
        "turns A B B A (default 2)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes, app and ceiling alike (default 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after each measured run, one more under py-spy; stacks and a "
        "summary go to the results directory",
    )
    parser.add_argument(
        "--w3-products",
        type=int,
        default=w3.PRODUCTS,
        metavar="N",
        help=f"products (each with a stock row) W3 pulls (default {w3.PRODUCTS})",
    )
    parser.add_argument(
        "--w7-products",
        type=int,
        default=w7.PRODUCTS,
        metavar="N",
        help=f"products (each with a stock row) the clerk app pulls in W7 (default {w7.PRODUCTS})",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR,
        metavar="DIR",
        help="where the JSON results go (default bench/results)",
    )
    return parser


def _check_postgres() -> None:
    infra.require_loopback(infra.PG_ADMIN_URL)
    try:
        with psycopg.connect(infra.PG_ADMIN_URL, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        sys.exit(
            f"PostgreSQL at {infra.PG_ADMIN_URL} is not reachable ({exc}); "
            "start it (make services) or pass --backend sqlite"
        )


def _validate(args: argparse.Namespace) -> None:
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 120:
        sys.exit("--duration must be within 1..600 s and --warmup within 0..120 s")
    if not 1 <= args.workers <= 16 or not 1 <= args.rounds <= 10:
        sys.exit("--workers must be within 1..16 and --rounds within 1..10")
    if not 1 <= args.w3_products <= 1_000_000 or not 1 <= args.w7_products <= 1_000_000:
        sys.exit("--w3-products and --w7-products must be within 1..1000000")
    if args.duration / args.rounds < 1:
        sys.exit("each of the --rounds slices of --duration must last at least 1 s")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; exit status 1 if any run was not clean (e.g. oversold)."""
    args = _parser().parse_args(argv)
    _validate(args)
    backends = args.backend or list(BACKENDS)
    if "postgresql" in backends:
        _check_postgres()
    started = time.monotonic()
    env = environment()
    print(
        f"Storekeeper benchmarks at {env['commit']}: {env['cpus']} cores, Python {env['python']}, "
        f"load generator: {loadgen.generator_name()}\nNote: {env['note']}.",
        flush=True,
    )
    failures: list[str] = []
    args.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sk_bench_") as tmp:
        opts = Options(
            duration_s=args.duration,
            warmup_s=args.warmup,
            rounds=args.rounds,
            workers=args.workers,
            profile=args.profile,
            results_dir=args.results,
            workdir=Path(tmp),
        )
        benchmarks = {
            **BENCHMARKS,
            "W3": functools.partial(w3.run, products=args.w3_products),
            "W7": functools.partial(w7.run, products=args.w7_products),
        }
        for name in args.only or list(BENCHMARKS):
            for backend in backends:
                document, clean = benchmarks[name](backend, opts)
                path = report.write(opts.results_dir, f"{name}-{backend}", document)
                print(f"  -> {path}", flush=True)
                if not clean:
                    failures.append(f"{name}-{backend}")
    print(
        f"\nfinished in {time.monotonic() - started:.0f} s"
        + (f"; NOT clean: {', '.join(failures)}" if failures else ""),
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
