"""The load generator: wrk driven by a Lua script, or an asyncio + httpx fallback without wrk.

wrk (C, epoll) costs the shared CPU far less per request than any Python client, so it is
installed when missing (``apt-get install wrk``, where that is possible); the fallback works
everywhere but, on a small machine, caps what it can measure.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import pyload
from bench.measure import LoadResult, LoadSpec, points

WRK_THREADS = 1
"""One wrk thread keeps up with a Python server and leaves the other core to server and database."""

_LUA_DIR = Path(__file__).parent / "lua"
_REQUEST_TIMEOUT_S = 10
_INSTALL_TIMEOUT_S = 300


@functools.cache
def wrk_path() -> str | None:
    """The wrk binary, installed with apt-get when missing and possible; None otherwise."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    print("wrk not found: installing it with apt-get (falls back to a Python generator)")
    for args in (
        ["apt-get", "install", "-y", "-q", "wrk"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "wrk"],
    ):
        subprocess.run(args, capture_output=True, timeout=_INSTALL_TIMEOUT_S, check=False)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def generator_name() -> str:
    """Which load generator runs, for the report."""
    wrk = wrk_path()
    if wrk is None:
        return "python asyncio+httpx (wrk unavailable)"
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (version.stdout or version.stderr).splitlines()[:1]
    return f"{first[0].split(' [')[0] if first else 'wrk'}, {WRK_THREADS} thread"


def run_load(
    spec: LoadSpec, base_url: str, *, connections: int, duration_s: float, workdir: Path
) -> LoadResult:
    """Keep ``connections`` requests in flight against ``base_url`` for ``duration_s``."""
    wrk = wrk_path()
    if wrk is not None:
        return _run_wrk(wrk, spec, base_url, connections, duration_s, workdir)
    return pyload.run(spec, base_url, connections=connections, duration_s=duration_s)


# --- wrk -----------------------------------------------------------------------------------------


def _lua_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # ASCII-only JSON string escapes are valid Lua
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def _write_script(spec: LoadSpec, workdir: Path) -> Path:
    config = {**spec.config, "count_statuses": spec.count_statuses}
    path = workdir / f"{spec.script}-{time.monotonic_ns()}.lua"
    path.write_text(
        f"CONFIG = {_lua_literal(config)}\n"
        + (_LUA_DIR / "common.lua").read_text()
        + (_LUA_DIR / f"{spec.script}.lua").read_text()
    )
    return path


def _run_wrk(
    wrk: str, spec: LoadSpec, base_url: str, connections: int, duration_s: float, workdir: Path
) -> LoadResult:
    script = _write_script(spec, workdir)
    seconds = max(1, round(duration_s))
    done = subprocess.run(
        [
            wrk,
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={_REQUEST_TIMEOUT_S}s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    errors = raw["errors"]
    return LoadResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        max_ms=raw["max_us"] / 1e3,
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        generator="wrk",
        statuses=dict(raw["statuses"]),
        quantiles=points([q / 1e3 for q in raw["quantiles_us"]], raw["requests"]),
    )
