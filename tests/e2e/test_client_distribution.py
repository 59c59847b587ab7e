"""The client as a device gets it: the ``storekeeper-client`` wheel in a virtualenv of its own.

The wheel is built from ``client/`` and installed, with what it depends on and nothing else,
into a fresh virtualenv that sees no other site packages. There none of the server's packages
exist, and a replica pulls the catalog from a live server and pushes sales, through the library
and through the ``storekeeper-client`` command. Also: the two distributions share one version.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

import storekeeper
import storekeeper.client
import storekeeper_client
from storekeeper.accounts.domain import Role
from tests.conftest import Actors, LiveServer
from tests.shop import add_product, add_warehouses

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
# The server's packages and frameworks, and the CLI frameworks the client does without.
NOT_ON_THE_DEVICE = (
    "storekeeper",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "celery",
    "grpc",
    "pydantic",
    "alembic",
    "typer",
    "rich",
)

DEVICE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import storekeeper_client
    from storekeeper_client import Replica

    url, token, path = sys.argv[1:4]
    with Replica(path, url, token, scope="warehouse:BER") as replica:
        pulled = replica.sync().pulled
        catalog = [product["sku"] for product in replica.products()]
        replica.sell("MILK", 1)
        pushed = replica.sync()
        print(json.dumps({
            "found": [n for n in sys.argv[4:] if importlib.util.find_spec(n) is not None],
            "module": storekeeper_client.__file__,
            "pulled": pulled,
            "catalog": catalog,
            "verdicts": [v.status for v in pushed.verdicts],
            "on_hand": replica.stock("MILK").on_hand,
        }))
    """
)


def _device_env() -> dict[str, str]:
    """This environment without PYTHONPATH and friends: the venv must find only its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_device_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of client/ (the build leaves its egg-info and build/ there)."""
    source = tmp / "client-src"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    # setuptools builds wheels by itself from 70.1 on; then no isolated build env is needed.
    try:
        major, minor = importlib.metadata.version("setuptools").split(".")[:2]
    except importlib.metadata.PackageNotFoundError:
        major, minor = "0", "0"
    isolation = ["--no-build-isolation"] if (int(major), int(minor)) >= (70, 1) else []
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    _run(*pip, "wheel", "--no-deps", *isolation, source, "-w", tmp / "dist", cwd=tmp)
    (wheel,) = (tmp / "dist").glob("storekeeper_client-*.whl")
    return wheel


def test_the_two_distributions_share_one_version_and_the_old_import_path_still_works() -> None:
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    version = client["version"]
    assert server["version"] == version == storekeeper.__version__ == storekeeper_client.__version__
    assert f"storekeeper-client=={version}" in server["dependencies"]
    assert storekeeper.client.Replica is storekeeper_client.Replica


@pytest.mark.live
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_client_wheel_installs_alone_and_syncs_with_a_live_server(
    live_server: LiveServer, actors: Actors, tmp_path: Path
) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"storekeeper_client-{storekeeper_client.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        scripts = archive.read(f"{info}/entry_points.txt").decode()
    assert not [n for n in names if n.startswith("storekeeper/")]  # no server code inside
    requires = [ln for ln in metadata.splitlines() if ln.startswith("Requires-Dist:")]
    assert requires == ["Requires-Dist: httpx>=0.27"]
    assert "storekeeper-client = storekeeper_client.__main__:main" in scripts

    # A fresh virtualenv that sees no other site packages; pip installs the wheel and what it
    # requires from the package index (or pip's cache) at the versions of the constraints.
    venv = tmp_path / "device"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python, command = venv / "bin" / "python", venv / "bin" / "storekeeper-client"
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", python)
    _run(*pip, "install", "-c", CONSTRAINTS, wheel, cwd=tmp_path)

    manager = actors.make(Role.MANAGER)
    device = actors.make(Role.DEVICE, warehouses=["BER"])  # a device token bound to BER
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        add_warehouses(http, manager.headers)  # type: ignore[arg-type]  # an httpx.Client will do
        add_product(http, manager.headers, "MILK", stock={"BER": 10})  # type: ignore[arg-type]
        add_product(http, manager.headers, "BREAD", stock={"BER": 3})  # type: ignore[arg-type]
        token = device.headers["Authorization"].removeprefix("Bearer ")
        till = tmp_path / "till.db"

        # The library: -I (isolated) so neither this checkout nor PYTHONPATH is on sys.path.
        out = _run(
            python,
            "-I",
            "-c",
            DEVICE_SCRIPT,
            live_server.url,
            token,
            till,
            *NOT_ON_THE_DEVICE,
            cwd=tmp_path,
        )
        seen = json.loads(out)
        assert seen["found"] == []  # none of the server's packages is importable there
        assert Path(seen["module"]).is_relative_to(venv)  # the installed wheel, not client/
        assert seen["pulled"] == 4 and seen["catalog"] == ["BREAD", "MILK"]
        assert seen["verdicts"] == ["applied"] and seen["on_hand"] == 9

        # The command, on the same file (it keeps the server's token): a sale queued offline,
        # then pushed.
        queued = _run(command, "sync", "sell", "--replica", till, "MILK", "2", cwd=tmp_path)
        assert "queued sell MILK 2" in queued
        pushed = _run(
            command, "sync", "run", "--replica", till, "--server", live_server.url, cwd=tmp_path
        )
        assert "pushed 1 (0 conflict(s), 0 rejected)" in pushed
        assert "7" in _run(command, "sync", "stock", "--replica", till, "MILK", cwd=tmp_path)

        levels = http.get("/api/v1/stock/MILK", headers=manager.headers).json()["warehouses"]
        assert [w["on_hand"] for w in levels if w["warehouse"] == "BER"] == [7]
