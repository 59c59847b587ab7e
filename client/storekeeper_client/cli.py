"""The ``sync`` commands: an offline replica file worked from the shell.

A device runs them as ``storekeeper-client sync ...``; the server's ``storekeeper sync ...`` hands
its arguments to ``main`` here, so both are one implementation. Standard library only
(argparse): the commands come with the library, no CLI framework on the device.

Exit codes: 0 done, 1 the server refused or could not be reached, or a SKU is unknown, 2 a
usage error or a change the replica refuses (a bad quantity, a file of another scope).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from storekeeper_client.records import Offline, SyncError
from storekeeper_client.replica import Replica

PROG = "storekeeper-client"


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run one command line (``sys.argv[1:]`` by default); the exit code."""
    parser, sync = _parsers(prog)
    words = list(sys.argv[1:] if argv is None else argv)
    if words in ([], ["sync"]):  # no command: what there is to run
        (sync if words else parser).print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    command: Callable[[argparse.Namespace], int] = args.command
    return command(args)


# --- the parser ----------------------------------------------------------------------------------


def _parsers(prog: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The whole command line's parser and its ``sync`` group's."""
    parser = argparse.ArgumentParser(
        prog=prog, description="A device's offline replica of a Storekeeper warehouse."
    )
    groups = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    sync = groups.add_parser(
        "sync",
        help="work with an offline replica file",
        description="Work with an offline replica file: sync it, read it, queue changes offline.",
    )
    commands = sync.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(
        name: str, run: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--replica", required=True, help="the replica's SQLite file")
        sub.set_defaults(command=run)
        return sub

    run = command("run", _run, "Push the replica's queued changes, then pull until up to date.")
    run.add_argument("--server", required=True, help="the API's base URL, e.g. http://host:8000")
    run.add_argument(
        "--token",
        help="a device token (lasts), or a sign-in's access token with --refresh-token; kept "
        "in the replica file, so later runs need neither",
    )
    run.add_argument(
        "--refresh-token", help="a sign-in's refresh token: the replica renews its access token"
    )
    _scope_option(run)
    stock = command("stock", _stock, "Show a SKU's stock as the replica sees it (offline).")
    stock.add_argument("sku")
    for name, amount, text in (
        ("receive", "QTY", "Queue a receipt of QTY units (offline)."),
        ("count", "COUNTED", "Queue a count of COUNTED units, against the on-hand shown now."),
        ("sell", "QTY", "Queue a sale of QTY units (offline)."),
    ):
        queue = command(name, _queue, text)
        queue.add_argument("sku")
        queue.add_argument("amount", metavar=amount, type=int)
        _scope_option(queue)
        queue.add_argument(
            "--force",
            action="store_true",
            help="queue it even if the SKU is not in the local catalog (not synced yet?)",
        )
        queue.set_defaults(kind=name)
    command("pending", _pending, "List the changes queued and not yet acknowledged.")
    return parser, sync


def _scope_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", help="warehouse:CODE; needed only when the replica file is new")


# --- the commands --------------------------------------------------------------------------------


def _refused(exc: ValueError) -> int:
    """Say why a replica file cannot be opened or a change queued; the exit code."""
    print(exc, file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    try:
        replica = Replica(
            args.replica,
            args.server,
            args.token,
            refresh_token=args.refresh_token,
            scope=args.scope,
        )
    except ValueError as exc:
        return _refused(exc)
    with replica:
        progress = _Progress(sys.stderr)
        try:
            summary = replica.sync(on_progress=progress.show)
        except Offline as exc:
            progress.clear()
            print(f"offline: {exc}; {len(replica.pending())} change(s) stay queued")
            return 1
        except SyncError as exc:
            progress.clear()
            print(f"sync failed: {exc}")
            return 1
        progress.clear()
    print(
        f"pushed {summary.pushed} ({summary.conflicts} conflict(s), {summary.rejected} "
        f"rejected), pulled {summary.pulled} rows" + (", resynced" if summary.resynced else "")
    )
    for verdict in summary.verdicts:
        if verdict.status != "applied":
            print(f"  {verdict.status} {verdict.type} {verdict.data.get('sku')}: {verdict.message}")
    return 0


def _stock(args: argparse.Namespace) -> int:
    try:
        replica = Replica(args.replica)
    except ValueError as exc:
        return _refused(exc)
    with replica:
        level = replica.stock(args.sku)
    if level is None:
        print(f"unknown SKU {args.sku}")
        return 1
    header = ("sku", "on hand", "reserved", "available", "pending changes")
    row = (args.sku, level.on_hand, level.reserved, level.available, level.pending)
    print(_table(header, [tuple(map(str, row))]))
    return 0


def _queue(args: argparse.Namespace) -> int:
    try:
        replica = Replica(args.replica, scope=args.scope)
    except ValueError as exc:
        return _refused(exc)
    with replica:
        if not replica.knows(args.sku):
            # Most likely a typo, and the server would reject it only at the next sync, after
            # the till showed a negative stock for it; a product not pulled yet needs --force.
            print(
                f"warning: {args.sku} is not in this replica's local catalog "
                "(mistyped, or not synced yet?)",
                file=sys.stderr,
            )
            if not args.force:
                print(f"{args.kind} not queued; `sync run` first, or add --force", file=sys.stderr)
                return 1
        write = {"receive": replica.receive, "count": replica.count, "sell": replica.sell}
        try:
            mutation_id = write[args.kind](args.sku, args.amount)
        except ValueError as exc:
            return _refused(exc)
    print(f"queued {args.kind} {args.sku} {args.amount} ({mutation_id})")
    return 0


def _pending(args: argparse.Namespace) -> int:
    try:
        replica = Replica(args.replica)
    except ValueError as exc:
        return _refused(exc)
    with replica:
        queued = replica.pending()
    print(f"{len(queued)} pending change(s)")
    if queued:
        rows = [(m.id, m.type, json.dumps(m.data), m.hlc) for m in queued]
        print(_table(("id", "type", "data", "hlc"), rows))
    return 0


# --- output --------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


class _Progress:
    """Rows pulled so far, on one rewritten line of a terminal; nothing when not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown = False
        self._live = stream.isatty()

    def show(self, rows: int) -> None:
        if self._live:
            self._stream.write(f"\rpulled {rows} rows")
            self._stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._shown = False
