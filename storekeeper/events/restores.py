"""The outbox's generation: which restore from a backup the database's event history comes from.

Readers that keep a position in the outbox outside the database (a replica's sync cursor) hold
it for one history. A restore rewinds that history to the backup point and then grows a new one,
so a position taken after the backup point names events the restored outbox never had (and, on
PostgreSQL, transaction ids of another cluster). Each restore therefore starts a new generation,
and a position from another generation is not trusted.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection

from storekeeper.db import utcnow
from storekeeper.events.models import RestoreRecord

_restore = cast(Table, RestoreRecord.__table__)
NEVER_RESTORED = ""  # the generation of a database that was never restored from a backup


def generation(connection: Connection) -> str:
    """The current generation: the newest restore's, or ``NEVER_RESTORED``."""
    newest = connection.execute(
        select(_restore.c.generation).order_by(_restore.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return newest or NEVER_RESTORED


def start_generation(
    connection: Connection, *, backup_started_at: datetime | None, backup_point: int | None
) -> str:
    """Record a restore and return its new, random generation (two restores of one backup
    differ too: replicas may have synced with the first)."""
    new = secrets.token_hex(8)
    connection.execute(
        insert(_restore).values(
            generation=new,
            restored_at=utcnow(),
            backup_started_at=backup_started_at,
            backup_point=backup_point,
        )
    )
    return new
