"""``storekeeper``: serve, migrate, load demo data, manage users, show settings."""

from __future__ import annotations

import json
import os
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings

app = typer.Typer(help="Storekeeper: inventory and orders.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
events_app = typer.Typer(help="Inspect the event outbox.", no_args_is_help=True)
app.add_typer(events_app, name="events")
jobs_app = typer.Typer(help="Inspect background jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
console = Console()


def _migrate(settings: Settings) -> None:
    from storekeeper import migrations

    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(url)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    settings = Settings()
    _migrate(settings)
    console.print(f"[green]database at revision[/green] {_revision(settings)}")


def _revision(settings: Settings) -> str | None:
    from storekeeper import migrations

    return migrations.current_revision(settings.effective_database_url)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [STOREKEEPER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [STOREKEEPER_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    auto_migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Migrate before serving")
    ] = True,
    only: Annotated[
        str | None,
        typer.Option(
            help="Serve only these contexts, comma-separated (accounts, catalog, inventory, "
            "ordering, sync, telemetry); see docs/scaling.md [STOREKEEPER_ONLY]",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from storekeeper.observability import exposition, logs

    if only is not None:
        # The app factory runs in uvicorn's process(es) and reads the environment.
        os.environ["STOREKEEPER_ONLY"] = json.dumps([c.strip() for c in only.split(",")])
    settings = Settings()
    log_config = logs.configure()  # uvicorn applies it again in each worker process
    if workers > 1 or exposition.multiprocess_dir():
        # Workers share their metrics through files; the variable must be set before any
        # worker imports prometheus_client (docs/observability.md).
        metrics_dir = (exposition.multiprocess_dir() or settings.data_dir / "metrics").resolve()
        exposition.reset_multiprocess_dir(metrics_dir)
        os.environ[exposition.MULTIPROC_ENV] = str(metrics_dir)
    # uvicorn raises SIGTERM again once its graceful shutdown is done; that shutdown was clean,
    # so leave with status 0 (what supervisors expect) instead of dying of the signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if auto_migrate:
        _migrate(settings)
    host, port = host or settings.host, port or settings.port
    console.print(f"Storekeeper on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "storekeeper.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        log_config=log_config,
        # On SIGTERM: stop accepting, let requests in flight finish for this long.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


@app.command()
def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing unless the database has no users yet")
    ] = False,
    products: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
) -> None:
    """Load demo warehouses, products, stock and one user per role."""
    from storekeeper import demo as demo_data
    from storekeeper.bootstrap import bootstrap

    settings = Settings()
    _migrate(settings)
    container = bootstrap(settings)
    try:
        if not demo_data.is_empty(container.db):
            if if_empty:
                console.print("database has data already: demo data not loaded")
                return
            console.print("[red]database is not empty[/red]: demo data goes into a fresh one")
            raise typer.Exit(1)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("loading demo data", total=products)
            summary = demo_data.load(
                container.db, products=products, progress=lambda n: bar.advance(task, n)
            )
    finally:
        container.close()
    console.print(
        f"[green]demo data loaded[/green]: {summary.products} products, "
        f"{summary.warehouses} warehouses, {summary.users} users"
    )
    table = Table("e-mail", "password", "role", title="Demo accounts")
    for email, password, role in demo_data.DEMO_USERS:
        table.add_row(email, password, role.value)
    console.print(table)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="E-mail address, used to sign in")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[Role, typer.Option(help="admin, manager, clerk, customer or device")],
) -> None:
    """Create a user in the configured database."""
    from pydantic import ValidationError

    from storekeeper.accounts import users as accounts_users
    from storekeeper.accounts.schemas import UserCreate
    from storekeeper.bootstrap import bootstrap
    from storekeeper.errors import DomainError

    try:
        body = UserCreate(email=email, password=password, role=role)
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]{'.'.join(map(str, error['loc']))}[/red]: {error['msg']}")
        raise typer.Exit(2) from exc
    settings = Settings()
    _migrate(settings)
    container = bootstrap(settings)
    try:
        with container.db.transaction() as session:
            user = accounts_users.create_user(
                session, email=body.email, password=body.password, role=body.role
            )
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    finally:
        container.close()
    console.print(f"created {user.role} {user.email} ({user.id})")


@events_app.command("status")
def events_status() -> None:
    """Show outbox lag: events waiting for the relay, delivered, and the oldest waiting one."""
    from storekeeper.bootstrap import bootstrap
    from storekeeper.events.relay import processed_by_consumer, status

    container = bootstrap(Settings())
    try:
        current = status(container.db)
        processed = processed_by_consumer(container.db)
    finally:
        container.close()
    table = Table("measure", "value", title="Event outbox")
    table.add_row("pending (not yet delivered)", str(current.pending))
    table.add_row("delivered", str(current.published))
    table.add_row("oldest pending event", str(current.oldest_pending_at or "-"))
    table.add_row("lag (seconds)", f"{current.lag_s:.1f}")
    table.add_row("last delivery", str(current.last_published_at or "-"))
    for consumer, count in sorted(processed.items()):
        table.add_row(f"processed by {consumer}", str(count))
    console.print(table)


@jobs_app.command("status")
def jobs_status() -> None:
    """Show background jobs per state, the oldest waiting one and the latest failures."""
    from storekeeper.bootstrap import bootstrap
    from storekeeper.tasks.queue import status

    container = bootstrap(Settings())
    try:
        current = status(container.db)
    finally:
        container.close()
    table = Table("state", "jobs", title="Background jobs")
    for state in ("queued", "running", "done", "failed"):
        table.add_row(state, str(current.counts.get(state, 0)))
    table.add_row("oldest queued job", str(current.oldest_queued_at or "-"))
    console.print(table)
    for job_id, name, error in current.failed_recent:
        console.print(f"[red]failed[/red] job {job_id} {name}: {error}", highlight=False)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once")] = 4,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Serve /metrics on this port, 0 = off [STOREKEEPER_METRICS_PORT]"
        ),
    ] = None,
) -> None:
    """Run a Celery worker (distributed mode): delivers events and runs jobs from the broker.

    Needs STOREKEEPER_BROKER_URL (amqp://… or redis://…). In embedded mode `serve` runs the
    jobs itself and no worker is needed.
    """
    from storekeeper.bootstrap import bootstrap
    from storekeeper.observability import exposition, logs
    from storekeeper.tasks.celery_app import run_worker

    settings = Settings()
    logs.configure_celery()
    if not settings.broker_url:
        console.print(
            "[red]storekeeper worker needs STOREKEEPER_BROKER_URL[/red] (amqp://… or redis://…); "
            "without a broker, `storekeeper serve` runs jobs in-process."
        )
        raise typer.Exit(2)
    container = bootstrap(settings)
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port:
        exposition.serve_in_background(container.db, host=settings.host, port=port)
    try:
        run_worker(container, concurrency=concurrency)
    finally:
        container.close()


