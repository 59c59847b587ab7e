"""Tables of the reporting context: its own read models of the ledger, fed by inventory's events.

Nothing here is another context's table: ``reporting_movement`` copies each ``stock.changed``
event of a ledger movement (with the sale's value, priced when it was read), ``reporting_level``
the latest levels, and ``reporting_snapshot`` closes each period (a calendar month) so that "as
of a date" reads one snapshot plus the movements after it instead of the whole ledger;
``reporting_sales_month`` closes the period's sales alongside, so that the sales of a long period
are its whole months' sums plus the sale rows of its ends.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import Base, utcnow


class LedgerRow(Base):
    """One inventory movement as reporting keeps it; the sale value is fixed when it is read."""

    __tablename__ = "reporting_movement"
    __table_args__ = (
        # A series' movements of one reason in time: dead stock's "no sale since" per series.
        Index("ix_reporting_movement_series", "sku", "warehouse", "reason", "moved_at"),
        Index("ix_reporting_movement_moved_at", "moved_at"),
        Index("ix_reporting_movement_reason", "reason", "moved_at"),
        Index("ix_reporting_movement_ref", "ref"),
        # Sales in series order, covering what the sales and ABC reports sum: a long period
        # is one pass over it with no sort (SQLite has no hash aggregate; see service.py).
        Index(
            "ix_reporting_movement_sales",
            "reason",
            "sku",
            "warehouse",
            "currency",
            "moved_at",
            "delta",
            "sale_value_cents",
        ),
    )

    # inventory's movement id: the ledger's order, and what makes copying it idempotent.
    movement_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sku: Mapped[str] = mapped_column(String(64))
    warehouse: Mapped[str] = mapped_column(String(32))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(128))
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    # Sales only: units sold (-delta) times the unit price, in ``currency``.
    sale_value_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    moved_at: Mapped[datetime]


class LevelRow(Base):
    """The latest on-hand and reserved units of a SKU in a warehouse, as the last event said."""

    __tablename__ = "reporting_level"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(32), primary_key=True)
    on_hand: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger)


class Period(Base):
    """A closed period: every series' closing balance before ``ends_on`` is in the snapshot."""

    __tablename__ = "reporting_period"

    ends_on: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SnapshotRow(Base):
    """Closing balance of one series at the end of a period; a series absent from a closed
    period held nothing (zero units, zero value)."""

    __tablename__ = "reporting_snapshot"

    ends_on: Mapped[date] = mapped_column(
        Date, ForeignKey("reporting_period.ends_on"), primary_key=True
    )
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(32), primary_key=True)
    on_hand: Mapped[int] = mapped_column(BigInteger)
    value_cents: Mapped[int] = mapped_column(BigInteger)


class SalesMonthRow(Base):
    """Units and value sold of one series in one currency over a closed period (a month).

    The sales report and ABC sum these for the whole months of a period instead of every sale
    row (a year is 12 rows per series, not one per sale). The key leads with the series, so
    that summing a period per series walks it in order with no sort (SQLite has no hash
    aggregate). On SQLite the table is that key (``WITHOUT ROWID``): walking it in series order
    reads each row once, with no look-up of the row behind an index entry."""

    __tablename__ = "reporting_sales_month"
    __table_args__ = (
        Index("ix_reporting_sales_month_ends_on", "ends_on"),
        {"sqlite_with_rowid": False},
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(32), primary_key=True)
    # '' for sales that had no price (their value is 0 and counts in no currency).
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    ends_on: Mapped[date] = mapped_column(
        Date, ForeignKey("reporting_period.ends_on"), primary_key=True
    )
    units: Mapped[int] = mapped_column(BigInteger)
    value_cents: Mapped[int] = mapped_column(BigInteger)
