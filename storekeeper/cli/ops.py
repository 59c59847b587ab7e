"""Operating an installation: demo data, users, the outbox and job queues, settings."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from storekeeper.accounts.domain import Role
from storekeeper.cli.common import booted, console, migrate_schema
from storekeeper.config import Settings

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
events_app = typer.Typer(
    help="Inspect the event outbox; retry or skip parked events.", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Inspect background jobs; retry or discard failed ones.", no_args_is_help=True
)


def demo(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing unless the database has no users yet")
    ] = False,
    products: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    force: Annotated[
        bool,
        typer.Option("--force", help="Load even when STOREKEEPER_ENV=production (not advised)"),
    ] = False,
) -> None:
    """Load demo warehouses, products, stock and one user per role."""
    from storekeeper import demo as demo_data
    from storekeeper.bootstrap import bootstrap

    settings = Settings()
    if settings.env == "production":
        # The demo accounts' passwords are published (README, this command's output): in
        # production they are open doors. `make run` passes --if-empty: skip, do not fail.
        if not force:
            console.print(
                "[red]STOREKEEPER_ENV=production[/red]: demo data not loaded; its accounts have "
                "published passwords (--force loads it anyway)"
            )
            raise typer.Exit(0 if if_empty else 1)
        Console(stderr=True).print(
            "[yellow]warning[/yellow]: loading demo accounts with published passwords into a "
            "production installation; disable them or change their passwords"
        )
    migrate_schema(settings)
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
    migrate_schema(settings)
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
    """Show outbox lag, what each consumer processed, and its parked and retried events."""
    from storekeeper.events.failures import open_by_consumer
    from storekeeper.events.relay import processed_by_consumer, status

    with booted() as container:
        current = status(container.db)
        processed = processed_by_consumer(container.db)
        with container.db.reading() as session:
            failing = open_by_consumer(session.connection())
    table = Table("measure", "value", title="Event outbox")
    table.add_row("pending (not yet delivered)", str(current.pending))
    table.add_row("delivered", str(current.published))
    table.add_row("oldest pending event", str(current.oldest_pending_at or "-"))
    table.add_row("lag (seconds)", f"{current.lag_s:.1f}")
    table.add_row("last delivery", str(current.last_published_at or "-"))
    for consumer, count in sorted(processed.items()):
        table.add_row(f"processed by {consumer}", str(count))
    for consumer, counts in sorted(failing.items()):
        table.add_row(f"parked for {consumer}", str(counts.parked))
        table.add_row(f"being retried for {consumer}", str(counts.retrying))
    console.print(table)
    if any(counts.parked for counts in failing.values()):
        console.print("parked events wait for you: storekeeper events parked")


@jobs_app.command("status")
def jobs_status() -> None:
    """Show background jobs per state, the oldest waiting one and the latest failures."""
    from storekeeper.tasks.queue import status

    with booted() as container:
        current = status(container.db)
    table = Table("state", "jobs", title="Background jobs")
    for state in ("queued", "running", "done", "failed", "discarded"):
        table.add_row(state, str(current.counts.get(state, 0)))
    table.add_row("oldest queued job", str(current.oldest_queued_at or "-"))
    console.print(table)
    for job_id, name, error in current.failed_recent:
        console.print(f"[red]failed[/red] job {job_id} {name}: {error}", highlight=False)


def show_config() -> None:
    """Print the effective settings, secrets masked."""
    table = Table("setting", "value", title="Storekeeper settings")
    for name, value in Settings().masked().items():
        table.add_row(name, str(value))
    console.print(table)
