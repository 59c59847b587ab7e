"""The forecast on a real Dask cluster (a scheduler and two workers, separate processes) gives
exactly what the local engine gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from storekeeper.reporting.forecast import service
from storekeeper.reporting.forecast.engines import DaskEngine, LocalEngine
from storekeeper.reporting.forecast.source import SeriesDemand
from tests.compute_cluster import Cluster, dask_cluster

POLICY = service.Policy(
    service_level=0.95, lead_time_days=7, service_levels={"HAM": 0.99}, lead_times={"BER": 3}
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two workers, for the module."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as running:
        yield running


def _series(count: int, days: int, seed: int) -> service.Series:
    """Random intermittent demand with stock-outs, over three warehouses."""
    rng = np.random.default_rng(seed)
    since = date(2026, 1, 1)
    demand = []
    for n in range(count):
        rate = rng.uniform(0.05, 3)
        sold = rng.poisson(rate, days) * (rng.random(days) < rng.uniform(0.2, 1))
        on_hand = np.maximum(rng.integers(-2, 20, days), 0)
        demand.append(SeriesDemand(f"SKU-{n:04d}", ("BER", "HAM", "MUC")[n % 3], sold, on_hand))
    return service.build_series(demand, since=since, until=since + timedelta(days=days - 1))


def test_the_cluster_gives_exactly_the_local_results(cluster: Cluster) -> None:
    series = _series(300, 240, seed=16)
    local = service.compute(series, engine=LocalEngine(), policy=POLICY, block_series=64)
    engine = DaskEngine(cluster.address)
    try:
        assert engine.workers == 2
        finished: list[int] = []
        remote = service.compute(
            series, engine=engine, policy=POLICY, block_series=37, done=finished.append
        )
    finally:
        engine.close()
    assert sum(finished) == 300
    assert remote == local  # every float bit for bit, every method, every reorder point
    assert {r.warehouse: r.lead_time_days for r in local} == {"BER": 3, "HAM": 7, "MUC": 7}
    assert {r.warehouse: r.service_level for r in local}["HAM"] == 0.99


def test_a_local_process_pool_gives_the_same_results_too() -> None:
    series = _series(40, 120, seed=3)
    alone = service.compute(series, engine=LocalEngine(), policy=POLICY, block_series=40)
    pooled = service.compute(series, engine=LocalEngine(2), policy=POLICY, block_series=9)
    assert pooled == alone


def test_an_unreachable_scheduler_is_an_error_not_a_silent_local_run(tmp_path: Path) -> None:
    from tests.processes import free_port

    with pytest.raises(OSError):
        DaskEngine(f"tcp://127.0.0.1:{free_port()}", timeout_s=1)