@app.command("grpc")
def grpc_serve(
    host: Annotated[str | None, typer.Option(help="Listen address [STOREKEEPER_GRPC_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [STOREKEEPER_GRPC_PORT]")] = None,
    threads: Annotated[int, typer.Option(min=2, max=256, help="Calls served at once")] = 16,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds calls in flight may finish on SIGTERM")
    ] = 5.0,
) -> None:
    """Serve the gRPC inventory service (docs/grpc.md).

    Serves only: the outbox relay and jobs run in `serve` or `worker`. Run `migrate` first.
    """
    from storekeeper.bootstrap import bootstrap
    from storekeeper.grpc import server
    from storekeeper.observability import logs

    settings = Settings()
    logs.configure()
    host, port = host or settings.grpc_host, port or settings.grpc_port
    container = bootstrap(settings)
    try:
        console.print(f"Storekeeper gRPC inventory service on {host}:{port}")
        server.serve(container, host=host, port=port, threads=threads, grace_s=grace)
    except OSError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        container.close()


@app.command("payment-sim")
def payment_sim(
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port")] = 8099,
    latency_ms: Annotated[int, typer.Option(min=0, help="Delay before each /v1 answer")] = 0,
    jitter_ms: Annotated[int, typer.Option(min=0, help="Extra random delay, up to this")] = 0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of /v1 calls answered 503")
    ] = 0.0,
    decline_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of authorizations declined")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault and decline draws")] = None,
    outage: Annotated[
        bool, typer.Option("--outage/--no-outage", help="Start with every /v1 call failing")
    ] = False,
) -> None:
    """Run a payment gateway simulator with fault injection (point STOREKEEPER_PAYMENT_URL at it).

    State is kept in memory. Change faults while it runs: see docs/payments.md.
    """
    from storekeeper.payments import sim

    config = sim.SimConfig(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        failure_rate=failure_rate,
        decline_rate=decline_rate,
        seed=seed,
        outage=outage,
    )
    console.print(f"payment simulator on http://{host}:{port}  (stats: /_sim/stats)")
    sim.serve_sim(host, port, config)


@app.command("config")
def show_config() -> None:
    """Print the effective settings, secrets masked."""
    table = Table("setting", "value", title="Storekeeper settings")
    for name, value in Settings().masked().items():
        table.add_row(name, str(value))
    console.print(table)


# --- sync: a replica on this machine (storekeeper.client) ---------------------------------------

sync_app = typer.Typer(
    help="Work with an offline replica file: sync it, read it, queue changes offline.",
    no_args_is_help=True,
)
app.add_typer(sync_app, name="sync")
ReplicaPath = Annotated[str, typer.Option("--replica", help="The replica's SQLite file")]
ScopeOption = Annotated[
    str | None,
    typer.Option(help="warehouse:CODE; needed only when the replica file is new"),
]


