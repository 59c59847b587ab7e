"""Throwaway databases and real server processes on loopback, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from pydantic import SecretStr

from storekeeper import migrations
from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings

LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
PG_ADMIN_URL = os.environ.get(
    "STOREKEEPER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SECRET_KEY = "storekeeper-bench-secret-key-0123456789abcdef"
"""Fixed, so the bench process can mint tokens that the server accepts."""

REPO_ROOT = Path(__file__).resolve().parent.parent
_BIN = Path(sys.executable).parent
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A fresh, migrated database for one benchmark."""

    backend: str
    url: str
    """SQLAlchemy URL, as the server gets it."""
    driver_target: str
    """What the raw driver connects to: a file path (sqlite3) or a conninfo URL (psycopg)."""
    data_dir: Path


def require_loopback(url: str) -> None:
    """Refuse any database or server that is not on this machine's loopback interface."""
    host = urlsplit(url).hostname
    if host not in _LOOPBACK_NAMES:
        raise ValueError(f"benchmarks only talk to loopback addresses, not {host!r}")


def _pg_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _pg_recreate(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _pg_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(backend: str, name: str, workdir: Path) -> Iterator[BenchDatabase]:
    """A migrated, empty database: ``sk_bench_<name>`` on PostgreSQL, a file in ``workdir``."""
    data_dir = workdir / f"data-{name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = data_dir / "storekeeper.db"
        db = BenchDatabase(backend, f"sqlite:///{path}", str(path), data_dir)
        migrations.upgrade(db.url)
        yield db
        return
    require_loopback(PG_ADMIN_URL)
    db_name = f"sk_bench_{name}"
    _pg_recreate(db_name)
    conninfo = _pg_url(PG_ADMIN_URL, db_name)
    db = BenchDatabase(
        backend, conninfo.replace("postgresql://", "postgresql+psycopg://", 1), conninfo, data_dir
    )
    try:
        migrations.upgrade(db.url)
        yield db
    finally:
        _pg_drop(db_name)


def settings_for(db: BenchDatabase) -> Settings:
    """The settings the server runs with, for seeding from this process."""
    # Arguments beat the environment; no .env: seeding sees the database the server gets.
    return Settings(
        database_url=db.url,
        data_dir=db.data_dir,
        secret_key=SecretStr(SECRET_KEY),
        _env_file=None,
    )


@contextlib.contextmanager
def container_for(db: BenchDatabase) -> Iterator[Container]:
    """Storekeeper's composition root wired to ``db``, closed afterwards."""
    container = bootstrap(settings_for(db))
    try:
        yield container
    finally:
        container.close()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def storekeeper_cli(*args: str) -> list[str]:
    """A ``storekeeper`` command line, with the console script of this virtualenv."""
    return [str(_BIN / "storekeeper"), *args]


def storekeeper_command(port: int, workers: int) -> list[str]:
    """How an operator starts Storekeeper (``storekeeper serve``), on loopback."""
    return storekeeper_cli("serve", "--no-migrate", *_listen(port, workers))


def _listen(port: int, workers: int) -> list[str]:
    """The listen flags both servers get, so app and ceiling run alike."""
    return ["--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]


def uvicorn_command(factory: str, port: int, workers: int) -> list[str]:
    """Uvicorn with the flags ``storekeeper serve`` passes, for another app factory."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        *_listen(port, workers),
        "--no-access-log",
        "--log-level",
        "info",
    ]


@dataclass(frozen=True, slots=True)
class Server:
    """A running server process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def server_env(db: BenchDatabase, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a server process gets: Storekeeper settings plus the repo on the path."""
    env = {
        **os.environ,
        "STOREKEEPER_DATABASE_URL": db.url,
        "STOREKEEPER_DATA_DIR": str(db.data_dir),
        "STOREKEEPER_SECRET_KEY": SECRET_KEY,
        # Throughput is measured here; a few customers placing thousands of orders a minute
        # would otherwise be (rightly) rate-limited.
        "STOREKEEPER_RATE_LIMITS_ENABLED": "false",
        # No sensor listener unless a benchmark asks for one (W5 does): port 7070 may be taken
        # by a server the machine runs anyway.
        "STOREKEEPER_TELEMETRY_PORT": "0",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    return {**env, **(extra or {})}


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    for _ in range(int(_READY_TIMEOUT_S * 10)):
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"server did not become ready; log:\n{log_path.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_S)


@contextlib.contextmanager
def serve(
    command: list[str], *, port: int, env: dict[str, str], workdir: Path, name: str
) -> Iterator[Server]:
    """Run ``command`` as a server on ``port`` until the block ends; its output goes to a log."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://{LOOPBACK}:{port}"
        try:
            _wait_ready(url, process, log_path)
            yield Server(url, process, log_path)
        finally:
            _stop(process)
