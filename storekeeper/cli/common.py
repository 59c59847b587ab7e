"""What every command module shares: the console and bringing the schema up to date."""

from __future__ import annotations

import getpass
import socket

from rich.console import Console

from storekeeper.config import Settings

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
