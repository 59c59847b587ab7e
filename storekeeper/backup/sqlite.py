"""Copying a SQLite database while the server writes to it, and back.

SQLite's online backup API copies pages in steps. Between steps other connections write; a write
would restart a plain backup from the first page (and, under steady orders, never let it end), so
the copy holds one read transaction from the first step to the last: in WAL mode that pins a
consistent snapshot without blocking any writer, and the short pause between steps leaves the
disk and the GIL to the server.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from storekeeper.backup.manifest import BackupError, Facts, Progress, contents, facts

PAGES_PER_STEP = 1024  # 4 MiB with the default page size
PAUSE_S = 0.002


def database_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names."""
    name = make_url(url).database
    if not name or name == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(name)


def dump(url: str, *, target: Path, progress: Progress | None = None) -> Facts:
    """Copy the live database at ``url`` into the new file ``target``; the facts of the copy."""
    source_path = database_path(url)
    if not source_path.is_file():
        raise BackupError(f"{source_path} not found: nothing to back up")
    source = sqlite3.connect(source_path, isolation_level=None, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts

        def step(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)
            time.sleep(PAUSE_S)

        source.backup(copy, pages=PAGES_PER_STEP, progress=step)
        source.execute("COMMIT")
        # One self-contained file, not a WAL database waiting for its -wal.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        source.close()
    return _facts_of(target)


def restore(url: str, *, dump_path: Path, progress: Progress | None = None) -> None:
    """Make the database at ``url`` a copy of ``dump_path``; the target must not exist."""
    target = database_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{dump_path}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        check = source.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{dump_path} fails SQLite's quick_check: {check}")
        source.backup(
            copy,
            pages=PAGES_PER_STEP,
            progress=(lambda _s, left, total: progress(total - left, total)) if progress else None,
        )
        copy.execute("PRAGMA journal_mode=WAL")
    finally:
        copy.close()
        source.close()
    # The database appears whole or not at all.
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(target)


def describe(url: str) -> list[str]:
    """What is in the way of a restore to ``url``: its files and their rows."""
    path = database_path(url)
    found = [
        f"{extra} exists"
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if extra.exists()
    ]
    if path.exists():
        held = _contents_of(path) if path.stat().st_size else []
        found.insert(0, f"{path} exists" + (f" ({'; '.join(held)})" if held else ""))
    return found


def clear(url: str) -> None:
    """Remove the database at ``url`` with its WAL files (a forced restore)."""
    path = database_path(url)
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        path.with_name(name).unlink(missing_ok=True)


def _facts_of(path: Path) -> Facts:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return facts(connection)
    finally:
        engine.dispose()


def _contents_of(path: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return contents(connection)
    except DatabaseError as exc:  # not a database at all: still in the way
        return [f"unreadable: {exc}"]
    finally:
        engine.dispose()
