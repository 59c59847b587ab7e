"""The manifest of a backup: what it holds, where it stops, and the checksum that proves it intact.

A backup is a directory: the dump (``storekeeper.db`` or ``storekeeper.dump``), ``manifest.json``
and, when the token-signing root secret was generated into the data directory, ``secret_key``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, inspect, select, table, text
from sqlalchemy.engine import Connection

FORMAT = 1
MANIFEST = "manifest.json"
SECRET_FILE = "secret_key"
DUMP_FILES = {"sqlite": "storekeeper.db", "postgresql": "storekeeper.dump"}
# The tables an operator checks a restore by; every other table travels in the dump all the same.
COUNTED = (
    "accounts_user",
    "catalog_product",
    "inventory_warehouse",
    "inventory_stock",
    "inventory_movement",
    "inventory_reservation",
    "ordering_order",
    "ordering_order_line",
    "sync_mutation",
    "events_outbox",
    "jobs",
)

Backend = Literal["sqlite", "postgresql"]
Progress = Callable[[int, int], None]
"""Called with (done, total) as a copy advances; the unit is the copier's (pages, tables)."""


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a database held at one consistent moment (the backup point)."""

    revision: str | None
    counts: dict[str, int]
    outbox_max_id: int
    pending_events: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json``: written last, so a backup without one is incomplete."""

    backend: Backend
    dump: str
    sha256: str
    size_bytes: int
    revision: str | None
    storekeeper_version: str
    started_at: str
    finished_at: str
    outbox_max_id: int
    pending_events: int
    counts: dict[str, int] = field(default_factory=dict)
    secret_key: bool = False
    format: int = FORMAT

    def write(self, directory: Path) -> None:
        """Write ``manifest.json`` into the backup directory."""
        body = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        (directory / MANIFEST).write_text(body)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """The manifest of the backup in ``directory``, checked for form (not yet the checksum)."""
        path = directory / MANIFEST
        if not path.is_file():
            raise BackupError(f"{path} not found: not a Storekeeper backup, or an incomplete one")
        try:
            body: dict[str, Any] = json.loads(path.read_text())
            if body.get("format") != FORMAT:
                raise BackupError(
                    f"{path}: backup format {body.get('format')!r}, this Storekeeper reads "
                    f"format {FORMAT}"
                )
            manifest = cls(**body)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"{path} is not a valid manifest: {exc}") from exc
        if manifest.backend not in DUMP_FILES or manifest.dump != DUMP_FILES[manifest.backend]:
            raise BackupError(f"{path}: unknown backend or dump {manifest.backend}/{manifest.dump}")
        return manifest

    def verify(self, directory: Path) -> Path:
        """The dump's path, once its size and SHA-256 match the manifest's."""
        dump = directory / self.dump
        if not dump.is_file():
            raise BackupError(f"{dump} is missing")
        digest = sha256(dump)
        if dump.stat().st_size != self.size_bytes or digest != self.sha256:
            raise BackupError(
                f"{dump} is damaged: its SHA-256 is {digest}, the manifest says {self.sha256}"
            )
        return dump


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def facts(connection: Connection) -> Facts:
    """Revision, main row counts and the outbox's reach, read in the caller's transaction
    (which must be the snapshot the dump is taken in)."""
    tables = set(inspect(connection).get_table_names())

    def scalar(sql: str) -> Any:
        return connection.execute(text(sql)).scalar()

    counts = {name: _count(connection, name) for name in COUNTED if name in tables}
    outbox = "events_outbox" in tables
    return Facts(
        revision=scalar("SELECT version_num FROM alembic_version")
        if "alembic_version" in tables
        else None,
        counts=counts,
        outbox_max_id=int(
            scalar("SELECT coalesce(max(id), 0) FROM events_outbox") if outbox else 0
        ),
        pending_events=int(
            scalar("SELECT count(*) FROM events_outbox WHERE published_at IS NULL") if outbox else 0
        ),
    )


def contents(connection: Connection) -> list[str]:
    """What makes a database non-empty, in words: each table with rows and how many; a schema
    with no rows at all still counts, as its tables."""
    tables = sorted(inspect(connection).get_table_names())
    held = []
    for name in tables:
        rows = _count(connection, name)
        if rows:
            held.append(f"{name}: {rows} row{'s' if rows != 1 else ''}")
    if held:
        return held
    if not tables:
        return []
    names = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
    return [f"{len(tables)} tables, all empty ({names})"]


def _count(connection: Connection, name: str) -> int:
    return int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
