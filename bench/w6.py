"""W6 scale-out: W2's order load through nginx to 1, then 2, API processes on PostgreSQL + RabbitMQ.

The cluster is the one ``make cluster`` starts (``scripts/cluster.py``: ``storekeeper serve``
processes, one ``storekeeper worker``, nginx with ``deploy/nginx/nginx.conf``). The load is W2's
spread variant (1k SKUs x 3 warehouses, 1-3 lines, manual payment, 32 connections). Besides
orders/s and the scaling factor, it reports the CPU each kind of process used during the
measured run (from ``/proc/<pid>/stat``), which is what explains the factor on a small machine:
when the cores are already busy with one API process, a second one has nothing to run on.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import checks, infra, loadgen, report, schedule, seed, w2
from bench.measure import LoadResult
from bench.options import Options, environment
from scripts.cluster import Cluster, running, upstream_counts

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
API_COUNTS = (1, 2)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_KINDS = ("api", "worker", "nginx", "postgres", "rabbitmq", "load generator")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, CPU ticks used) of ``pid``, or None if it is gone.

    For this process the ticks are those of its finished children: wrk has exited (and been
    waited for) by the time the run is measured, so its CPU shows up there.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    first = 13 if pid == os.getpid() else 11  # cutime + cstime, else utime + stime
    return name, int(fields[1]), int(fields[first]) + int(fields[first + 1])


def _all_processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _kind_of(pid: int, name: str, ppid: int, cluster: Cluster) -> str | None:
    pids = cluster.pids()
    if pid in pids["api"]:
        return "api"
    if pid in pids["worker"]:
        return "worker"
    if pid in pids["nginx"] or ppid in pids["nginx"]:
        return "nginx"
    if name.startswith("postgres"):
        return "postgres"
    if name in {"beam.smp", "erl_child_setup", "epmd"}:
        return "rabbitmq"
    if name == "wrk" or pid == os.getpid():
        return "load generator"
    return None


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """Cores used on average during a run, by kind of process, and by the whole machine."""

    cores: dict[str, float]
    machine_busy_cores: float

    @property
    def others(self) -> float:
        """Cores busy with processes that are not part of this benchmark (other users)."""
        return max(0.0, self.machine_busy_cores - sum(self.cores.values()))

    def to_json(self) -> dict[str, Any]:
        """Rounded for the results file."""
        return {
            "cores_by_kind": {k: round(v, 2) for k, v in self.cores.items()},
            "machine_busy_cores": round(self.machine_busy_cores, 2),
            "other_processes_cores": round(self.others, 2),
        }


@contextmanager
def _cpu_accounting(cluster: Cluster) -> Iterator[list[CpuUse]]:
    """CPU used by each kind of process while the block runs (appended to the list on exit)."""
    result: list[CpuUse] = []
    before, busy_before = _all_processes(), _machine_ticks()
    started = time.monotonic()
    yield result
    wall = time.monotonic() - started
    after, busy_after = _all_processes(), _machine_ticks()
    cores = dict.fromkeys(_KINDS, 0.0)
    for pid, (name, ppid, ticks) in after.items():
        kind = _kind_of(pid, name, ppid, cluster)
        if kind is not None:
            used = ticks - before.get(pid, (name, ppid, 0))[2]
            cores[kind] += used / _CLOCK_TICKS / wall
    total_ticks = busy_after[1] - busy_before[1]
    machine = (busy_after[0] - busy_before[0]) / total_ticks * (os.cpu_count() or 1)
    result.append(CpuUse(cores, machine))


@dataclass(frozen=True, slots=True)
class Step:
    """One cluster size: the load it took and the CPU it used."""

    apis: int
    load: LoadResult
    cpu: CpuUse
    served: dict[str, int]

    @property
    def rate(self) -> float:
        """Orders answered 201 per second."""
        return self.load.statuses.get("201", 0) / self.load.duration_s

    def cpu_ms_per_order(self) -> dict[str, float]:
        """CPU milliseconds each kind of process spent per accepted order: what an order costs."""
        rate = self.rate or float("inf")
        return {kind: cores * 1000 / rate for kind, cores in self.cpu.cores.items()}

    def to_json(self) -> dict[str, Any]:
        """Rounded for the results file."""
        return {
            "api_processes": self.apis,
            "cpu_ms_per_order": {k: round(v, 2) for k, v in self.cpu_ms_per_order().items()},
            "orders_per_s": round(self.rate, 1),
            "p50_ms": round(self.load.p50_ms, 3),
            "p99_ms": round(self.load.p99_ms, 3),
            "requests_per_api_process": self.served,
            "cpu": self.cpu.to_json(),
            "run": self.load.to_json(),
        }


def _step(
    apis: int, db: infra.BenchDatabase, customers: list[seed.Customer], opts: Options
) -> Step:
    env = infra.server_env(
        db,
        {
            "STOREKEEPER_BROKER_URL": RABBITMQ_URL,
            "STOREKEEPER_BROKER_PREFIX": f"bench-w6-{uuid.uuid4().hex[:8]}",
        },
    )
    cluster = Cluster(opts.workdir / f"w6-{apis}", env, apis=apis, workers=1)
    with running(cluster):

        def load(duration_s: float) -> LoadResult:
            # A fresh run id per call (orders_spec): Idempotency-Keys never repeat.
            return loadgen.run_load(
                w2.orders_spec(customers),
                cluster.url,
                connections=w2.CONNECTIONS,
                duration_s=duration_s,
                workdir=opts.workdir,
            )

        load(opts.warmup_s)
        offset = cluster.access_log.stat().st_size
        with _cpu_accounting(cluster) as cpu:
            measured = load(opts.duration_s)
        served = dict(upstream_counts(cluster.access_log, offset=offset))
    _delete_queues(env)
    return Step(apis, measured, cpu[0], served)


def _delete_queues(env: dict[str, str]) -> None:
    from storekeeper.config import Settings
    from storekeeper.tasks.celery_app import delete_broker_queues

    delete_broker_queues(
        Settings(
            broker_url=env["STOREKEEPER_BROKER_URL"],
            broker_prefix=env["STOREKEEPER_BROKER_PREFIX"],
            _env_file=None,
        )
    )


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W6 (PostgreSQL only: several processes share the database)."""
    report.heading(f"W6 scale-out on {backend} + RabbitMQ, behind nginx")
    if backend != "postgresql":
        report.line("skipped", "W6 runs on PostgreSQL only")
        return {"workload": "W6", "backend": backend, "skipped": True}, True
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with infra.fresh_database(backend, "w6", opts.workdir) as db, infra.container_for(db) as c:
        customers = w2.seed_orders(c)
        steps = [_step(apis, db, customers, opts) for apis in API_COUNTS]
        integrity = checks.verify(c.db)
    factor = report.ratio(steps[-1].rate, steps[0].rate)
    unexpected = sum(s.load.requests - s.load.statuses.get("201", 0) for s in steps)
    clean = integrity.ok and not unexpected and not any(s.load.socket_errors for s in steps)
    _print(steps, factor, integrity)
    document = {
        "workload": "W6",
        "name": "scale-out",
        "backend": backend,
        "figures": {
            **{f"orders_per_s_{s.apis}_api": round(s.rate, 1) for s in steps},
            "scaling_factor": round(factor, 3),
            "oversold_units": integrity.oversold_units,
        },
        "steps": [s.to_json() for s in steps],
        "integrity": integrity.to_json(),
        "clean": clean,
        "setup": {
            "load": "W2 spread: 1k SKUs x BER/HAM/MUC, 1-3 lines, manual payment",
            "connections": w2.CONNECTIONS,
            "broker": "rabbitmq",
            "workers": 1,
            "proxy": "nginx, deploy/nginx/nginx.conf rendered by scripts/cluster.py",
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
        },
        "environment": environment(busy),
    }
    return document, clean


def _print(steps: list[Step], factor: float, integrity: checks.Integrity) -> None:
    for step in steps:
        cores = ", ".join(f"{k} {v:.2f}" for k, v in step.cpu.cores.items() if v >= 0.01)
        report.line(
            f"{step.apis} API process(es)",
            f"{step.rate:8.1f} orders/s   p50 {step.load.p50_ms:7.2f} ms"
            f"   p99 {step.load.p99_ms:7.2f} ms   statuses {step.load.statuses}",
        )
        report.line(
            "  CPU cores used",
            f"{cores}; not ours {step.cpu.others:.2f}; "
            f"machine {step.cpu.machine_busy_cores:.2f} of {os.cpu_count()}",
        )
        per_order = step.cpu_ms_per_order()
        cost = ", ".join(f"{k} {v:.1f}" for k, v in per_order.items() if v >= 0.05)
        report.line("  CPU ms per order", f"{cost}; total {sum(per_order.values()):.1f}")
        report.line("  requests per API", str(step.served))
    report.line("scaling factor", f"{factor:.2f} (2 API processes / 1)")
    report.line("oversold units", str(integrity.oversold_units))
