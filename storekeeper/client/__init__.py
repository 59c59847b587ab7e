"""The offline replica client, as the server package names it: ``storekeeper_client`` re-exported.

The client is its own distribution, ``storekeeper-client`` (``client/`` in this repository), so
a device installs it without the server's packages. This module keeps ``storekeeper.client``
working for code written before the split; new code imports ``storekeeper_client``.
"""

from storekeeper_client import (
    Mutation,
    Offline,
    Replica,
    Stock,
    SyncError,
    SyncSummary,
    Verdict,
)

__all__ = ["Mutation", "Offline", "Replica", "Stock", "SyncError", "SyncSummary", "Verdict"]
