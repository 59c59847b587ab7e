"""``storekeeper reports``: maintaining the reporting context's read models."""

from __future__ import annotations

import typer
from rich.progress import Progress

from storekeeper.cli.common import booted, console

reports_app = typer.Typer(help="Maintain the reports' read models.", no_args_is_help=True)


@reports_app.command("rebuild")
def rebuild() -> None:
    """Copy the whole stock ledger into the reports' read model again and close the months.

    Run it once after upgrading a database that had stock movements before reports existed;
    it is safe to repeat, and to run while the server is up.
    """
    from storekeeper.reporting import readmodel

    with booted() as container, Progress(console=console, transient=True) as bar:
        task = bar.add_task("copying movements", total=None)
        copied = readmodel.rebuild(container.db, progress=lambda n: bar.advance(task, n))
    console.print(f"[green]reports rebuilt[/green]: {copied} movements")
