"""What the ordering context runs in the background: the payment saga's jobs and sweeper, and
the jobs and sweeper that settle a remote inventory's reservations."""

from __future__ import annotations

from storekeeper.config import Settings
from storekeeper.ordering import orphans, saga, service, stock
from storekeeper.tasks.registry import Registry


def register(registry: Registry, *, settings: Settings) -> None:
    """Add the saga's jobs, its sweeper and the reservation-settling jobs."""
    registry.job(service.COLLECT_PAYMENT, saga.collect_payment)
    registry.job(service.REFUND_PAYMENT, saga.refund_payment)
    registry.job(service.CAPTURE_PAYMENT, saga.capture_payment)
    registry.job(stock.RELEASE_STOCK, stock.release_stock)
    registry.job(stock.FULFIL_STOCK, stock.fulfil_stock)
    registry.every(
        "ordering.sweep_stale_payments",
        # Often enough that an order never waits much past its deadline.
        max(0.5, min(5.0, settings.payment_deadline_s / 4)),
        saga.sweep_stale_payments,
    )
    registry.every(
        "ordering.sweep_orphan_reservations",
        max(1.0, min(60.0, settings.reservation_grace_s / 4)),
        orphans.sweep_orphan_reservations,
    )
