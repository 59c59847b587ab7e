"""The composition root: builds the database and the adapters once, for the app, CLI or worker.

Nothing in a context imports this module. Contexts name what they need: a route through a
FastAPI dependency (``storekeeper.api.deps.provided``), a job, sweeper or event consumer as a
keyword-only parameter (``collect_payment(args, *, db, gateways)``), which
``inject_dependencies`` fills from :meth:`Container.dependencies` when the context registers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from storekeeper import retention
from storekeeper.accounts import keys
from storekeeper.accounts.authentication import Authenticator
from storekeeper.accounts.keys import Keyring
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events.relay import Consumers
from storekeeper.imports import handlers as imports
from storekeeper.inventory import handlers as inventory_handlers
from storekeeper.notifications import handlers as notifications
from storekeeper.notifications.mail import Mailer, mailer_from_settings
from storekeeper.ordering import handlers as ordering
from storekeeper.ordering.stock import InventoryPort, LocalInventory, RemoteInventory
from storekeeper.payments.gateway import ManualGateway, PaymentGateway
from storekeeper.reporting import handlers as reporting
from storekeeper.reporting.forecast import handlers as forecast
from storekeeper.sync.snapshot import SnapshotCache
from storekeeper.tasks.background import Background, Periodic
from storekeeper.tasks.queue import JobRegistry
from storekeeper.tasks.registry import Registry
from storekeeper.telemetry import handlers as telemetry
from storekeeper.telemetry import service as telemetry_service
from storekeeper.telemetry.store import SqlStore, TelemetryStore
from storekeeper.telemetry.transports import SESSION_RECHECK_S, DeviceAuthenticator, Ingest


@dataclass
class Container:
    """Everything a request or a job needs that lives longer than one call."""

    settings: Settings
    db: Database
    signing_key: Keyring
    """The token-signing keys (``accounts.keys``): the newest signs, the older verify."""
    mailer: Mailer
    inventory: InventoryPort
    gateways: dict[str, PaymentGateway]
    telemetry_store: TelemetryStore
    authenticator: Authenticator
    consumers: Consumers = field(default_factory=Consumers)
    sync_snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    """Initial-sync snapshots this process built, per scope (``storekeeper.sync.snapshot``)."""
    jobs: JobRegistry = field(default_factory=JobRegistry)
    periodic: list[Periodic] = field(default_factory=list)

    def dependencies(self) -> dict[str, Any]:
        """What a handler may ask for, by parameter name."""
        return {
            "settings": self.settings,
            "db": self.db,
            "signing_key": self.signing_key,
            "mailer": self.mailer,
            "inventory": self.inventory,
            "gateways": self.gateways,
            "telemetry_store": self.telemetry_store,
            "telemetry_ingest": self.ingest,
            "authenticator": self.authenticator,
            "consumers": self.consumers,
            "sync_snapshots": self.sync_snapshots,
        }

    @property
    def ingest(self) -> Ingest:
        """The telemetry service's ``ingest``, bound to this container's store and settings."""
        return functools.partial(
            telemetry_service.ingest,
            db=self.db,
            store=self.telemetry_store,
            settings=self.settings,
        )

    def device_authenticator(self, *, recheck_s: float | None = None) -> DeviceAuthenticator:
        """A device-token checker for the sensor transports (each keeps its own cache)."""
        return DeviceAuthenticator(
            self.authenticator,
            recheck_s=SESSION_RECHECK_S if recheck_s is None else recheck_s,
        )

    def close(self) -> None:
        """Release connections."""
        for gateway in self.gateways.values():
            gateway.close()
        self.inventory.close()
        self.telemetry_store.close()
        self.db.dispose()


def inject_dependencies(handler: Callable[..., Any], dependencies: Mapping[str, Any]) -> Any:
    """``handler`` with its keyword-only parameters filled from ``dependencies`` by name.

    A keyword-only parameter without a default that no dependency provides is an error at
    start-up, not when the handler first runs.
    """
    wanted: dict[str, Any] = {}
    for name, parameter in inspect.signature(handler).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if name in dependencies:
            wanted[name] = dependencies[name]
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(f"{handler.__qualname__} needs {name!r}, which nothing provides")
    return functools.partial(handler, **wanted)


def payment_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    """The gateways available with these settings, by payment method name."""
    gateways: dict[str, PaymentGateway] = {"manual": ManualGateway()}
    if settings.payment_url:
        # Imported here: a manual-only server needs no httpx, tenacity or breaker.
        from storekeeper.payments.http import HttpGateway

        gateways["card"] = HttpGateway(settings)
    return gateways


def telemetry_store(settings: Settings, db: Database) -> TelemetryStore:
    """The readings store: MongoDB when ``STOREKEEPER_TELEMETRY_URL`` names one, else SQL."""
    url = settings.telemetry_url
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from storekeeper.telemetry.mongo import MongoStore

        return MongoStore(url)
    return SqlStore(db.dialect)


def inventory_port(settings: Settings, db: Database, signing_key: Keyring) -> InventoryPort:
    """Remote when ``STOREKEEPER_INVENTORY_URL`` is set, else this process's inventory."""
    if settings.inventory_url:
        return RemoteInventory(settings.inventory_url, signing_key=signing_key)
    return LocalInventory(db)


