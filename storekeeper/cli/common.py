"""What every command module shares: the console, the schema, and one command's container."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from storekeeper.config import Settings

if TYPE_CHECKING:
    from storekeeper.bootstrap import Container

console = Console()


def migrate_schema(settings: Settings) -> None:
    """Run the Alembic migrations against the configured database, creating the data dir."""
    from storekeeper import migrations

    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(url)


def schema_revision(settings: Settings) -> str | None:
    """The Alembic revision the configured database is at (None before the first migration)."""
    from storekeeper import migrations

    return migrations.current_revision(settings.effective_database_url)


def operator() -> str:
    """Who runs this command, for the audit log: the login name and the host (``ana@ops-1``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container running as an unnamed uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def booted(settings: Settings | None = None) -> Iterator[Container]:
    """The composition root for one command, closed after it.

    A user's error raised inside (a ``DomainError``: unknown id, a state that forbids the
    action) is printed as ``refused: …`` and ends the command with status 1 — never a traceback.
    The container is bootstrapped lazily so that ``storekeeper --help`` stays fast.
    """
    from storekeeper.bootstrap import bootstrap
    from storekeeper.errors import DomainError

    container = bootstrap(settings or Settings())
    try:
        yield container
    except DomainError as exc:
        console.print(f"[red]refused[/red]: {exc.detail}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        container.close()
