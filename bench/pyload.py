"""The fallback load generator where wrk is missing: asyncio + httpx in this process.

It sends the same requests as the Lua scripts of ``bench/lua``; being Python, it competes with
the server for the CPU far more than wrk does, so it caps what a small machine can measure.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.measure import LoadResult, LoadSpec

_REQUEST_TIMEOUT_S = 10
_MAX_REQUESTS_PER_CLIENT = 5_000_000


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def _order_request(config: dict[str, Any], rng: random.Random, key: str) -> _Request:
    """The same kind of order the Lua script sends."""
    wanted = rng.randint(1, min(config["max_lines"], config["sku_count"]))
    indexes = rng.sample(range(config["sku_count"]), wanted)
    body = {
        "lines": [
            {"sku": config["sku_format"] % i, "qty": rng.randint(1, config["max_qty"])}
            for i in indexes
        ],
        "ship_to": {
            "lat": round(rng.uniform(config["lat_min"], config["lat_max"]), 4),
            "lon": round(rng.uniform(config["lon_min"], config["lon_max"]), 4),
        },
        "payment": json.loads(config.get("payment_json", '{"method": "manual"}')),
    }
    headers = {"Idempotency-Key": key, "Authorization": "Bearer " + rng.choice(config["tokens"])}
    return _Request("POST", config["path"], headers, body)


def _next_request(spec: LoadSpec, rng: random.Random, key: str) -> _Request:
    config = spec.config
    if spec.script == "orders":
        return _order_request(config, rng, key)
    sku = config["sku_format"] % rng.randrange(config["sku_count"])
    return _Request("GET", config["path"] + sku)


async def _client_loop(
    client: httpx.AsyncClient,
    spec: LoadSpec,
    worker: int,
    deadline: float,
    latencies: list[float],
    statuses: Counter[str],
) -> None:
    rng = random.Random(spec.config["seed"] + worker * 7919)
    run_id = spec.config.get("run_id", "py")
    for n in range(_MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline:
            return
        request = _next_request(spec, rng, f"{run_id}-{worker}-{n}")
        started = time.monotonic()
        try:
            response = await client.request(
                request.method, request.path, headers=request.headers, json=request.body
            )
        except httpx.TransportError:
            statuses["socket_error"] += 1
            continue
        latencies.append(time.monotonic() - started)
        key = str(response.status_code)
        if response.status_code == 409 and "insufficient_stock" in response.text:
            key = "409:insufficient_stock"
        statuses[key] += 1


async def _run(spec: LoadSpec, base_url: str, connections: int, duration_s: float) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=_REQUEST_TIMEOUT_S
    ) as client:
        deadline = started + duration_s
        await asyncio.gather(
            *(
                _client_loop(client, spec, w, deadline, latencies, statuses)
                for w in range(connections)
            )
        )
    elapsed = time.monotonic() - started
    errors = statuses.pop("socket_error", 0)
    return LoadResult(
        requests=len(latencies),
        duration_s=elapsed,
        max_ms=max(latencies, default=0.0) * 1e3,
        non_2xx=sum(n for k, n in statuses.items() if not k.startswith("2")),
        socket_errors=errors,
        generator="python",
        statuses=dict(statuses),
        quantiles=tuple((x * 1e3, 1.0) for x in latencies),
    )


def run(spec: LoadSpec, base_url: str, *, connections: int, duration_s: float) -> LoadResult:
    """Keep ``connections`` requests in flight against ``base_url`` for ``duration_s``."""
    return asyncio.run(_run(spec, base_url, connections, duration_s))
