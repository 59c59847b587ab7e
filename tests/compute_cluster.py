"""A real Dask cluster for tests and benchmarks: ``dask scheduler`` and ``dask worker``
processes on loopback, each its own OS process, importing this checkout's storekeeper."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    """A scheduler's address and the processes behind it."""

    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _dask() -> list[str]:
    return [str(Path(sys.executable).parent / "dask")]


@contextlib.contextmanager
def dask_cluster(log_dir: Path, *, workers: int = 2, threads: int = 1) -> Iterator[Cluster]:
    """A scheduler and ``workers`` single-process workers; stopped (all of them) on exit."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # Workers unpickle storekeeper's functions: they must import this checkout, not another.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "client")])}
    cluster = Cluster(address)
    commands = [
        [
            *_dask(),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ]
    ] + [
        [
            *_dask(),
            "worker",
            address,
            "--host",
            "127.0.0.1",
            "--nthreads",
            str(threads),
            "--no-dashboard",
            "--no-nanny",
            "--memory-limit",
            "0",
            "--name",
            f"worker-{n}",
            "--local-directory",
            str(log_dir / f"worker-{n}"),
        ]
        for n in range(workers)
    ]
    try:
        for n, command in enumerate(commands):
            with (log_dir / f"dask-{n}.log").open("ab") as log:
                cluster.processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
        client = Client(address, timeout=30, set_as_default=False)
        try:
            client.wait_for_workers(workers, timeout=60)
        finally:
            client.close()
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            stop(process)
