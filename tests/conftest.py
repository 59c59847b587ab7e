"""Fixtures shared by the whole suite: a clean real database per test, on SQLite and PostgreSQL.

Each test that asks for ``database_url`` runs twice, once per backend. SQLite tests get a copy
of a migrated template file; PostgreSQL tests get their xdist worker's own database, migrated
once and truncated before each test, so workers never see each other's rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from storekeeper import migrations
from storekeeper.accounts import devices as accounts_devices
from storekeeper.accounts import sessions as accounts_sessions
from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings
from storekeeper.schema import metadata
from tests.processes import free_port, stop, wait_healthy

PG_ADMIN_URL = os.environ.get(
    "STOREKEEPER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"
BACKENDS = ("sqlite", "postgresql")


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This worker's own PostgreSQL database, migrated once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"sk_test_{worker}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _sa_url(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    migrations.upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind this test runs on."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database of the current backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "storekeeper.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_all(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: its own database and data dir, a fixed secret."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        # Limits on, but far above any test's burst from the one TestClient address; the
        # limits themselves are tested with small ones in tests/e2e/test_rate_limits.py.
        rate_limit_login="10000/minute per account, 10000/minute per address",
        rate_limit_register="10000/minute per address",
        rate_limit_refresh="10000/minute per account",
        rate_limit_orders="10000/minute per account, 10000/minute per address",
        # No sensor TCP listener in servers started for tests, unless a test gives a port.
        telemetry_port=0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """The composition root, wired to the test database."""
    built = bootstrap(settings)
    yield built
    built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """An in-process HTTP client of the app."""
    with TestClient(create_app(container=container), raise_server_exceptions=False) as tc:
        yield tc


@dataclass
class Actor:
    """A user of the test, with ready-made auth headers."""

    id: uuid.UUID
    email: str
    password: str
    role: Role
    headers: dict[str, str]


class Actors:
    """Creates users of any role and hands out their bearer headers."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def make(
        self, role: Role, email: str | None = None, warehouses: list[str] | None = None
    ) -> Actor:
        """A new active user with ``role`` and a valid access token of a fresh session."""
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct-horse-battery"
        if role is Role.DEVICE:  # devices get a token from an admin, bound to a scope
            with self.container.db.transaction() as session:
                device = accounts_devices.create_device(
                    session,
                    self.container.settings,
                    key=self.container.signing_key,
                    label=email,
                    scope=f"warehouse:{(warehouses or ['BER'])[0]}",
                    actor_id=uuid.uuid4(),
                )
            headers = {"Authorization": f"Bearer {device.token}"}
            return Actor(device.device.user_id, email, password, role, headers)
        with self.container.db.transaction() as session:
            user = accounts_users.create_user(
                session, email=email, password=password, role=role, warehouses=warehouses
            )
            tokens = accounts_sessions.open_session_for(
                session, self.container.settings, key=self.container.signing_key, user=user
            )
        headers = {"Authorization": f"Bearer {tokens.access_token}"}
        return Actor(user.id, email, password, role, headers)


@pytest.fixture
def actors(container: Container) -> Actors:
    """Factory of users."""
    return Actors(container)


@pytest.fixture
def manager(actors: Actors) -> Actor:
    """A manager."""
    return actors.make(Role.MANAGER)


@pytest.fixture
def customer(actors: Actors) -> Actor:
    """A customer."""
    return actors.make(Role.CUSTOMER)


@dataclass
class LiveServer:
    """A real ``storekeeper`` API process on loopback."""

    url: str
    process: subprocess.Popen[bytes]


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process ``settings`` (every non-default value)."""
    env = {**os.environ}
    defaults = Settings.model_fields
    for name, value in settings.model_dump().items():
        if name in defaults and value == defaults[name].default:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        # pydantic-settings reads lists and dicts from the environment as JSON.
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"STOREKEEPER_{name.upper()}"] = text
    env["STOREKEEPER_DATABASE_URL"] = settings.effective_database_url
    return env


def start_server(settings: Settings, log_path: Path, *, port: int | None = None) -> LiveServer:
    """Start uvicorn in a separate process with ``settings`` (on ``port``, else a free one); wait
    until healthy. A fixed port restarts a stopped server at the address its clients know."""
    port = port or free_port()
    env = env_for(settings)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "storekeeper.api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log_path)
    return LiveServer(url, process)


def stop_server(server: LiveServer) -> None:
    """Stop the server process gracefully, killing it if it hangs."""
    stop(server.process)


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """A real API process on loopback, against the test database."""
    server = start_server(settings, tmp_path / "server.log")
    yield server
    stop_server(server)


@pytest.fixture
def grpc_target(container: Container) -> Iterator[str]:
    """A real gRPC server on a free loopback port, serving the test database."""
    from storekeeper.grpc import server as grpc_server  # only the gRPC tests load grpcio

    running = grpc_server.start(
        db=container.db,
        authenticator=container.authenticator,
        host="127.0.0.1",
        port=0,
        watch_poll_s=0.05,
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(grace_s=1)
