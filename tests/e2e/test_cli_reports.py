"""``storekeeper reports rebuild``: a ledger written with no consumer running (the demo data)
is copied into the reports' read model once, however often the command runs."""

from __future__ import annotations

import re

from tests.e2e.test_cli import Shell, _output, fresh_pg_url, shell  # noqa: F401 (fixtures)


def test_reports_rebuild_copies_a_ledger_once(shell: Shell) -> None:  # noqa: F811
    assert shell.run("demo", "--products", "5").returncode == 0

    first = shell.run("reports", "rebuild")
    again = shell.run("reports", "rebuild")

    assert first.returncode == 0, _output(first)
    copied = re.search(r"reports rebuilt: (\d+) movements", first.stdout)
    assert copied and int(copied[1]) > 0, _output(first)
    assert "reports rebuilt: 0 movements" in again.stdout, _output(again)
