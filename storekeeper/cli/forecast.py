"""``storekeeper forecast run``: the demand forecast and reorder points, now, with progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from storekeeper.cli.common import console, migrate_schema
from storekeeper.config import Settings

if TYPE_CHECKING:
    from storekeeper.db import Database
    from storekeeper.reporting.forecast.handlers import RunSummary

forecast_app = typer.Typer(help="Demand forecast and reorder points.", no_args_is_help=True)


@forecast_app.command("run")
def run(
    compute_url: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler tcp://HOST:PORT to fan out to (default: STOREKEEPER_COMPUTE_URL;"
            " unset computes here)"
        ),
    ] = None,
) -> None:
    """Forecast daily demand of every (SKU, warehouse) and set its reorder point, at once."""
    from storekeeper.bootstrap import bootstrap

    settings = Settings() if compute_url is None else Settings(compute_url=compute_url)
    migrate_schema(settings)
    container = bootstrap(settings)
    try:
        summary = _run_with_progress(container.db, settings)
    except OSError as exc:  # the scheduler at the compute URL did not answer
        Console(stderr=True).print(
            f"[red]cannot reach the compute cluster at {settings.compute_url}[/red]: {exc}",
            highlight=False,
        )
        raise typer.Exit(1) from exc
    finally:
        container.close()
    console.print(
        f"[green]forecast done[/green]: {summary.series} series, days {summary.since} to "
        f"{summary.until}, on {summary.engine}, {summary.seconds:.1f} s",
        highlight=False,
    )
    if summary.methods:
        table = Table("method", "series", title="Methods chosen by backtest")
        for method, count in summary.methods.most_common():
            table.add_row(method, str(count))
        console.print(table)


def _run_with_progress(db: Database, settings: Settings) -> RunSummary:
    """A run with a progress bar of the series fitted."""
    from storekeeper.reporting.forecast.handlers import run_forecast

    with Progress(
        TextColumn("forecasting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("series"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("forecasting", total=None)
        return run_forecast(
            db,
            settings=settings,
            started=lambda total: bar.update(task, total=total),
            done=lambda n: bar.advance(task, n),
        )
