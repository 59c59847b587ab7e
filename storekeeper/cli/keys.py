"""``storekeeper keys``: rotate and retire the token-signing keys without an outage."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from storekeeper.cli.common import booted, console

keys_app = typer.Typer(
    help="Token-signing keys: the newest signs, older ones verify until retired.",
    no_args_is_help=True,
)


@keys_app.command("list")
def list_keys() -> None:
    """Show every key: when made, whether it signs, whether retired, live sessions it holds."""
    from storekeeper.accounts import keys

    with booted() as container, container.db.reading() as session:
        shown = keys.list_keys(session, root_secret=container.signing_key.root_secret)
    table = Table("key", "created", "state", "live sessions", title="Signing keys")
    for key in shown:
        state = "retired" if key.retired_at else "signs" if key.signing else "verifies"
        created = f"{key.created_at:%Y-%m-%d %H:%M}" if key.created_at else "STOREKEEPER_SECRET_KEY"
        table.add_row(key.kid, created, state, str(key.live_sessions))
    console.print(table)


@keys_app.command("rotate")
def rotate() -> None:
    """Add a new key that signs from now on; the older ones keep verifying."""
    from storekeeper.accounts import keys

    with booted() as container, container.db.transaction() as session:
        kid = keys.rotate(session)
    console.print(
        f"key [bold]{kid}[/bold] signs new tokens in every process within "
        f"{container.settings.keys_reload_s:g} s; retire the old one once its sessions "
        "have moved on (storekeeper keys list)"
    )


@keys_app.command("retire")
def retire(
    kid: Annotated[str, typer.Argument(help="The key to retire (storekeeper keys list)")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Retire even if live sessions or devices still use it"),
    ] = False,
) -> None:
    """Stop a key verifying: its tokens stop working everywhere within STOREKEEPER_KEYS_RELOAD_S."""
    from storekeeper.accounts import keys

    with booted() as container:
        try:
            with container.db.transaction() as session:
                ended = keys.retire(
                    session, kid=kid, root_secret=container.signing_key.root_secret, force=force
                )
        except keys.KeyInUse as exc:
            console.print(f"[red]refused[/red]: {exc}", highlight=False)
            for held in exc.sessions[:20]:
                what = f"device {held.label or held.id}" if held.kind == "device" else "sign-in"
                console.print(f"  {what} (session {held.id}, since {held.created_at:%Y-%m-%d})")
            raise typer.Exit(1) from exc
    console.print(f"key [bold]{kid}[/bold] retired; {len(ended)} session(s) ended")
