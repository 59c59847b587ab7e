"""How long ``storekeeper backup`` and ``storekeeper restore`` take on a database with orders.

Loads the demo data into a fresh SQLite data dir or PostgreSQL database, places ``--orders``
orders through a live ``storekeeper serve`` (8 client threads), stops it, then times the
backup three times and the restore into an empty place twice, end to end (the commands as an
operator runs them) and the copy alone (``storekeeper.backup.run.backup`` in this process), next
to a bare ``cp`` / ``pg_dump`` of the same database. docs/operations.md quotes its output.

    .venv/bin/python scripts/backup_timing.py --backend sqlite --orders 5000
"""

# Every command line here is built from our own values; random picks order lines, not secrets.
# ruff: noqa: S311, S603, S607

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from storekeeper.backup import run
from storekeeper.config import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "backup-timing-secret-that-is-long-enough-0123456789"
CUSTOMER = ("customer@example.com", "shopping-basket-9")
MANAGER = ("manager@example.com", "stockroom-lamp-42")


def _storekeeper() -> str:
    found = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert found is not None, "storekeeper is not installed in this venv"
    return found


def _token(url: str, who: tuple[str, str]) -> dict[str, str]:
    body = {"username": who[0], "password": who[1]}
    answer = httpx.post(f"{url}/api/v1/auth/token", data=body, timeout=30).json()
    return {"Authorization": f"Bearer {answer['access_token']}"}


def _place_orders(url: str, count: int) -> int:
    manager, customer = _token(url, MANAGER), _token(url, CUSTOMER)
    skus = [
        p["sku"]
        for p in httpx.get(f"{url}/api/v1/products?limit=50", headers=manager).json()["items"]
    ]
    for sku in skus:  # enough stock that no order fails
        for warehouse in ("BER", "HAM", "MUC"):
            move = {"sku": sku, "warehouse": warehouse, "delta": 100_000, "reason": "receipt"}
            httpx.post(f"{url}/api/v1/stock/movements", headers=manager, json=move, timeout=30)
    placed = [0]
    lock = threading.Lock()

    def client(orders: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(orders):
                lines = [{"sku": s, "qty": 1} for s in random.sample(skus, random.randint(1, 3))]
                r = http.post(
                    "/api/v1/orders",
                    json={"lines": lines, "ship_to": {"lat": 52.0, "lon": 10.0}},
                    headers={**customer, "Idempotency-Key": str(uuid.uuid4())},
                )
                with lock:
                    placed[0] += r.status_code == 201

    threads = [threading.Thread(target=client, args=(count // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return placed[0]


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _new_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    """Build the database, place the orders, time backups and restores, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--orders", type=int, default=5000)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sk-backup-timing-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("STOREKEEPER_")}
    env = {
        **base,
        "STOREKEEPER_DATA_DIR": str(work / "data"),
        "STOREKEEPER_SECRET_KEY": SECRET,
        "STOREKEEPER_TELEMETRY_PORT": "0",
        "STOREKEEPER_RATE_LIMIT_ORDERS": "100000/minute per account, 100000/minute per address",
    }
    if options.backend == "postgresql":
        env["STOREKEEPER_DATABASE_URL"] = _new_database("sk_backup_timing")
    sk = _storekeeper()
    subprocess.run([sk, "demo", "--products", "1000"], env=env, check=True, capture_output=True)
    port = "18779"
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sk, "serve", "--port", port, "--no-migrate"], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        placed = _place_orders(url, options.orders)
    finally:
        server.terminate()
        server.wait(timeout=30)
    settings = Settings(
        data_dir=Path(env["STOREKEEPER_DATA_DIR"]),
        database_url=env.get("STOREKEEPER_DATABASE_URL", ""),
        secret_key=SECRET,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )
    print(f"{options.backend}: {placed} orders placed")
    for attempt in range(3):
        shutil.rmtree(work / "backup", ignore_errors=True)
        command = _timed([sk, "backup", "--to", str(work / "backup")], env)
        shutil.rmtree(work / "inner", ignore_errors=True)
        started = time.perf_counter()
        manifest = run.backup(settings, to=work / "inner", force=False, progress=None)
        copy = time.perf_counter() - started
        started = time.perf_counter()
        if options.backend == "sqlite":
            shutil.copyfile(work / "data" / "storekeeper.db", work / "plain.db")
        else:
            subprocess.run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--file={work / 'plain.dump'}",
                    f"--dbname={env['STOREKEEPER_DATABASE_URL']}",
                ],
                check=True,
            )
        bare = time.perf_counter() - started
        print(
            f"backup {attempt + 1}: command {command:.2f} s, copy {copy:.2f} s, bare "
            f"{'cp' if options.backend == 'sqlite' else 'pg_dump'} {bare:.2f} s; "
            f"{manifest.size_bytes / 1e6:.1f} MB, {manifest.counts['ordering_order']} orders, "
            f"{manifest.counts['events_outbox']} events"
        )
    for attempt in range(2):
        target = {**env, "STOREKEEPER_DATA_DIR": str(work / f"restored-{attempt}")}
        if options.backend == "postgresql":
            target["STOREKEEPER_DATABASE_URL"] = _new_database(f"sk_backup_timing_r{attempt}")
        seconds = _timed([sk, "restore", "--from", str(work / "backup")], target)
        print(f"restore {attempt + 1}: command {seconds:.2f} s")
    print(f"(files in {work})")


if __name__ == "__main__":
    main()
