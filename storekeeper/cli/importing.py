"""``storekeeper import``: products and stock levels from a CSV or XLSX file, with progress.

The command runs the import in this process (not as a queued job): whoever types it watches
the progress bar and wants the result, or every bad line, when it returns, and no server needs
to be running. It still goes through the same import run row as the API's job, committed in
batches, so a killed command run again with the same file goes on where it stopped.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from storekeeper.cli.common import console, migrate_schema
from storekeeper.config import Settings

SHOWN = 50
"""New, changed and stock rows listed by a dry run (every bad row is always listed)."""


class StockOption(StrEnum):
    """What the quantity column means."""

    set = "set"
    add = "add"


def import_file(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX file")
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what would change (new, changed, unchanged, invalid) and write nothing",
        ),
    ] = False,
    stock: Annotated[
        StockOption | None,
        typer.Option(
            "--stock",
            help="What the quantity column means: 'set' records a count that makes on-hand "
            "equal it; 'add' records a receipt of it. Required when the file has a quantity "
            "column.",
        ),
    ] = None,
    warehouse: Annotated[
        str | None, typer.Option("--warehouse", help="Warehouse code of the quantities")
    ] = None,
) -> None:
    """Import products (and stock levels) from a CSV or XLSX file; see docs/import.md.

    Columns: sku, name, price_cents, currency, attributes (a JSON object), min_temp_c,
    max_temp_c, barcodes (one per line in the cell), quantity. Every bad row is listed with its
    line at once, and nothing is written from a file with a bad row. Importing the same file
    again changes nothing; a stock 'add' file is received into a warehouse once.
    """
    from storekeeper.bootstrap import bootstrap
    from storekeeper.errors import DomainError
    from storekeeper.imports import service

    content = file.read_bytes()
    mode = stock.value if stock is not None else None
    settings = Settings()
    migrate_schema(settings)
    container = bootstrap(settings)
    try:
        db = container.db
        try:
            with db.transaction() as session:
                run_id = (
                    None
                    if dry_run
                    else service.unfinished(
                        session, content=content, stock_mode=mode, warehouse=warehouse
                    )
                )
                resumed = run_id is not None
                if run_id is None:
                    run_id = service.submit(
                        session,
                        content=content,
                        filename=file.name,
                        stock_mode=mode,  # type: ignore[arg-type]
                        warehouse=warehouse,
                        dry_run=dry_run,
                        actor_id=None,
                    )
        except DomainError as exc:
            console.print(f"[red]{exc.detail}[/red]", highlight=False)
            raise typer.Exit(2) from exc
        if resumed:
            console.print(f"going on with import {run_id}, which stopped part-way")
        with db.reading() as session:
            earlier = service.get(session, run_id=run_id)
        if earlier.status in service.FINISHED:
            console.print(
                f"this file was received into {warehouse} already (import {run_id}): "
                "nothing received again"
            )
            _report(earlier)
            return
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("reading", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            view = service.run(db, run_id=run_id, on_progress=progress)
    finally:
        container.close()
    _report(view)


def _report(view: Any) -> None:
    if view.status == "failed":
        console.print(f"[red]cannot import {view.filename}[/red]: {view.error}", highlight=False)
        raise typer.Exit(2)
    counts = view.result.get("counts", {})
    rows = view.result.get("rows", {})
    if view.dry_run:
        _listed("new", rows.get("new", []), counts.get("new", 0), lambda r: "")
        _listed(
            "changed",
            rows.get("changed", []),
            counts.get("changed", 0),
            lambda r: ", ".join(r["fields"]),
        )
        _listed(
            "stock",
            rows.get("stock", []),
            counts.get("stock_changed", 0),
            lambda r: (
                f"{r['on_hand']} → {r['quantity']}"
                if r["on_hand"] is not None
                else f"+{r['quantity']}"
            ),
        )
    invalid = rows.get("invalid", [])
    if invalid:
        table = Table("line", "sku", "reason", title=f"{counts.get('invalid', 0)} invalid row(s)")
        for problem in invalid:
            table.add_row(str(problem["line"]), problem["sku"], problem["reason"])
        console.print(table)
    summary = ", ".join(
        f"{counts.get(k, 0)} {label}"
        for k, label in (
            ("new", "new"),
            ("changed", "changed"),
            ("unchanged", "unchanged"),
            ("invalid", "invalid"),
            ("stock_changed", "stock changes"),
            ("stock_unchanged", "stock unchanged"),
        )
    )
    if view.status == "invalid":
        console.print(f"[red]nothing imported[/red]: fix the rows above and run again ({summary})")
        raise typer.Exit(1)
    verb = "dry run, nothing written" if view.dry_run else f"imported (import {view.id})"
    console.print(f"[green]{verb}[/green]: {summary}", highlight=False)


def _listed(kind: str, rows: list[dict[str, Any]], count: int, detail: Any) -> None:
    if not rows:
        return
    table = Table("line", "sku", "", title=f"{count} {kind}")
    for row in rows[:SHOWN]:
        table.add_row(str(row["line"]), row["sku"], detail(row))
    if count > SHOWN:
        table.add_row("…", f"and {count - SHOWN} more", "")
    console.print(table)
