"""Count a business event only once its transaction commits.

Services run inside a unit of work that may still roll back (a conflict, an error later in the
request); a counter bumped there would count orders that never existed. ``count_on_commit``
parks the increment on the session and one listener applies it after the commit.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "storekeeper.metrics.pending"


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


def count_on_commit(session: Session, counter: _Incrementable, amount: float = 1) -> None:
    """Add ``amount`` to ``counter`` when ``session``'s transaction commits; never on rollback."""
    if not event.contains(Session, "after_commit", _apply):
        # Registered on first use rather than at import (house rule 7); once, for every session.
        event.listen(Session, "after_commit", _apply)
        event.listen(Session, "after_rollback", _discard)
    session.info.setdefault(_KEY, []).append((counter, amount))


def _apply(session: Session) -> None:
    for counter, amount in session.info.pop(_KEY, ()):
        counter.inc(amount)


def _discard(session: Session) -> None:
    session.info.pop(_KEY, None)