def _refused(exc: ValueError) -> typer.Exit:
    """Print why a replica file cannot be opened or a change queued; the exit to raise."""
    Console(stderr=True).print(f"[red]{exc}[/red]", highlight=False)
    return typer.Exit(2)


@sync_app.command("run")
def sync_run(
    replica: ReplicaPath,
    server: Annotated[str, typer.Option(help="The API's base URL, e.g. http://host:8000")],
    token: Annotated[str, typer.Option(help="Bearer token of a clerk, manager or device")],
    scope: ScopeOption = None,
) -> None:
    """Push the replica's queued changes, then pull until it is up to date."""
    from storekeeper.client import Offline, Replica, SyncError

    try:
        opened = Replica(replica, server, token, scope=scope)
    except ValueError as exc:
        raise _refused(exc) from exc
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("pulling", total=None)

            def show(rows: int) -> None:
                progress.update(task, completed=rows, description=f"pulled {rows} rows")

            summary = opened.sync(on_progress=show)
    except Offline as exc:
        left = len(opened.pending())
        opened.close()
        console.print(f"[red]offline[/red]: {exc}; {left} change(s) stay queued")
        raise typer.Exit(1) from exc
    except SyncError as exc:
        opened.close()
        console.print(f"[red]sync failed[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(
        f"pushed {summary.pushed} ({summary.conflicts} conflict(s), {summary.rejected} "
        f"rejected), pulled {summary.pulled} rows" + (", resynced" if summary.resynced else "")
    )
    for verdict in summary.verdicts:
        if verdict.status != "applied":
            console.print(
                f"  {verdict.status} {verdict.type} {verdict.data.get('sku')}: {verdict.message}",
                highlight=False,
            )
    opened.close()


@sync_app.command("stock")
def sync_stock(replica: ReplicaPath, sku: str) -> None:
    """Show a SKU's stock as the replica sees it, queued changes included (offline)."""
    from storekeeper.client import Replica

    try:
        opened = Replica(replica)
    except ValueError as exc:
        raise _refused(exc) from exc
    level = opened.stock(sku)
    opened.close()
    if level is None:
        console.print(f"[red]unknown SKU[/red] {sku}")
        raise typer.Exit(1)
    table = Table("sku", "on hand", "reserved", "available", "pending changes")
    table.add_row(
        sku, str(level.on_hand), str(level.reserved), str(level.available), str(level.pending)
    )
    console.print(table)


def _queue(replica: str, scope: str | None, kind: str, sku: str, n: int) -> None:
    from storekeeper.client import Replica

    try:
        opened = Replica(replica, scope=scope)
    except ValueError as exc:
        raise _refused(exc) from exc
    write = {"receive": opened.receive, "count": opened.count, "sell": opened.sell}[kind]
    try:
        mutation_id = write(sku, n)
    except ValueError as exc:
        raise _refused(exc) from exc
    finally:
        opened.close()
    console.print(f"queued {kind} {sku} {n} ({mutation_id})")


@sync_app.command("receive")
def sync_receive(replica: ReplicaPath, sku: str, qty: int, scope: ScopeOption = None) -> None:
    """Queue a receipt of QTY units (offline)."""
    _queue(replica, scope, "receive", sku, qty)


@sync_app.command("count")
def sync_count(replica: ReplicaPath, sku: str, counted: int, scope: ScopeOption = None) -> None:
    """Queue a physical count of COUNTED units, against the on-hand shown now (offline)."""
    _queue(replica, scope, "count", sku, counted)


@sync_app.command("sell")
def sync_sell(replica: ReplicaPath, sku: str, qty: int, scope: ScopeOption = None) -> None:
    """Queue a sale of QTY units (offline)."""
    _queue(replica, scope, "sell", sku, qty)


@sync_app.command("pending")
def sync_pending(replica: ReplicaPath) -> None:
    """List the changes queued in the replica and not yet acknowledged by the server."""
    from storekeeper.client import Replica

    try:
        opened = Replica(replica)
    except ValueError as exc:
        raise _refused(exc) from exc
    queued = opened.pending()
    opened.close()
    table = Table("id", "type", "data", "hlc", title=f"{len(queued)} pending change(s)")
    for mutation in queued:
        table.add_row(mutation.id, mutation.type, json.dumps(mutation.data), mutation.hlc)
    console.print(table)


def main() -> None:
    """Console-script entry point."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except OperationalError as exc:
        Console(stderr=True).print(
            f"[red]cannot reach the database[/red]: {exc.orig}", markup=True, highlight=False
        )
        raise SystemExit(1) from exc
    except ValidationError as exc:
        # Every command reads Settings first: a bad setting is the operator's to fix, so name
        # it plainly instead of showing a traceback.
        errors = Console(stderr=True)
        errors.print(f"[red]invalid {exc.title.lower()}[/red]")
        for error in exc.errors():
            where = ".".join(map(str, error["loc"]))
            errors.print(f"{where + ': ' if where else ''}{error['msg']}", markup=False)
        raise SystemExit(2) from exc
