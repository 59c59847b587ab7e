"""Row ids from untrusted text (cursors, query parameters): ASCII digits within BIGINT.

``str.isdigit`` also accepts digits such as ``²`` that ``int`` refuses, and both databases
refuse integers beyond a signed 64-bit column (SQLite with an OverflowError in the driver), so
every id a client names goes through :func:`parse_id` or is bounded by :data:`MAX_ID`.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1
"""The largest value of a BIGINT / SQLite INTEGER column."""


def parse_id(text: str, *, maximum: int = MAX_ID) -> int | None:
    """``text`` as a non-negative integer of at most ``maximum``, or None if it is not one."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None
