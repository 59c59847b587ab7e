"""The sync commands: one argparse command line, as ``storekeeper-client`` and ``storekeeper sync``.

Offline only (no server); the commands against a live server are in tests/e2e/test_replica.py
(through ``storekeeper sync``) and tests/e2e/test_client_distribution.py (the installed wheel).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekeeper.cli.main import app
from storekeeper_client import cli


def test_no_command_shows_what_there_is_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: storekeeper-client" in capsys.readouterr().err
    assert cli.main(["sync"]) == 2
    listed = capsys.readouterr().err
    assert all(name in listed for name in ("run", "stock", "receive", "count", "sell", "pending"))
    assert cli.main(["sync", "sell", "--help"]) == 0
    assert "--force" in capsys.readouterr().out
    assert cli.main(["sync", "sell", "--replica", "x.db", "MILK", "two"]) == 2
    assert "invalid int value" in capsys.readouterr().err


def test_queued_changes_show_in_stock_and_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    till = str(tmp_path / "till.db")
    assert cli.main(["sync", "pending", "--replica", till]) == 2  # a new file needs a scope
    assert "needs a scope" in capsys.readouterr().err
    sell = ["sync", "sell", "--replica", till, "--scope", "warehouse:BER", "MILK", "2"]
    assert cli.main(sell) == 1  # not in the local catalog: nothing pulled yet
    assert cli.main([*sell, "--force"]) == 0
    assert cli.main(["sync", "receive", "--replica", till, "MILK", "5", "--force"]) == 0
    capsys.readouterr()
    assert cli.main(["sync", "stock", "--replica", till, "MILK"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header == "sku   on hand  reserved  available  pending changes"
    assert row.split() == ["MILK", "3", "0", "3", "2"]
    assert cli.main(["sync", "pending", "--replica", till]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 pending change(s)" and len(lines) == 4
    assert cli.main(["sync", "stock", "--replica", till, "BREAD"]) == 1


def test_storekeeper_sync_hands_every_word_to_the_client_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    helped = runner.invoke(app, ["sync", "--help"])
    assert helped.exit_code == 0
    assert "usage: storekeeper sync" in helped.output
    till = str(tmp_path / "till.db")
    queued = runner.invoke(
        app,
        ["sync", "receive", "--replica", till, "--scope", "warehouse:BER", "MILK", "4", "--force"],
    )
    assert queued.exit_code == 0 and "queued receive MILK 4" in queued.output
    assert (
        runner.invoke(app, ["sync", "sell", "--replica", till, "MILK", "0", "--force"]).exit_code
        == 2
    )
