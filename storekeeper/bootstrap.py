"""The composition root: builds the database and the adapters once, for the app, CLI or worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events.relay import Consumers
from storekeeper.notifications.mail import Mailer, mailer_from_settings
from storekeeper.payments.gateway import PaymentGateway, configured_gateways
from storekeeper.tasks.background import Background, Periodic
from storekeeper.tasks.queue import JobRegistry

if TYPE_CHECKING:
    from storekeeper.ordering.stock import InventoryPort
    from storekeeper.telemetry.store import TelemetryStore


@dataclass
class Container:
    """Everything a request or a job needs that lives longer than one call."""

    settings: Settings
    db: Database
    signing_key: str
    mailer: Mailer
    inventory: InventoryPort
    payment_gateways: dict[str, PaymentGateway] = field(default_factory=dict)
    consumers: Consumers = field(default_factory=Consumers)
    jobs: JobRegistry = field(default_factory=JobRegistry)
    periodic: list[Periodic] = field(default_factory=list)
    # Built on first use by storekeeper.telemetry.service.store_for (SQL or MongoDB).
    telemetry_store: TelemetryStore | None = None

    def close(self) -> None:
        """Release connections."""
        for gateway in self.payment_gateways.values():
            gateway.close()
        self.inventory.close()
        if self.telemetry_store is not None:
            self.telemetry_store.close()
        self.db.dispose()


def bootstrap(settings: Settings | None = None) -> Container:
    """Wire a container from ``settings`` (read from the environment when not given)."""
    from storekeeper.notifications import handlers as notifications
    from storekeeper.ordering import saga, stock
    from storekeeper.telemetry import handlers as telemetry

    settings = settings or Settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    signing_key = settings.signing_key()
    container = Container(
        settings=settings,
        db=db,
        signing_key=signing_key,
        payment_gateways=configured_gateways(settings),
        mailer=mailer_from_settings(settings),
        inventory=stock.inventory_from(settings.inventory_url, db=db, signing_key=signing_key),
    )
    # Each context subscribes its event consumers, job functions and sweepers.
    saga.register(container)
    stock.register(container)
    notifications.register(container)
    telemetry.register(container)
    return container


def background(container: Container, *, run_jobs: bool) -> Background:
    """This process's background threads for the configured mode (not started).

    Embedded mode (no broker): events go to in-process consumers and, with ``run_jobs``, jobs
    run here. Distributed mode: events and due jobs go to the broker for the Celery workers.
    """
    settings = container.settings
    if not settings.broker_url:
        return Background(container, job_threads=settings.job_threads if run_jobs else 0)
    from storekeeper.tasks.celery_app import create_celery, publisher

    publish, dispatch = publisher(create_celery(settings), settings)
    return Background(container, publish=publish, dispatch_job=dispatch)
