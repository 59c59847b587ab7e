"""What the client hands back: local views, queued mutations, verdicts, sync summaries, errors.

Plain frozen dataclasses, so a caller can show them, compare them and keep them after the
replica is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class SyncError(Exception):
    """The server refused a request (``status``, ``code``); the queue and copy are unharmed."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Offline(SyncError):
    """The server could not be reached; what was not acknowledged stays queued for next time."""


@dataclass(frozen=True, slots=True)
class Stock:
    """What the user sees of one SKU's stock: the server copy plus pending local changes."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    pending: int
    """Queued mutations of this SKU not yet acknowledged by the server."""


@dataclass(frozen=True, slots=True)
class Mutation:
    """A queued local change, as it will be pushed."""

    id: str
    type: str
    data: dict[str, Any]
    hlc: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The server's answer to a pushed mutation (a ``duplicate`` is shown as its original)."""

    id: str
    type: str
    data: dict[str, Any]
    status: str
    """applied, conflict or rejected."""
    detail: dict[str, Any]

    @property
    def message(self) -> str:
        """The server's explanation, for people."""
        return str(self.detail.get("message", ""))

    @property
    def code(self) -> str:
        """The stable code of the verdict, for programs."""
        return str(self.detail.get("code", ""))


@dataclass(slots=True)
class SyncSummary:
    """What one ``sync()`` did."""

    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    rejected: int = 0
    resynced: bool = False
    verdicts: list[Verdict] = field(default_factory=list)
    snapshot_rows: int = 0
    """Rows (products + stock rows) that came in a snapshot rather than pull pages (part of
    ``pulled``): non-zero when this sync started the copy from nothing."""
