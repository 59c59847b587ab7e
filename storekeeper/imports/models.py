"""The table of the imports package: one row per import run, with its file and its progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, utcnow


class ImportRun(Base):
    """An import (or dry run) of one file: the file itself, the options, how far it got.

    ``processed`` counts the file's rows whose changes are committed; it is written in the same
    transaction as each batch of changes, so a run that stopped half-way (a killed process, a
    crashed job) goes on from there and never applies a row twice.
    """

    __tablename__ = "imports_run"
    __table_args__ = (Index("ix_imports_run_key", "key", "id"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    # The file's SHA-256 with the options: what a re-run of the same import finds.
    key: Mapped[str] = mapped_column(String(160))
    # Set only for stock `add` runs: the same file is received into a warehouse once.
    receipt_key: Mapped[str | None] = mapped_column(String(160), unique=True, default=None)
    filename: Mapped[str] = mapped_column(String(200))
    stock_mode: Mapped[str | None] = mapped_column(String(8), default=None)
    warehouse: Mapped[str | None] = mapped_column(String(32), default=None)
    dry_run: Mapped[bool] = mapped_column(default=False)
    actor_id: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ImportFile(Base):
    """The file of an import run, in a table of its own: the run's row is updated after every
    batch, and a row holding megabytes would be rewritten each time (SQLite rewrites a whole
    row on UPDATE)."""

    __tablename__ = "imports_file"

    run_id: Mapped[int] = mapped_column(
        AutoIncrementId, ForeignKey("imports_run.id"), primary_key=True, autoincrement=False
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
