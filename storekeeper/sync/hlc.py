"""Hybrid logical clock stamps: the order of field edits made on and off line.

A stamp is ``"<wall ms>-<counter>-<node>"`` and compares as the tuple (wall ms, counter, server
first, node): the server wins a tie with any replica. A pure value module, used by the catalog
to stamp its own edits and by sync to merge offline ones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

SERVER_NODE = "server"
"""The node name of stamps the server makes; replicas may not use it."""

NODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}"
_STAMP = re.compile(rf"(0|[1-9][0-9]{{0,14}})-(0|[1-9][0-9]{{0,8}})-({NODE_PATTERN})")


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Hlc:
    """One stamp: physical milliseconds, a logical counter, the node that made it."""

    wall_ms: int
    counter: int
    node: str

    @classmethod
    def parse(cls, text: str) -> Hlc:
        """Read ``"<wall ms>-<counter>-<node>"``; raises ValueError if it is not one."""
        match = _STAMP.fullmatch(text)
        if match is None:
            raise ValueError(
                f"not a hybrid logical clock stamp: {text[:100]!r}; expected "
                '"<wall ms>-<counter>-<node>", e.g. "1767225600000-0-replica-1"'
            )
        return cls(int(match[1]), int(match[2]), match[3])

    def _key(self) -> tuple[int, int, bool, str]:
        return (self.wall_ms, self.counter, self.node == SERVER_NODE, self.node)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Hlc):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.wall_ms}-{self.counter}-{self.node}"


def newest(stamps: Iterable[str]) -> Hlc | None:
    """The greatest of ``stamps`` (stored strings), or None if there are none."""
    return max((Hlc.parse(s) for s in stamps), default=None)


def server_stamp(now_ms: int, seen: Iterable[str]) -> Hlc:
    """A server stamp later than every stamp in ``seen``: the HLC send rule.

    Physical time if it is ahead of everything seen; otherwise the newest seen wall time with
    the counter moved on, so a server edit never loses to what it overwrites, whatever the
    clocks of the replicas that wrote before.
    """
    latest = newest(seen)
    if latest is None or now_ms > latest.wall_ms:
        return Hlc(now_ms, 0, SERVER_NODE)
    return Hlc(latest.wall_ms, latest.counter + 1, SERVER_NODE)
