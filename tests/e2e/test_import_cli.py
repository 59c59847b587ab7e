"""``storekeeper import`` as an operator runs it: progress and result, and ``kill -9`` of the
command half-way, then the same command again, giving the whole file imported exactly once."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.imports.models import ImportRun
from storekeeper.inventory import levels
from storekeeper.inventory.models import Movement
from storekeeper.inventory.warehouses import create_warehouse
from tests.conftest import env_for

ROWS = 6000


def _command(*args: str) -> list[str]:
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None
    return [script, *args]


def _file(path: Path) -> Path:
    lines = ["sku,name,price_cents,quantity"]
    lines += [f"K-{n:05d},Item {n},{100 + n},{n % 7 + 1}" for n in range(ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_killed_import_run_again_imports_everything_once(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    db = container.db
    with db.transaction() as session:
        create_warehouse(session, code="BER", name="Berlin", lat=52.5, lon=13.4)
    source = _file(tmp_path / "big.csv")
    env = {**env_for(settings), "COLUMNS": "120", "NO_COLOR": "1"}
    args = _command("import", str(source), "--stock", "add", "--warehouse", "BER")
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    processed = 0
    while time.monotonic() < deadline and process.poll() is None:
        with db.reading() as session:
            processed = session.scalar(select(func.max(ImportRun.processed))) or 0
        if processed > 0:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < processed < ROWS, f"killed at {processed} of {ROWS}: not half-way"
    with db.reading() as session:
        received = session.scalar(select(func.count()).select_from(Movement))
    assert received is not None and received < ROWS  # only whole batches committed

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "going on with import" in again.stdout
    third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "received into BER already" in third.stdout
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Movement)) == ROWS
        found = levels.known_skus(session, skus={f"K-{n:05d}" for n in range(ROWS)})
        assert len(found) == ROWS
        rows, _ = levels.list_levels(session, warehouse="BER", skus=["K-00000", "K-05999"])
        assert {r.sku: r.on_hand for r in rows} == {"K-00000": 1, "K-05999": 5999 % 7 + 1}
        runs = session.scalars(select(ImportRun)).all()
        assert [run.status for run in runs] == ["done"]


def test_dry_run_then_import_from_the_shell(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "demo.csv"
    source.write_text("sku,name,price_cents\nA-1,Apple,120\nA-2,Pear,\nA-3,Plum,x\n")
    env = {**env_for(settings), "COLUMNS": "160", "NO_COLOR": "1"}
    dry = subprocess.run(
        _command("import", str(source), "--dry-run"), env=env, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "2 invalid" in dry.stdout and "1 new" in dry.stdout
    assert "│ 3    │ A-2" in dry.stdout and "│ 4    │ A-3" in dry.stdout
    real = subprocess.run(_command("import", str(source)), env=env, capture_output=True, text=True)
    assert real.returncode == 1 and "nothing imported" in real.stdout
    source.write_text("sku,name,price_cents\nA-1,Apple,120\n")
    real = subprocess.run(_command("import", str(source)), env=env, capture_output=True, text=True)
    assert real.returncode == 0 and "1 new" in real.stdout
    missing = subprocess.run(
        _command("import", str(_file(tmp_path / "q.csv"))), env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "quantity column" in missing.stdout


def test_the_example_of_docs_import_md_runs_as_written(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text()
    example = doc.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "catalog.csv").write_text(example)
    env = {**env_for(settings), "COLUMNS": "160", "NO_COLOR": "1"}

    def shell(command: str) -> str:
        args = command.split()
        assert args[0] == "storekeeper"
        done = subprocess.run(
            _command(*args[1:]), env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "2 new" in shell("storekeeper import catalog.csv --dry-run")
    assert "2 new" in shell("storekeeper import catalog.csv")
    assert "2 unchanged" in shell("storekeeper import catalog.csv")
    for sentence in (
        "`storekeeper import catalog.csv --dry-run` reports `2 new`",
        "`storekeeper import catalog.csv`, the same command again reports `2 unchanged`",
    ):
        assert sentence in " ".join(doc.split())
