"""``storekeeper sync ...``: the device's commands (``storekeeper-client sync ...``) on the server.

The commands live in the client distribution (``storekeeper_client.cli``, argparse); this one
hands them every word after ``sync``, ``--help`` included, so both commands behave alike.
"""

from __future__ import annotations

from typing import Any

import typer

PASS_THROUGH: dict[str, Any] = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}
"""Context settings under which Typer leaves every argument, options included, to ``sync``."""


def sync(ctx: typer.Context) -> None:
    """Work with an offline replica file: sync it, read it, queue changes offline (--help)."""
    from storekeeper_client.cli import main

    raise typer.Exit(main(["sync", *ctx.args], prog="storekeeper"))
