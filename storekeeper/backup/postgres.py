"""Copying a PostgreSQL database with the client tools (``pg_dump``, ``pg_restore``), and back.

The dump runs in a snapshot this module exports from a repeatable-read transaction, in which it
also reads the manifest's facts: the counts describe exactly what the dump holds. The password
travels in ``PGPASSWORD``, never on a command line that ``ps`` shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url

from storekeeper.backup.manifest import BackupError, Facts, Progress, contents, facts

_DATA_LINE = re.compile(r"(dumping contents of table|processing data for table) ")


def tool(name: str) -> str:
    """The path of a PostgreSQL client program: on PATH, else the newest under /usr/lib."""
    found = shutil.which(name)
    if found:
        return found
    installed = list(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if installed:
        return str(max(installed, key=lambda path: int(path.parts[-3])))
    raise BackupError(
        f"{name} not found: install the PostgreSQL client tools of your server's version "
        "(Debian/Ubuntu: apt install postgresql-client) or put them on PATH"
    )


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """The connection string for the client tools (no password in it) and their environment."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # A new URL rather than ``set(password=None)``, which leaves the password in place.
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return plain.render_as_string(hide_password=False), env


def dump(url: str, *, target: Path, progress: Progress | None = None) -> Facts:
    """``pg_dump --format=custom`` of the database at ``url`` into ``target``; its facts."""
    program = tool("pg_dump")
    conninfo, env = libpq(url)
    with _snapshot(url) as connection:
        exported = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        held = facts(connection)
        tables = _table_count(connection)
        _run(
            [
                program,
                "--format=custom",
                "--verbose",
                f"--snapshot={exported}",
                f"--file={target}",
                f"--dbname={conninfo}",
            ],
            env=env,
            total=tables,
            progress=progress,
        )
    return held


def restore(url: str, *, dump_path: Path, progress: Progress | None = None) -> None:
    """``pg_restore`` the dump into the (empty) database at ``url``, in one transaction."""
    program = tool("pg_restore")
    conninfo, env = libpq(url)
    # Our own argument list (a client tool and a file name), no shell: nothing to inject.
    listing = subprocess.run(  # noqa: S603
        [program, "--list", str(dump_path)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read {dump_path}: {listing.stderr.strip()}")
    tables = sum(" TABLE DATA " in line for line in listing.stdout.splitlines())
    _run(
        [
            program,
            "--verbose",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(dump_path),
        ],
        env=env,
        total=tables,
        progress=progress,
    )


def describe(url: str) -> list[str]:
    """What is in the way of a restore to ``url``: the tables of its schema and their rows."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            held = contents(connection)
            name = connection.execute(text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    return [f"database {name}: {item}" for item in held]


def clear(url: str) -> None:
    """Drop every table, sequence and type in the database's schema (a forced restore)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for kind, query in (
                ("TABLE", "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"),
                (
                    "SEQUENCE",
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()",
                ),
                (
                    "TYPE",
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'c') "
                    "AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)",
                ),
            ):
                for name in connection.execute(text(query)).scalars():
                    connection.execute(text(f'DROP {kind} IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            connection.execute(text("SET TRANSACTION READ ONLY"))
            yield connection
            connection.rollback()
    finally:
        engine.dispose()


def _table_count(connection: Connection) -> int:
    query = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    return int(connection.execute(text(query)).scalar_one())


def _run(command: list[str], *, env: dict[str, str], total: int, progress: Progress | None) -> None:
    """Run a client tool, advancing ``progress`` per table it copies; its errors, verbatim."""
    process = subprocess.Popen(  # noqa: S603 (our argument list, no shell)
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    done = 0
    lines: list[str] = []
    for line in process.stderr:
        if _DATA_LINE.search(line):
            done += 1
            if progress is not None:
                progress(min(done, total), total)
        else:
            lines.append(line.rstrip())
    if process.wait() != 0:
        errors = [line for line in lines if "error" in line.lower()] or lines[-5:]
        raise BackupError(f"{Path(command[0]).name} failed: " + " | ".join(errors))
