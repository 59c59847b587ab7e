"""Observability of real ``storekeeper serve`` processes: readiness when the database or the
broker goes away, metrics summed over workers, logs, and a graceful SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from storekeeper import migrations
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from storekeeper.ordering.models import Order
from tests.conftest import PG_ADMIN_URL, Actors, LiveServer, _sa_url, env_for
from tests.e2e.test_observability import parse
from tests.payment_sim import start_sim, stop_sim, storekeeper_script
from tests.processes import free_port, stop, wait_healthy
from tests.shop import add_product, add_warehouses


def start_cli(
    settings: Settings, log_path: Path, *args: str, env: dict[str, str] | None = None
) -> LiveServer:
    """``storekeeper serve`` as an operator starts it (logging, workers, graceful shutdown)."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [storekeeper_script(), "serve", "--no-migrate", "--port", str(port), *args],
            env={**env_for(settings), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log_path)
    return LiveServer(url, process)


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def readiness(url: str) -> tuple[int, dict[str, str]]:
    """``/readyz``'s status and checks."""
    r = httpx.get(f"{url}/readyz", timeout=10)
    return r.status_code, r.json()["checks"]


def log_lines(path: Path) -> list[dict[str, object]]:
    """The JSON log lines a process wrote (other output skipped)."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


# --- readiness -----------------------------------------------------------------------------


@pytest.fixture
def own_pg_database(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """A dedicated, migrated PostgreSQL database (renamed by the test, so never the shared one)."""
    name = f"sk_obs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _sa_url(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    migrations.upgrade(url)
    yield settings.model_copy(update={"database_url": url}), name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for candidate in (name, f"{name}_away"):
            conn.execute(f'DROP DATABASE IF EXISTS "{candidate}" WITH (FORCE)')


def _rename(old: str, new: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [old]
        )
        conn.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')


@pytest.mark.parametrize("backend", ["postgresql"])
def test_readyz_is_503_while_the_database_is_unreachable_and_recovers(
    own_pg_database: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, name = own_pg_database
    server = start_cli(settings, tmp_path / "server.log")
    try:
        assert readiness(server.url) == (200, {"database": "ok", "migrations": "ok"})
        _rename(name, f"{name}_away")
        eventually(lambda: readiness(server.url)[0] == 503, "readyz to fail")
        status, checks = readiness(server.url)
        assert (status, checks["database"]) == (503, "unreachable")
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # alive, just not ready
        _rename(f"{name}_away", name)
        eventually(lambda: readiness(server.url)[0] == 200, "readyz to recover")
    finally:
        stop(server.process)


class Redis:
    """A redis-server of this test's own, on a free port, that can be killed and restarted."""

    def __init__(self, directory: Path) -> None:
        self.port, self.directory = free_port(), directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        flags = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(
            [binary, *flags, "--dir", str(self.directory)], stdout=subprocess.DEVNULL
        )
        eventually(self._answers, "redis-server to start")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_readyz_is_503_while_the_broker_is_down_and_recovers(
    settings: Settings, tmp_path: Path
) -> None:
    redis = Redis(tmp_path)
    redis.start()
    prefix = f"obs{uuid.uuid4().hex[:8]}"
    broker = settings.model_copy(update={"broker_url": redis.url, "broker_prefix": prefix})
    server = start_cli(broker, tmp_path / "server.log")
    try:
        assert readiness(server.url) == (
            200,
            {"database": "ok", "migrations": "ok", "broker": "ok"},
        )
        redis.kill()
        eventually(lambda: readiness(server.url)[0] == 503, "readyz to fail")
        r = httpx.get(f"{server.url}/readyz")
        assert r.json()["checks"]["broker"] == "unreachable"
        assert r.json()["detail"] == "not ready: broker"
        redis.start()
        eventually(lambda: readiness(server.url)[0] == 200, "readyz to recover")
    finally:
        stop(server.process)
        redis.kill()


