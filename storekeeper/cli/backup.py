"""``storekeeper backup`` and ``storekeeper restore``: a backup taken live, restored into an empty
place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from storekeeper.cli.common import console
from storekeeper.config import Settings


def backup(
    to: Annotated[Path, typer.Option("--to", help="The backup directory to create")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a backup already in that directory")
    ] = False,
) -> None:
    """Back up the database while the server runs: a dump, its manifest and checksum."""
    from storekeeper.backup import run
    from storekeeper.backup.manifest import BackupError

    settings = Settings()
    try:
        with _bar() as bar:
            task = bar.add_task("backing up", total=None)
            manifest = run.backup(
                settings,
                to=to,
                force=force,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except BackupError as exc:
        console.print(f"[red]backup refused[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    table = Table("", "", title=f"Backup in {to}", show_header=False)
    table.add_row("database", manifest.backend)
    table.add_row("schema revision", str(manifest.revision))
    table.add_row("backup point (outbox id)", str(manifest.outbox_max_id))
    table.add_row("events not yet delivered", str(manifest.pending_events))
    for name, rows in manifest.counts.items():
        table.add_row(name, str(rows))
    table.add_row(manifest.dump, f"{manifest.size_bytes:,} bytes, sha256 {manifest.sha256[:16]}…")
    console.print(table)


def restore(
    source: Annotated[Path, typer.Option("--from", help="A backup directory (storekeeper backup)")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace whatever the target database holds (destroys it)"),
    ] = False,
) -> None:
    """Restore a backup into an empty data directory or database, then migrate it to head."""
    from storekeeper.backup import run
    from storekeeper.backup.manifest import BackupError

    settings = Settings()
    try:
        with _bar() as bar:
            task = bar.add_task("restoring", total=None)
            restored = run.restore(
                settings,
                source=source,
                force=force,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except run.TargetNotEmpty as exc:
        console.print("[red]restore refused[/red]: the target is not empty", highlight=False)
        for item in exc.found:
            console.print(f"  {item}", highlight=False, markup=False)
        console.print("restore into an empty data directory or database, or pass --force")
        raise typer.Exit(1) from exc
    except BackupError as exc:
        console.print(f"[red]restore refused[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    manifest = restored.manifest
    migrated = f", migrated from {manifest.revision}" if restored.migrated else ""
    console.print(
        f"[green]restored[/green] the backup of {manifest.started_at} (outbox id "
        f"{manifest.outbox_max_id}, schema {restored.revision}{migrated}); "
        f"{manifest.pending_events} event(s) will be delivered when the server starts; "
        "replicas that synced before this restore will start over on their next sync",
        highlight=False,
    )


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
