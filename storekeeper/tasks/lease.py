"""A leader lease in the database: one process at a time relays events and runs the sweepers.

A row per lease name with its holder and expiry. Works the same on SQLite and PostgreSQL and
needs no extra server. Two holders can overlap only if one stalls past the expiry while still
working; everything done under a lease is safe to repeat (the inbox and job claims make it so),
so an overlap costs duplicate work, never a wrong result.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, or_, update

from storekeeper.db import Database, insert_ignoring_conflicts, utcnow
from storekeeper.tasks.models import Lease

_lease = cast(Table, Lease.__table__)


class LeaderLease:
    """Holds the lease ``name`` for this process while ``hold()`` keeps being called."""

    def __init__(self, db: Database, name: str, *, ttl_s: float = 15.0) -> None:
        self._db, self.name, self._ttl = db, name, timedelta(seconds=ttl_s)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held_until: datetime | None = None

    def hold(self) -> bool:
        """Take or renew the lease; True while this process is the leader.

        Renews only when half the lease has run out, so a leader polling every fraction of a
        second writes once every few seconds.
        """
        now = utcnow()
        if self._held_until is not None and self._held_until - now > self._ttl / 2:
            return True
        until = now + self._ttl
        with self._db.transaction() as session:
            connection = session.connection()
            taken = connection.execute(
                update(_lease)
                .where(
                    _lease.c.name == self.name,
                    or_(_lease.c.holder == self.holder, _lease.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=until)
                .returning(_lease.c.name)
            ).first()
            if taken is None:
                # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT inserts.
                taken = connection.execute(
                    insert_ignoring_conflicts(self._db.dialect, _lease)
                    .values(name=self.name, holder=self.holder, expires_at=until)
                    .returning(_lease.c.name)
                ).first()
        self._held_until = until if taken is not None else None
        return taken is not None

    def release(self) -> None:
        """Give the lease up at once, so another process need not wait for it to expire."""
        if self._held_until is None:
            return
        with self._db.transaction() as session:
            session.connection().execute(
                update(_lease)
                .where(_lease.c.name == self.name, _lease.c.holder == self.holder)
                .values(expires_at=utcnow())
            )
        self._held_until = None
