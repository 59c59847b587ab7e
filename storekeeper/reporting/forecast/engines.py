"""Where the per-series fitting runs: in this process (or a local process pool), or on a Dask
cluster when ``STOREKEEPER_COMPUTE_URL`` names its scheduler.

Both engines run the same function (:func:`fit_block`) on the same blocks of series and hand the
results back in block order, so they give the same numbers. Dask (``distributed``) rather than
Ray: it is pip-installed with no native server to ship, its scheduler and workers are ordinary
processes (``dask scheduler``, ``dask worker tcp://HOST:PORT``), and numpy blocks travel to them
without a shared object store. docs/forecast.md says how to run a cluster.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from storekeeper.reporting.forecast.methods import Backtest, Fit, fit


@dataclass(frozen=True, slots=True)
class Block:
    """Series to fit together: units sold and censored days, one row per series."""

    sold: npt.NDArray[np.int64]
    censored: npt.NDArray[np.bool_]

    @property
    def series(self) -> int:
        """How many series (rows) the block holds."""
        return int(self.sold.shape[0])


def fit_block(block: Block, backtest: Backtest) -> Fit:
    """Fit one block: what every engine runs, here or on a cluster worker."""
    return fit(block.sold, block.censored, backtest)


Done = Callable[[int], None]
"""Told how many series just finished (for a progress bar)."""


class Engine(Protocol):
    """Fits blocks of series somewhere and gives the fits back in the blocks' order."""

    name: str

    def fit_blocks(self, blocks: Sequence[Block], backtest: Backtest, done: Done) -> list[Fit]:
        """One :class:`Fit` per block, in the order of ``blocks``."""
        ...

    def close(self) -> None:
        """Let go of processes or connections."""
        ...


class LocalEngine:
    """Fits in this process, or in a pool of ``processes`` local processes when > 1."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self.name = "local" if processes <= 1 else f"local x{processes}"

    def fit_blocks(self, blocks: Sequence[Block], backtest: Backtest, done: Done) -> list[Fit]:
        """Fit the blocks one after another, or spread over the pool."""
        if self.processes <= 1 or len(blocks) <= 1:
            fits = []
            for block in blocks:
                fits.append(fit_block(block, backtest))
                done(block.series)
            return fits
        with concurrent.futures.ProcessPoolExecutor(self.processes) as pool:
            futures = [pool.submit(fit_block, block, backtest) for block in blocks]
            order = {future: index for index, future in enumerate(futures)}
            for future in concurrent.futures.as_completed(futures):
                done(blocks[order[future]].series)
            return [future.result() for future in futures]

    def close(self) -> None:
        """Nothing to let go of: a pool lives only for one ``fit_blocks``."""


class DaskEngine:
    """Fits on the Dask cluster whose scheduler listens at ``address`` (``tcp://host:port``).

    The workers import this package to run :func:`fit_block`: they run in the same environment
    (the same installed ``storekeeper`` and numpy), so a block gives the same result there.
    """

    def __init__(self, address: str, *, timeout_s: float = 10.0) -> None:
        from distributed import Client  # only a deployment with a cluster needs distributed

        self.name = f"dask {address}"
        self._client = Client(address, timeout=timeout_s, set_as_default=False)

    @property
    def workers(self) -> int:
        """How many workers the scheduler has now."""
        return len(self._client.scheduler_info()["workers"])

    def fit_blocks(self, blocks: Sequence[Block], backtest: Backtest, done: Done) -> list[Fit]:
        """Send every block as one task; gather the fits as they finish."""
        from distributed import as_completed

        futures = [self._client.submit(fit_block, block, backtest, pure=False) for block in blocks]
        order = {future.key: index for index, future in enumerate(futures)}
        for future in as_completed(futures, loop=self._client.loop):
            done(blocks[order[future.key]].series)
        fits: list[Fit] = self._client.gather(futures)
        return fits

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self._client.close()


def engine_for(compute_url: str, *, processes: int = 1) -> Engine:
    """A Dask engine when ``compute_url`` names a scheduler, else the local one."""
    if compute_url:
        return DaskEngine(compute_url)
    return LocalEngine(processes)
