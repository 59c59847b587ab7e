"""A ledger with a history for forecast tests: real movements through the inventory service,
dated back over ``DAYS`` days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, func, select, update

from storekeeper.bootstrap import Container
from storekeeper.events.relay import local_delivery, relay_once
from storekeeper.inventory import ledger
from storekeeper.inventory.models import Movement
from storekeeper.reporting import readmodel
from storekeeper.reporting.models import LedgerRow

TODAY = date(2026, 6, 1)
DAYS = 90
SINCE = TODAY - timedelta(days=DAYS)


def _move(
    container: Container, day: int, sku: str, warehouse: str, delta: int, reason: str
) -> None:
    """One movement through the inventory service, dated ``day`` days after ``SINCE`` (noon UTC).

    The service stamps movements with the current time; a test of history moves that stamp
    back afterwards, which is the only write here that bypasses the service.
    """
    when = datetime.combine(SINCE + timedelta(days=day), time(12), tzinfo=UTC)
    with container.db.transaction() as session:
        ledger.record_movement(
            session,
            sku=sku,
            warehouse=warehouse,
            delta=delta,
            reason=reason,
            ref=None,
            actor_id=None,
        )
        last = session.scalar(select(func.max(Movement.id)))
        session.execute(update(Movement).where(Movement.id == last).values(created_at=when))


def build_ledger(container: Container) -> None:
    """TEA at BER sells 3 a day but is sold out on days 10 to 19; MUG at HAM sells 2 on every
    fifth day and is down to 1 unit at the end (below its reorder point).

    Reporting's read model is then made from the back-dated ledger the way an installation gets
    a ledger that predates it, by ``readmodel.rebuild``: first every event is delivered (the
    copies it made carry today's date, as the events were recorded before the dating back),
    then those copies are dropped and rebuilt from the ledger."""
    for day in range(DAYS):
        if day in (0, 20, 40):
            _move(container, day, "TEA", "BER", {0: 30, 20: 60, 40: 200}[day], "receipt")
        if not 10 <= day < 20:
            _move(container, day, "TEA", "BER", -3, "sale")
    _move(container, 0, "MUG", "HAM", 37, "receipt")
    for day in range(0, DAYS, 5):
        _move(container, day, "MUG", "HAM", -2, "sale")
    while relay_once(container.db, local_delivery(container.db, container.consumers)):
        pass  # an app's own relay may be delivering too: the consumers' inbox makes that safe
    with container.db.transaction() as session:
        session.execute(delete(LedgerRow))
    readmodel.rebuild(container.db)
