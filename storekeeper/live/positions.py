"""Resume positions: the text a live client gets as each event's id and sends back to resume.

A position says which outbox rows a client has had, in the terms of ``outbox.read_feed``: the
batch of rows committed between two snapshots (``since``, ``until``] it was reading, and the
last row of that batch it got (``after``). Resuming reads the rest of that batch, then every
row committed after ``until``: no gap and no duplicate, even on PostgreSQL where outbox ids may
commit out of order.

On SQLite, id order is commit order, so a position is simply the outbox id of the last event
(``"42"``). On PostgreSQL it needs the snapshots too: ``<id>.<xid>.<since>.<until>``, each
snapshot written ``xmin-xmax[-xip_xip…]`` (only characters that need no escaping in a URL).
Clients treat both as opaque.

A database restored from a backup (``storekeeper.events.restores``) reuses ids and, on
PostgreSQL, transaction ids for a new history: its positions carry the restore's generation in
front (``r<generation>.<position>``), and a position of another generation is not resumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storekeeper.events.outbox import Snapshot

MAX_LENGTH = 8192  # snapshots list in-progress transactions: ~700 fit, far above max_connections
_MAX_ID = 2**63
_SQLITE = re.compile(r"[0-9]{1,19}")
_POSTGRES = re.compile(r"[0-9]{1,19}\.[0-9]{1,19}\.[0-9_-]+\.[0-9_-]+")
_GENERATION = re.compile(r"r([0-9a-f]{1,32})\.")


@dataclass(frozen=True, slots=True)
class Position:
    """A point in the outbox feed: inside the batch (``since``, ``until``], after row ``after``.

    ``after`` is the last row's (order key, outbox id), or None at the start of the batch.
    """

    since: Snapshot
    until: Snapshot
    after: tuple[int, int] | None = None

    @classmethod
    def at(cls, snapshot: Snapshot) -> Position:
        """Everything committed by ``snapshot`` had, nothing after."""
        return cls(snapshot, snapshot)


def covers(later: Snapshot, earlier: Snapshot) -> bool:
    """Whether every write ``earlier`` sees has also committed in ``later``."""
    return earlier.xmax <= later.xmax and all(
        x in earlier.xip for x in later.xip if x < earlier.xmax
    )


def encode(position: Position, *, dialect: str, generation: str = "") -> str:
    """The text form of ``position`` for a database of ``dialect`` in restore ``generation``."""
    text = _encode(position, dialect=dialect)
    return f"r{generation}.{text}" if generation else text


def generation_of(text: str) -> str:
    """The restore generation a position was issued in ("" for a never-restored database)."""
    found = _GENERATION.match(text)
    return found.group(1) if found else ""


def _encode(position: Position, *, dialect: str) -> str:
    if dialect != "postgresql":
        # Ids commit in order: "every id after the last one had" says it all.
        return str(position.after[1] if position.after else position.until.xmax - 1)
    key, row = position.after or (0, 0)
    return f"{row}.{key}.{_snap(position.since)}.{_snap(position.until)}"


def decode(text: str, *, dialect: str) -> Position | None:
    """Read a position back; None when it is not one this kind of database issues."""
    if len(text) > MAX_LENGTH:
        return None
    found = _GENERATION.match(text)
    if found:
        text = text[found.end() :]
    if dialect != "postgresql":
        if not _SQLITE.fullmatch(text) or int(text) >= _MAX_ID - 1:
            return None
        return Position.at(Snapshot(int(text) + 1, int(text) + 1))
    if not _POSTGRES.fullmatch(text):
        return None
    row, key, since, until = text.split(".")
    start, end = _unsnap(since), _unsnap(until)
    if start is None or end is None or int(row) >= _MAX_ID or int(key) >= _MAX_ID:
        return None
    after = (int(key), int(row)) if int(row) else None
    return Position(start, end, after)


def _snap(snapshot: Snapshot) -> str:
    parts = [str(snapshot.xmin), str(snapshot.xmax)]
    if snapshot.xip:
        parts.append("_".join(str(x) for x in snapshot.xip))
    return "-".join(parts)


def _unsnap(text: str) -> Snapshot | None:
    parts = text.split("-")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts[:2]):
        return None
    xip_text = parts[2].split("_") if len(parts) == 3 else []
    if not all(x.isdigit() for x in xip_text):
        return None
    xmin, xmax, xip = int(parts[0]), int(parts[1]), tuple(int(x) for x in xip_text)
    if not xmin <= xmax < _MAX_ID or any(not xmin <= x < xmax for x in xip):
        return None
    return Snapshot(xmin, xmax, xip)
