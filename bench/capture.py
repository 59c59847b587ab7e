"""The statements one order placement issues: captured from the real app, and from the replay.

The W2 ceiling is only fair while it replays what the app does; each run captures both sides
for one single-line order and reports any statement kind found on one side only.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event

from bench import replay, seed
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container
from storekeeper.inventory.domain import Point

_KIND = re.compile(
    r"^\s*(?:(SELECT)\b.*?\bFROM\s+(\w+)|(INSERT)\s+INTO\s+(\w+)|(UPDATE)\s+(\w+)"
    r"|(DELETE)\s+FROM\s+(\w+))",
    re.IGNORECASE | re.DOTALL,
)


def kind(sql: str) -> str | None:
    """``VERB table`` of a statement; None for transaction control and pragmas."""
    match = _KIND.match(sql)
    if match is None:
        return None
    verb, table = [g for g in match.groups() if g]
    return f"{verb.upper()} {table}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Statement kinds issued per single-line order by the app and by the replay."""

    app: list[str]
    replay: list[str]

    @property
    def only_in_app(self) -> list[str]:
        """Kinds the replay leaves out: the ceiling would be too high."""
        return sorted(set(self.app) - set(self.replay))

    @property
    def only_in_replay(self) -> list[str]:
        """Kinds the app does not issue: the ceiling would be too low."""
        return sorted(set(self.replay) - set(self.app))

    def to_json(self) -> dict[str, Any]:
        """Both sequences, counted per kind."""
        return {
            "app_statements": len(self.app),
            "replay_statements": len(self.replay),
            "app": dict(Counter(self.app)),
            "replay": dict(Counter(self.replay)),
            "only_in_app": self.only_in_app,
            "only_in_replay": self.only_in_replay,
        }


async def _post_order(container: Container, token: str, sku: str) -> None:
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://capture") as client:
        response = await client.post(
            "/api/v1/orders",
            json={
                "lines": [{"sku": sku, "qty": 1}],
                "ship_to": {"lat": 53.08, "lon": 8.8},
                "payment": {"method": "manual"},
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        )
    response.raise_for_status()


def app_statements(container: Container, customer: seed.Customer, sku: str) -> list[str]:
    """The statement kinds of one order placed through the real app, in process."""
    captured: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        found = kind(statement)
        if found:
            captured.append(found)

    event.listen(container.db.engine, "before_cursor_execute", listener)
    try:
        asyncio.run(_post_order(container, customer.token, sku))
    finally:
        event.remove(container.db.engine, "before_cursor_execute", listener)
    return captured


class _RecordingCursor:
    def __init__(self, cursor: Any, log: list[str]) -> None:
        self._cursor, self._log = cursor, log

    def execute(self, sql: str, params: Any = None) -> Any:
        self._log.extend(k for k in [kind(sql)] if k)
        return self._cursor.execute(sql, params or ())

    def executemany(self, sql: str, rows: Any) -> Any:
        self._log.extend(k for k in [kind(sql)] if k)
        return self._cursor.executemany(sql, rows)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()


class _RecordingConnection:
    def __init__(self, conn: Any, log: list[str]) -> None:
        self._conn, self._log = conn, log

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self._conn.cursor(), self._log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def replay_statements(backend: str, target: str, customer: seed.Customer, sku: str) -> list[str]:
    """The statement kinds the replay issues for the same single-line order."""
    driver = replay.driver_for(backend, target)
    captured: list[str] = []
    conn = driver.connect()
    try:
        replayer = replay.Replay(
            driver, replay.statements(backend), _RecordingConnection(conn, captured)
        )
        replayer.place(
            replay.RawOrder(
                customer.id,
                customer.session_id,
                f"capture-{uuid.uuid4()}",
                {sku: 1},
                Point(53.08, 8.8),
            )
        )
    finally:
        conn.close()
    return captured


def compare(
    container: Container, backend: str, target: str, customer: seed.Customer, sku: str
) -> Comparison:
    """Place one order each way and compare what they issued."""
    return Comparison(
        app=app_statements(container, customer, sku),
        replay=replay_statements(backend, target, customer, sku),
    )
