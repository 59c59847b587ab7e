"""Optional sampling profiles of the server (py-spy), summarised by where the time goes.

With ``--profile`` each benchmark makes one extra run of the app under py-spy after its measured
run (so the reported figures are never taken under the profiler) and writes the raw stacks
(``*.folded``, for flamegraph tools or speedscope) and a summary (``*.txt``) to the results.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_AREAS: list[tuple[str, str]] = [
    ("/storekeeper/", "storekeeper"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("/pydantic", "pydantic"),
    ("/fastapi/", "fastapi"),
    ("/starlette/", "starlette"),
    ("/uvicorn/", "uvicorn"),
    ("/anyio/", "anyio (threadpool hand-off)"),
    ("/psycopg", "psycopg"),
    ("/jwt/", "pyjwt"),
    ("/asyncio/", "asyncio"),
    ("/threading.py", "threading"),
    ("/concurrent/", "threading"),
    ("/json/", "json"),
    ("/uuid.py", "uuid"),
    ("/hashlib", "hashlib"),
]
_DRIVER_CALLS = frozenset(
    {
        "do_execute",
        "do_executemany",
        "do_commit",
        "do_rollback",
        "do_begin",
        "_exec_insertmany_context",
        "do_ping",
    }
)
"""SQLAlchemy frames whose own time is really the driver and the database (C code below)."""

_TOP = 15
_RATE_HZ = 200


def py_spy() -> str | None:
    """The py-spy binary (``pip install py-spy``), if installed."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid: int, output: Path, duration_s: float) -> Iterator[None]:
    """Sample ``pid`` (and its children) for ``duration_s`` into a folded-stacks file."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    process = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--gil",
            "--full-filenames",
            "--rate",
            str(_RATE_HZ),
            "--duration",
            str(max(1, round(duration_s))),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        try:
            _, errors = process.communicate(timeout=duration_s + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate(timeout=10)
    if not output.exists():
        raise RuntimeError(f"py-spy wrote no profile: {errors.decode(errors='replace')[-2000:]}")


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if "(" in f and not f.startswith(("process ", "thread "))]


def _area(frame: str) -> str:
    name = frame.split(" (", 1)[0]
    if "/sqlalchemy/" in frame and name in _DRIVER_CALLS:
        return "driver + database (sqlite3/psycopg C)"
    for needle, area in _AREAS:
        if needle in frame:
            return area
    return "other"


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"


def _table(title: str, counts: Counter[str], total: int, top: int) -> list[str]:
    return ["", title, *(f"  {n / total:6.1%}  {key}" for key, n in counts.most_common(top))]


def summarise(folded: Path, *, seconds: float) -> str:
    """Where the GIL-holding thread spent its time: by package, in our code, and per function."""
    by_area: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for raw in folded.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        frames = _frames(stack)
        if not count_text.isdigit() or not frames:
            continue
        count = int(count_text)
        total += count
        by_area[_area(frames[-1])] += count
        leaves[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames if "/storekeeper/" in f and "/cli/" not in f}:
            ours[frame] += count
    if not total:
        return "no samples\n"
    held = total / (_RATE_HZ * seconds)
    out = [
        f"{total} samples; the GIL was held {held:.0%} of the time "
        "(near 100%: the process is CPU-bound on one core)"
    ]
    out += _table("own time by area (leaf frame's package):", by_area, total, len(by_area))
    out += _table("storekeeper functions by inclusive time:", ours, total, _TOP)
    out += _table("heaviest functions by own time:", leaves, total, _TOP)
    return "\n".join(out) + "\n"
