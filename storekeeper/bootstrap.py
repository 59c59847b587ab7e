"""The composition root: builds the database and the adapters once, for the app, CLI or worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events.relay import Consumers
from storekeeper.payments.gateway import PaymentGateway, configured_gateways


@dataclass
class Container:
    """Everything a request or a job needs that lives longer than one call."""

    settings: Settings
    db: Database
    signing_key: str
    payment_gateways: dict[str, PaymentGateway] = field(default_factory=dict)
    consumers: Consumers = field(default_factory=Consumers)

    def close(self) -> None:
        """Release connections."""
        self.db.dispose()


def bootstrap(settings: Settings | None = None) -> Container:
    """Wire a container from ``settings`` (read from the environment when not given)."""
    settings = settings or Settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    return Container(
        settings=settings,
        db=db,
        signing_key=settings.signing_key(),
        payment_gateways=configured_gateways(settings),
    )
