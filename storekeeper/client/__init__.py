"""The offline-first client of the sync API: ``Replica``, for devices (docs/sync.md).

Standard library plus httpx only: it must import on a till or handheld that has none of the
server's packages, so nothing here imports from the rest of ``storekeeper``.
"""

from storekeeper.client.records import (
    Mutation,
    Offline,
    Stock,
    SyncError,
    SyncSummary,
    Verdict,
)
from storekeeper.client.replica import Replica

__all__ = ["Mutation", "Offline", "Replica", "Stock", "SyncError", "SyncSummary", "Verdict"]
