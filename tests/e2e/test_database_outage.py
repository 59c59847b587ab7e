"""A database lost while serving: 503 ``database_unavailable`` with ``Retry-After``, logged once
per outage, not a 500 with a traceback a request. A real server, a real PostgreSQL behind a TCP
proxy that is stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from storekeeper import migrations
from storekeeper.config import Settings
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, start_server, stop_server
from tests.e2e.api_support import API
from tests.netfaults import FlakyProxy


@pytest.fixture
def proxied_database() -> Iterator[tuple[FlakyProxy, str]]:
    """A fresh, migrated PostgreSQL database reached through a proxy; its URL via the proxy."""
    name = f"sk_outage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_URL)
    proxy = FlakyProxy((str(admin.get("host", "127.0.0.1")), int(admin.get("port", 5432))))
    user = admin.get("user", "postgres")
    password = f":{admin['password']}" if admin.get("password") else ""
    url = f"postgresql+psycopg://{user}{password}@127.0.0.1:{proxy.port}/{name}"
    migrations.upgrade(url)
    yield proxy, url
    proxy.close()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_lost_database_answers_503_with_retry_after_and_logs_once(
    proxied_database: tuple[FlakyProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_database
    settings = Settings(database_url=url, data_dir=tmp_path, secret_key=TEST_SECRET, _env_file=None)  # type: ignore[arg-type]
    log_path = tmp_path / "server.log"
    server = start_server(settings, log_path)
    try:
        assert httpx.get(f"{server.url}{API}/products", timeout=10).status_code == 200

        proxy.fail(down=True)
        proxy.close()  # stops listening and cuts the pooled connections: the database is gone
        answers = [httpx.get(f"{server.url}{API}/products", timeout=30) for _ in range(20)]
    finally:
        stop_server(server)

    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "database_unavailable"
        assert int(answer.headers["Retry-After"]) > 0
    log = log_path.read_text()
    # The requests' part of the log: one line for the outage, no traceback per request. (The
    # background loops, job worker, relay and live hub, log their own retries.)
    assert "unhandled error" not in log
    assert "Exception in ASGI application" not in log
    assert log.count("database unavailable, answering 503") == 1, log
