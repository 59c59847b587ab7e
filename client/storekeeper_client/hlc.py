"""The replica's hybrid logical clock: stamps local edits so they order after what it has seen.

Pure functions over the clock state ``(wall ms, counter)``; the replica keeps that state in its
database. A copy of the stamp format of ``storekeeper.sync.hlc``, not an import of it: the client
must run on a device without the server's packages.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_NODE = r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}"
NODE_PATTERN = re.compile(_NODE)
_STAMP = re.compile(rf"(0|[1-9][0-9]{{0,14}})-(0|[1-9][0-9]{{0,8}})-({_NODE})")
SERVER_NODE = "server"


@dataclass(frozen=True, slots=True)
class Clock:
    """The clock state: the greatest (wall ms, counter) made or seen."""

    wall_ms: int = 0
    counter: int = 0

    def tick(self, now_ms: int) -> Clock:
        """The clock after stamping a local edit at physical time ``now_ms`` (the send rule).

        A wall clock that went backwards, or lags a stamp seen in a pull, only moves the counter
        on: a stamp is always later than every stamp made or observed before.
        """
        if now_ms > self.wall_ms:
            return Clock(now_ms, 0)
        return Clock(self.wall_ms, self.counter + 1)

    def observe(self, stamp: str | None) -> Clock:
        """The clock after seeing ``stamp`` in a pulled product (the receive rule).

        ``None`` (a product never edited since sync existed) and unreadable stamps change
        nothing: the server is the authority on its own stamps, a bad one must not stop a pull.
        """
        if stamp is None:
            return self
        parsed = parse(stamp)
        if parsed is None:
            return self
        wall_ms, counter, _node = parsed
        if (wall_ms, counter) > (self.wall_ms, self.counter):
            return Clock(wall_ms, counter)
        return self

    def stamp(self, node: str) -> str:
        """The text of the current state as a stamp of ``node``."""
        return f"{self.wall_ms}-{self.counter}-{node}"


def parse(text: str) -> tuple[int, int, str] | None:
    """``(wall ms, counter, node)`` of a stamp, or None if ``text`` is not one."""
    match = _STAMP.fullmatch(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), match[3]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the device's clock."""
    return time.time_ns() // 1_000_000


def valid_node(name: str) -> bool:
    """Whether ``name`` may name a replica (and so a clock node); ``server`` is reserved."""
    return name != SERVER_NODE and NODE_PATTERN.fullmatch(name) is not None
