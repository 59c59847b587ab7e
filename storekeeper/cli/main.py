"""``storekeeper``: the Typer app that wires the command modules together, and ``main()``."""

from __future__ import annotations

import typer
from rich.console import Console

from storekeeper.cli import (
    backup,
    failures,
    forecast,
    importing,
    keys,
    ops,
    prune,
    replica,
    reports,
    server,
)

app = typer.Typer(help="Storekeeper: inventory and orders.", no_args_is_help=True)
# Registration order is the order `storekeeper --help` lists the commands in.
app.command()(server.migrate)
app.command()(server.serve)
app.command()(ops.demo)
app.command("import")(importing.import_file)
app.command()(server.worker)
app.command("grpc")(server.grpc_serve)
app.command("payment-sim")(server.payment_sim)
app.command("config")(ops.show_config)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(ops.users_app, name="users")
ops.events_app.command("parked")(failures.events_parked)
ops.events_app.command("retry")(failures.events_retry)
ops.events_app.command("skip")(failures.events_skip)
ops.jobs_app.command("failed")(failures.jobs_failed)
ops.jobs_app.command("retry")(failures.jobs_retry)
ops.jobs_app.command("discard")(failures.jobs_discard)
app.add_typer(ops.events_app, name="events")
app.add_typer(ops.jobs_app, name="jobs")
app.add_typer(keys.keys_app, name="keys")
app.command("prune")(prune.prune)
app.add_typer(reports.reports_app, name="reports")
app.add_typer(forecast.forecast_app, name="forecast")
# The device's commands: `storekeeper-client sync ...` from the storekeeper-client distribution.
app.command("sync", context_settings=replica.PASS_THROUGH, add_help_option=False)(replica.sync)


def main() -> None:
    """Console-script entry point."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    from storekeeper.config import warn_unknown_environment

    warn_unknown_environment()
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
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.print(f"{where + ': ' if where else ''}{message}", markup=False, soft_wrap=True)
        raise SystemExit(2) from exc
