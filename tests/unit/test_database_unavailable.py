"""Which database errors mean "unreachable" (503, retry) and which are bugs (500): real errors
from SQLite and from psycopg, classified by storekeeper.api.errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from storekeeper.api.errors import OutageLog, is_database_unavailable


def _error_of(url: str, statement: str) -> DBAPIError:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    error = _error_of(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", "SELECT 1")
    assert isinstance(error.orig, sqlite3.OperationalError)
    assert is_database_unavailable(error)


def test_a_missing_sqlite_table_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    error = _error_of(f"sqlite:///{tmp_path / 'x.db'}", "SELECT * FROM nowhere")
    assert not is_database_unavailable(error)


def test_a_postgresql_server_that_refuses_connections_is_unavailable() -> None:
    # Port 9 (discard): nothing listens there, the connection is refused.
    error = _error_of("postgresql+psycopg://postgres@127.0.0.1:9/none", "SELECT 1")
    assert is_database_unavailable(error)


def test_an_outage_is_logged_once_then_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog(every_s=3600)
    with caplog.at_level("ERROR", logger="storekeeper.api.errors"):
        for _ in range(50):
            outage.report(RuntimeError("connection refused"))
    assert len(caplog.records) == 1
    assert "connection refused" in caplog.records[0].getMessage()
