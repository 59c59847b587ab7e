"""GRPC reserve: gRPC ``Reserve`` calls/s next to HTTP ``POST /orders``/s, same data, same run.

W2's data (1k SKUs x BER/HAM/MUC with ample stock, 32 customers). Each call reserves 1-3 random
lines (qty 1-3, a random ``ship_to`` in Germany) under a fresh ref; each order is W2's. Both
servers are real processes on loopback against the same database: ``storekeeper serve`` (one
worker) and ``storekeeper grpc`` (32 threads), loaded by 32 concurrent clients each, in
alternating slices (A B B A). The gRPC load comes from 32 threads of this process, each with its
own channel (the gRPC client is C core; Python only builds the requests); HTTP is loaded by wrk
(or the Python fallback) as in W2. The two calls do not do the same work: an order also quotes
prices, writes the order, its lines, the idempotency key, payment and three more events; a
Reserve is the allocation alone. The ratio says what an integrator gains by reserving over gRPC.
Afterwards: nothing oversold, every stock row equal to its ledger and its active reservations.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from bench import checks, infra, report, schedule, seed, w2
from bench.infra import BenchDatabase, Server
from bench.loadgen import run_load
from bench.measure import LoadResult, merge
from bench.options import Options, environment
from storekeeper.accounts import sessions as accounts_sessions
from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.grpc.gen import inventory_pb2 as pb
from storekeeper.grpc.gen.inventory_pb2_grpc import InventoryStub

CONNECTIONS = 32
GRPC_THREADS = 32
_READY_TIMEOUT_S = 60.0
_CALL_TIMEOUT_S = 30.0


def _manager_token(container: Container) -> str:
    """An access token of a fresh manager (Reserve is for stock handlers, not customers)."""
    with container.db.transaction() as session:
        user = accounts_users.create_user(
            session,
            email=f"bench-manager-{uuid.uuid4().hex[:8]}@example.com",
            password="bench-manager-password",
            role=Role.MANAGER,
        )
        tokens = accounts_sessions.open_session_for(
            session, container.settings, key=container.signing_key, user=user
        )
    return tokens.access_token


def _reserve_request(rng: random.Random, run_id: str, n: int) -> pb.ReserveRequest:
    """Lines like W2's orders: 1-3 distinct random SKUs of 1-3 units, shipped somewhere."""
    area = seed.SHIP_TO_AREA
    indexes = rng.sample(range(w2.SKUS), rng.randint(1, 3))
    return pb.ReserveRequest(
        ref=f"bench-{run_id}-{n}",
        lines=[pb.Line(sku=seed.sku(i), qty=rng.randint(1, 3)) for i in indexes],
        ship_to=pb.Point(
            lat=round(rng.uniform(area["lat_min"], area["lat_max"]), 4),
            lon=round(rng.uniform(area["lon_min"], area["lon_max"]), 4),
        ),
    )


def grpc_load(target: str, token: str, *, duration_s: float, run_seed: int) -> LoadResult:
    """``CONNECTIONS`` threads, a channel each, calling Reserve back to back for ``duration_s``."""
    metadata = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    run_id = uuid.uuid4().hex[:12]
    barrier = threading.Barrier(CONNECTIONS + 1)

    def client(worker: int) -> None:
        rng = random.Random(run_seed * 1000 + worker)
        # A local subchannel pool: each thread gets its own TCP connection, as wrk's do.
        options = [("grpc.use_local_subchannel_pool", 1)]
        mine: list[float] = []
        counts: Counter[str] = Counter()
        with grpc.insecure_channel(target, options=options) as channel:
            stub = InventoryStub(channel)
            grpc.channel_ready_future(channel).result(timeout=_READY_TIMEOUT_S)
            barrier.wait()  # connected: all start together
            deadline = time.monotonic() + duration_s
            n = 0
            while time.monotonic() < deadline:
                request = _reserve_request(rng, f"{run_id}-{worker}", n)
                n += 1
                started = time.monotonic()
                try:
                    stub.Reserve(request, timeout=_CALL_TIMEOUT_S, metadata=metadata)
                    counts["OK"] += 1
                except grpc.RpcError as exc:
                    counts[exc.code().name] += 1
                mine.append(time.monotonic() - started)
        with lock:
            latencies.extend(mine)
            statuses.update(counts)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return LoadResult(
        requests=statuses.get("OK", 0),
        duration_s=elapsed,
        max_ms=max(latencies, default=0.0) * 1e3,
        non_2xx=sum(n for code, n in statuses.items() if code != "OK"),
        socket_errors=0,
        generator=f"python grpc, {CONNECTIONS} threads",
        statuses=dict(statuses),
        quantiles=tuple((x * 1e3, 1.0) for x in latencies),
    )