# --- metrics over several workers ----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_metrics_of_every_worker_are_summed(settings: Settings, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    server = start_cli(settings, log_path, "--workers", "2")
    path = "/api/v1/products/{sku}"
    sent = 0

    def get(n: int) -> None:
        # A new connection each: the workers share the listening socket and take turns.
        httpx.get(f"{server.url}/api/v1/products/OBS-{n}", timeout=10)

    def serving_pids() -> set[object]:
        return {ln["pid"] for ln in log_lines(log_path) if ln.get("route") == path}

    try:
        with ThreadPoolExecutor(8) as pool:
            while len(serving_pids()) < 2:
                assert sent < 2000, "one worker answered every request"
                list(pool.map(get, range(sent, sent + 50)))
                sent += 50
        for _ in range(3):  # whichever worker answers the scrape, it reports both
            samples = parse(httpx.get(f"{server.url}/metrics", timeout=10).text)
            counted = sum(
                v
                for (name, labels), v in samples.items()
                if name == "storekeeper_http_requests_total" and ("route", path) in labels
            )
            assert counted == sent
    finally:
        stop(server.process)
    assert server.process.returncode == 0


# --- logs ---------------------------------------------------------------------------------------


def test_logs_carry_request_context_and_never_secrets(
    settings: Settings, actors: Actors, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    server = start_cli(settings, log_path)
    manager = actors.make(Role.MANAGER)
    token = manager.headers["Authorization"].removeprefix("Bearer ")
    request_id = f"obs-{uuid.uuid4().hex}"
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.get(
                "/api/v1/me",
                headers={**manager.headers, "X-Request-ID": request_id},
                params={"token": "query-secret-123"},
            )
            assert r.status_code == 200 and r.headers["x-request-id"] == request_id
            http.post(
                "/api/v1/auth/token",
                data={"username": manager.email, "password": "wrong-password-456"},
            )
            http.get("/api/v1/products", headers={"Authorization": "Bearer not.a.jwt-789"})
            http.get(f"/api/v1/products?access_token={token}")
    finally:
        stop(server.process)
    text = log_path.read_text()
    for secret in (token, "query-secret-123", "wrong-password-456", "not.a.jwt-789"):
        assert secret not in text
    access = [ln for ln in log_lines(log_path) if ln["logger"] == "storekeeper.access"]
    mine = [ln for ln in access if ln.get("request_id") == request_id]
    assert len(mine) == 1
    assert mine[0]["user_id"] == str(manager.id)
    assert (mine[0]["method"], mine[0]["route"], mine[0]["status"]) == (
        "GET",
        "/api/v1/me",
        200,
    )
    assert isinstance(mine[0]["duration_ms"], float)
    assert all({"ts", "level", "msg", "request_id"} <= ln.keys() for ln in access)


# --- graceful shutdown --------------------------------------------------------------------------


def test_sigterm_lets_the_request_and_the_job_in_hand_finish_then_exits_0(
    settings: Settings, actors: Actors, tmp_path: Path
) -> None:
    sim = start_sim(tmp_path / "sim.log", "--latency-ms", "2000")
    card = settings.model_copy(
        update={"payment_url": sim.url, "payment_timeout_s": 10.0, "payment_retries": 0}
    )
    server = start_cli(card, tmp_path / "server.log")
    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            add_warehouses(http, manager.headers)  # type: ignore[arg-type]
            add_product(http, manager.headers, "SOUP", stock={"BER": 3})  # type: ignore[arg-type]
            r = http.post(
                "/api/v1/orders",
                json={
                    "lines": [{"sku": "SOUP", "qty": 1}],
                    "payment": {"method": "card", "token": "tok_ok"},
                },
                headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
        eventually(lambda: sim.stats()["in_flight"] > 0, "the payment job to call the gateway")
        # A request in flight: headers and half its body sent, the rest after the SIGTERM.
        body = json.dumps({"sku": "BEANS", "name": "Beans", "price_cents": 99, "currency": "EUR"})
        half = len(body) // 2
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(
                (
                    "POST /api/v1/products HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: {manager.headers['Authorization']}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    + body[:half]
                ).encode()
            )
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[half:].encode())
            answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 201"), answer
        assert server.process.wait(timeout=60) == 0
    finally:
        stop(server.process)
        stop_sim(sim)
    container = bootstrap(settings)
    try:
        with container.db.reading() as session:
            order = session.get(Order, uuid.UUID(order_id))
            assert order is not None and order.status == "confirmed"
    finally:
        container.close()
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()
