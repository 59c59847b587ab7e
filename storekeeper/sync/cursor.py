"""Pull cursors: where a replica is in the snapshot-then-feed of its scope.

A cursor is base64url (no padding) of compact JSON. It names no server state: it holds the
outbox snapshots the feed reads between (``storekeeper.events.outbox``), so it stays valid
across restarts and on any API process. Clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from storekeeper.errors import InvalidRequest
from storekeeper.events.outbox import Snapshot

MAX_IN_PROGRESS = 10_000  # far above any server's max_connections
_Xid = Annotated[int, Field(ge=0, lt=2**63)]


class InvalidCursor(InvalidRequest):
    """A ``since`` cursor this server did not issue for this scope and database."""

    code = "invalid_cursor"


class _Snap(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    xmin: _Xid
    xmax: _Xid
    xip: list[_Xid] = Field(max_length=MAX_IN_PROGRESS)

    @model_validator(mode="after")
    def _consistent(self) -> _Snap:
        if self.xmin > self.xmax or any(not self.xmin <= x < self.xmax for x in self.xip):
            raise ValueError("inconsistent snapshot")
        return self


class Cursor(BaseModel):
    """The state of one replica's pull: the phase, the last key served and the snapshots."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    v: Literal[1] = 1
    scope: str = Field(max_length=64)
    db: Literal["sqlite", "postgresql"]
    phase: Literal["products", "stock", "feed"]
    # The feed continues from ``since``; in the snapshot phases, the feed starts there.
    since: _Snap
    # The feed's current batch ends at ``until`` (None: no batch begun).
    until: _Snap | None = None
    # Snapshot phases: the last SKU served; feed: the last (order key, position) served.
    after_sku: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._\-]{0,64}$")
    after: tuple[_Xid, _Xid] | None = None
    # The outbox generation the cursor was issued in (``storekeeper.events.restores``): a
    # restore from a backup starts a new one, and older cursors must start over. "" = never
    # restored, which cursors issued before generations existed decode to as well.
    gen: str = Field(default="", pattern=r"^[0-9a-f]{0,32}$")


def database_kind(dialect: str) -> Literal["sqlite", "postgresql"]:
    """The ``db`` of cursors issued on a database of this dialect."""
    return "postgresql" if dialect == "postgresql" else "sqlite"


def snap(snapshot: Snapshot) -> _Snap:
    """The cursor form of an outbox snapshot."""
    return _Snap(xmin=snapshot.xmin, xmax=snapshot.xmax, xip=list(snapshot.xip))


def unsnap(value: _Snap) -> Snapshot:
    """The outbox snapshot a cursor holds."""
    return Snapshot(value.xmin, value.xmax, tuple(value.xip))


def encode(cursor: Cursor) -> str:
    """The opaque text form."""
    raw = cursor.model_dump_json(exclude_defaults=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str, *, scope: str, db: str) -> Cursor:
    """Read a cursor back; it must be ours, for ``scope`` and this kind of database."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = Cursor.model_validate_json(raw)
    except (binascii.Error, ValueError, ValidationError) as exc:
        raise InvalidCursor("malformed cursor: pull again without since") from exc
    if cursor.scope != scope:
        raise InvalidCursor(
            f"this cursor belongs to scope {cursor.scope}, not {scope}: pull again without since"
        )
    if cursor.db != db:
        raise InvalidCursor("this cursor comes from another database: pull again without since")
    return cursor