def _start_grpc(db: BenchDatabase, workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = infra.free_port()
    log_path = workdir / "grpc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            infra.storekeeper_cli(
                "grpc", "--host", infra.LOOPBACK, "--port", str(port),
                "--threads", str(GRPC_THREADS),
            ),
            env=infra.server_env(db),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    target = f"{infra.LOOPBACK}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=_READY_TIMEOUT_S)
        except grpc.FutureTimeoutError as exc:
            process.kill()
            raise RuntimeError(f"gRPC server not ready; log:\n{log_path.read_text()}") from exc
    return process, target, log_path


def _measure(
    db: BenchDatabase, container: Container, opts: Options
) -> tuple[LoadResult, LoadResult, checks.Integrity]:
    customers = w2.seed_orders(container)
    token = _manager_token(container)
    port = infra.free_port()
    command = infra.storekeeper_command(port, opts.workers)
    grpc_process, target, _ = _start_grpc(db, opts.workdir)
    try:
        with infra.serve(
            command, port=port, env=infra.server_env(db), workdir=opts.workdir, name="grpc-http"
        ) as server:
            http_runs: list[LoadResult] = []
            grpc_runs: list[LoadResult] = []
            _http(server, customers, opts, opts.warmup_s)
            grpc_load(target, token, duration_s=opts.warmup_s, run_seed=0)
            schedule.alternate(
                [
                    lambda r: http_runs.append(_http(server, customers, opts, opts.slice_s)),
                    lambda r: grpc_runs.append(
                        grpc_load(target, token, duration_s=opts.slice_s, run_seed=r + 1)
                    ),
                ],
                opts.rounds,
            )
    finally:
        grpc_process.terminate()
        try:
            grpc_process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            grpc_process.kill()
            grpc_process.wait()
    return merge(http_runs), merge(grpc_runs), checks.verify(container.db)


def _http(server: Server, customers: list[seed.Customer], opts: Options, s: float) -> LoadResult:
    spec = w2.orders_spec(customers)
    return run_load(spec, server.url, connections=CONNECTIONS, duration_s=s, workdir=opts.workdir)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run the gRPC comparison on ``backend``; returns the results document and cleanliness."""
    report.heading(f"GRPC reserve vs order-place on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with (
        infra.fresh_database(backend, "grpc", opts.workdir) as db,
        infra.container_for(db) as container,
    ):
        http, reserve, integrity = _measure(db, container, opts)
    ratio = report.ratio(reserve.rate, http.rate)
    # gRPC reservations are not orders: only the order-line check cannot apply here.
    clean = (
        not integrity.oversold_units
        and not integrity.ledger_mismatches
        and not integrity.reservation_mismatches
        and not reserve.non_2xx
        and http.requests == http.statuses.get("201", 0)
        and not http.socket_errors
    )
    report.line("gRPC Reserve", f"{reserve.rate:,.0f} calls/s, p50 {reserve.p50_ms:.1f} ms, "
                f"p99 {reserve.p99_ms:.1f} ms ({reserve.generator})")  # fmt: skip
    report.line("HTTP POST /orders", f"{http.rate:,.0f} orders/s, p50 {http.p50_ms:.1f} ms, "
                f"p99 {http.p99_ms:.1f} ms ({http.generator})")  # fmt: skip
    report.line("ratio", f"{ratio:.2f} Reserve calls per order")
    report.line("oversold units", str(integrity.oversold_units))
    if not clean:
        report.line("NOT CLEAN", f"{integrity.to_json()} grpc statuses {reserve.statuses}")
    document = {
        "workload": "GRPC",
        "name": "reserve-vs-order",
        "backend": backend,
        "figures": {
            "reserve_calls_per_s": round(reserve.rate, 1),
            "reserve_p50_ms": round(reserve.p50_ms, 3),
            "reserve_p99_ms": round(reserve.p99_ms, 3),
            "orders_per_s": round(http.rate, 1),
            "orders_p50_ms": round(http.p50_ms, 3),
            "orders_p99_ms": round(http.p99_ms, 3),
            "oversold_units": integrity.oversold_units,
        },
        "ratio": round(ratio, 3),
        "integrity": integrity.to_json(),
        "clean": clean,
        "runs": {"grpc": reserve.to_json(), "http": http.to_json()},
        "setup": {
            "skus": w2.SKUS,
            "connections": CONNECTIONS,
            "grpc_threads": GRPC_THREADS,
            "workers": opts.workers,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "rounds": opts.rounds,
        },
        "environment": environment(busy),
    }
    return document, clean
