"""The offline-first client of the sync API: ``Replica``, for devices (docs/sync.md).

The ``storekeeper-client`` distribution: standard library plus httpx only, so it installs and
imports on a till or handheld that has none of the server's packages. Nothing here imports from
the server package ``storekeeper`` (an import-linter contract checks it); the server imports
this package (``storekeeper.client`` re-exports it, ``storekeeper sync`` is ``cli.sync_app``).
"""

from storekeeper_client.records import (
    Mutation,
    Offline,
    Stock,
    SyncError,
    SyncSummary,
    Verdict,
)
from storekeeper_client.replica import Replica

__version__ = "0.1.0"
"""Released together with the server: ``storekeeper`` X.Y.Z depends on this distribution X.Y.Z."""

__all__ = ["Mutation", "Offline", "Replica", "Stock", "SyncError", "SyncSummary", "Verdict"]
