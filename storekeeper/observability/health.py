"""Readiness: may this process take traffic? Database, schema revision and broker, checked.

``/healthz`` only says the process is alive; ``/readyz`` (this module) says whether a request
would succeed, so a load balancer or Kubernetes sends traffic elsewhere while it cannot.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storekeeper import migrations
from storekeeper.config import Settings
from storekeeper.db import Database

log = logging.getLogger(__name__)

OK = "ok"
BROKER_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's state (``ok`` or why not) and whether all passed."""

    checks: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """The names of the checks that did not pass."""
        return [name for name, state in self.checks.items() if state != OK]


@functools.cache
def _head_revision() -> str | None:
    # The revision shipped with the code cannot change while the process runs: read it once.
    return migrations.head_revision()


class ReadinessProbe:
    """Runs the checks; the broker's result is cached briefly so probes do not flood it."""

    def __init__(self, *, db: Database, settings: Settings, broker_cache_s: float = 2.0) -> None:
        """Check ``db`` and, when ``settings`` name one, the broker."""
        self._db = db
        self._broker_url = settings.broker_url
        self._broker_cache_s = broker_cache_s
        self._broker: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def check(self) -> Readiness:
        """Run every check now (the broker's at most every ``broker_cache_s``)."""
        checks = self._database()
        if self._broker_url:
            checks["broker"] = self._broker_state()
        return Readiness(checks)

    def _database(self) -> dict[str, str]:
        head = _head_revision()
        try:
            with self._db.reading() as session:
                connection = session.connection()
                connection.execute(text("SELECT 1"))
                revision = MigrationContext.configure(connection).get_current_revision()
        except Exception as exc:  # whatever the driver raises, the database is not usable
            log.warning("readiness: database unreachable: %s", exc)
            return {"database": "unreachable", "migrations": "unknown"}
        if revision == head:
            return {"database": OK, "migrations": OK}
        return {"database": OK, "migrations": f"database at {revision}, code expects {head}"}

    def _broker_state(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._broker is None or now - self._broker[0] >= self._broker_cache_s:
                self._broker = (now, _reach_broker(self._broker_url))
            return self._broker[1]


def _reach_broker(url: str) -> str:
    """``ok`` when the broker accepts a connection (AMQP or Redis handshake) within a second."""
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT_S) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(
                max_retries=1,
                interval_start=0,
                interval_step=0,
                interval_max=0,
                timeout=BROKER_TIMEOUT_S,
            )
    except Exception as exc:  # refused, timed out, bad credentials: all mean not ready
        log.warning("readiness: broker unreachable: %s", exc)
        return "unreachable"
    return OK
