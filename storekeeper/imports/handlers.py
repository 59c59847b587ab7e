"""What imports registers at start-up: the job that runs an uploaded import."""

from __future__ import annotations

from typing import Any

from storekeeper.db import Database
from storekeeper.imports import service
from storekeeper.tasks.registry import Registry


def register(registry: Registry) -> None:
    """Subscribe the imports job."""
    registry.job(service.RUN_IMPORT, run_import)


def run_import(args: dict[str, Any], *, db: Database) -> None:
    """Run (or go on with) an import; a crash mid-way is retried from its last batch."""
    service.run(db, run_id=int(args["run"]))