def bootstrap(
    settings: Settings | None = None,
    *,
    mailer: Mailer | None = None,
    gateways: dict[str, PaymentGateway] | None = None,
    inventory: InventoryPort | None = None,
) -> Container:
    """Wire a container from ``settings`` (read from the environment when not given).

    ``mailer``, ``gateways`` and ``inventory`` replace the configured adapters (tests pass
    fakes here, and every handler then gets the fake).
    """
    settings = settings or Settings()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    # Every key of the deployment: STOREKEEPER_SECRET_KEY ("root") and the rotated ones.
    signing_key = Keyring(settings.signing_key(), keys.loader(db), reload_s=settings.keys_reload_s)
    container = Container(
        settings=settings,
        db=db,
        signing_key=signing_key,
        mailer=mailer or mailer_from_settings(settings),
        gateways=gateways if gateways is not None else payment_gateways(settings),
        inventory=inventory or inventory_port(settings, db, signing_key),
        telemetry_store=telemetry_store(settings, db),
        authenticator=Authenticator(db, signing_key, settings.require_2fa_roles),
    )
    dependencies = container.dependencies()
    registry = Registry(
        bind=lambda handler: inject_dependencies(handler, dependencies),
        consumers=container.consumers,
        jobs=container.jobs,
        periodic=container.periodic,
    )
    # Each context subscribes its event consumers, job functions and sweepers.
    inventory_handlers.register(registry)
    ordering.register(registry, settings=settings)
    notifications.register(registry)
    telemetry.register(registry, settings=settings)
    reporting.register(registry)
    registry.every("retention.prune", settings.prune_every_s, retention.prune_periodically)
    forecast.register(registry, settings=settings)
    imports.register(registry)
    return container


def background(container: Container, *, run_jobs: bool) -> Background:
    """This process's background threads for the configured mode (not started).

    Embedded mode (no broker): events go to in-process consumers and, with ``run_jobs``, jobs
    run here. Distributed mode: events and due jobs go to the broker for the Celery workers.
    """
    settings = container.settings
    background = functools.partial(
        Background,
        db=container.db,
        settings=settings,
        consumers=container.consumers,
        jobs=container.jobs,
        periodic=container.periodic,
    )
    if not settings.broker_url:
        return background(job_threads=settings.job_threads if run_jobs else 0)
    from storekeeper.tasks.celery_app import create_celery, publisher, redelivery_sender

    app = create_celery(settings)
    publish, dispatch = publisher(app, settings)
    return background(
        publish=publish, dispatch_job=dispatch, redeliver=redelivery_sender(app, settings)
    )


def run_worker(container: Container, *, concurrency: int, loglevel: str = "INFO") -> None:
    """Run a Celery worker for ``container`` until it is told to stop (``storekeeper worker``)."""
    from storekeeper.tasks import celery_app

    app = celery_app.create_celery(container.settings)
    celery_app.bind_tasks(
        app,
        db=container.db,
        settings=container.settings,
        consumers=container.consumers,
        jobs=container.jobs,
    )
    celery_app.run_worker(
        app,
        settings=container.settings,
        leader=background(container, run_jobs=False),
        concurrency=concurrency,
        loglevel=loglevel,
    )


def mqtt_client_id(settings: Settings) -> str:
    """The configured MQTT client id, or one of this host and deployment (data dir, database)."""
    from storekeeper.telemetry.mqtt import default_client_id  # aiomqtt only when MQTT is used

    if settings.mqtt_client_id:
        return settings.mqtt_client_id
    deployment = f"{settings.data_dir.resolve()}\n{settings.effective_database_url}"
    return default_client_id(
        prefix=settings.broker_prefix, hostname=socket.gethostname(), deployment=deployment
    )


@contextlib.asynccontextmanager
async def sensor_listeners(container: Container) -> AsyncIterator[None]:
    """Serve the TCP line protocol and the MQTT subscription as the settings ask, for the block.

    ``STOREKEEPER_TELEMETRY_PORT=0`` turns the TCP listener off; an empty
    ``STOREKEEPER_MQTT_URL`` (the default) the subscriber.
    """
    from storekeeper.telemetry.mqtt import MqttOptions, MqttSubscriber, run_one_per_host
    from storekeeper.telemetry.tcp import TcpLimits, TcpTelemetryServer

    settings = container.settings
    auth = container.device_authenticator()
    tcp: TcpTelemetryServer | None = None
    if settings.telemetry_port:
        limits = TcpLimits(
            max_connections=settings.telemetry_max_connections,
            max_connections_per_address=settings.telemetry_max_connections_per_address,
            auth_timeout_s=settings.telemetry_auth_timeout_s,
            idle_timeout_s=settings.telemetry_idle_timeout_s,
        )
        tcp = TcpTelemetryServer(
            host=settings.host,
            port=settings.telemetry_port,
            ingest=container.ingest,
            auth=auth,
            limits=limits,
        )
        await tcp.start()
    subscriptions: list[asyncio.Task[None]] = []
    if settings.mqtt_url:
        client_id = mqtt_client_id(settings)
        options = MqttOptions(
            url=settings.mqtt_url,
            client_id=client_id,
            topic_prefix=settings.mqtt_topic_prefix,
            shared_group=settings.broker_prefix,
            connections=settings.mqtt_connections,
        )
        subscriber = MqttSubscriber(options, ingest=container.ingest, auth=auth)
        lock = settings.data_dir / f"mqtt-{client_id}.lock"
        subscriptions.append(asyncio.create_task(run_one_per_host(subscriber, lock)))
    try:
        yield
    finally:
        for subscription in subscriptions:
            subscription.cancel()
        await asyncio.gather(*subscriptions, return_exceptions=True)
        if tcp is not None:
            await tcp.stop()
