"""The ``sync`` commands: an offline replica file worked from the shell.

The device's ``storekeeper-client sync ...`` and the server's ``storekeeper sync ...`` are this one
Typer group (``sync_app``). Needs the ``cli`` extra (typer, rich); the library does not.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()

sync_app = typer.Typer(
    help="Work with an offline replica file: sync it, read it, queue changes offline.",
    no_args_is_help=True,
)
ReplicaPath = Annotated[str, typer.Option("--replica", help="The replica's SQLite file")]
ScopeOption = Annotated[
    str | None,
    typer.Option(help="warehouse:CODE; needed only when the replica file is new"),
]


app = typer.Typer(
    help="storekeeper-client: a device's offline replica of a Storekeeper warehouse.",
    no_args_is_help=True,
)
app.add_typer(sync_app, name="sync")


def _refused(exc: ValueError) -> typer.Exit:
    """Print why a replica file cannot be opened or a change queued; the exit to raise."""
    Console(stderr=True).print(f"[red]{exc}[/red]", highlight=False)
    return typer.Exit(2)


@sync_app.command("run")
def sync_run(
    replica: ReplicaPath,
    server: Annotated[str, typer.Option(help="The API's base URL, e.g. http://host:8000")],
    token: Annotated[
        str | None,
        typer.Option(
            help="A device token (lasts), or a sign-in's access token with --refresh-token; "
            "kept in the replica file, so later runs need neither"
        ),
    ] = None,
    refresh_token: Annotated[
        str | None,
        typer.Option(help="A sign-in's refresh token: the replica renews its access token"),
    ] = None,
    scope: ScopeOption = None,
) -> None:
    """Push the replica's queued changes, then pull until it is up to date."""
    from storekeeper_client import Offline, Replica, SyncError

    try:
        opened = Replica(replica, server, token, refresh_token=refresh_token, scope=scope)
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
    from storekeeper_client import Replica

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


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Queue it even if the SKU is not in the local catalog (not synced yet?)"
    ),
]


def _queue(replica: str, scope: str | None, kind: str, sku: str, n: int, *, force: bool) -> None:
    from storekeeper_client import Replica

    try:
        opened = Replica(replica, scope=scope)
    except ValueError as exc:
        raise _refused(exc) from exc
    write = {"receive": opened.receive, "count": opened.count, "sell": opened.sell}[kind]
    try:
        if not opened.knows(sku):
            # Most likely a typo, and the server would reject it only at the next sync, after
            # the till showed a negative stock for it; a product not pulled yet needs --force.
            errors = Console(stderr=True)
            errors.print(
                f"[yellow]warning[/yellow]: {sku} is not in this replica's local catalog "
                "(mistyped, or not synced yet?)",
                highlight=False,
            )
            if not force:
                errors.print(f"{kind} not queued; `sync run` first, or add --force")
                raise typer.Exit(1)
        mutation_id = write(sku, n)
    except ValueError as exc:
        raise _refused(exc) from exc
    finally:
        opened.close()
    console.print(f"queued {kind} {sku} {n} ({mutation_id})")


@sync_app.command("receive")
def sync_receive(
    replica: ReplicaPath, sku: str, qty: int, scope: ScopeOption = None, force: ForceOption = False
) -> None:
    """Queue a receipt of QTY units (offline)."""
    _queue(replica, scope, "receive", sku, qty, force=force)


@sync_app.command("count")
def sync_count(
    replica: ReplicaPath,
    sku: str,
    counted: int,
    scope: ScopeOption = None,
    force: ForceOption = False,
) -> None:
    """Queue a physical count of COUNTED units, against the on-hand shown now (offline)."""
    _queue(replica, scope, "count", sku, counted, force=force)


@sync_app.command("sell")
def sync_sell(
    replica: ReplicaPath, sku: str, qty: int, scope: ScopeOption = None, force: ForceOption = False
) -> None:
    """Queue a sale of QTY units (offline)."""
    _queue(replica, scope, "sell", sku, qty, force=force)


@sync_app.command("pending")
def sync_pending(replica: ReplicaPath) -> None:
    """List the changes queued in the replica and not yet acknowledged by the server."""
    from storekeeper_client import Replica

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
