"""Idempotency keys for order placement: a retry replays the first answer, never a second order.

The key is claimed (inserted) before any work is done, in the same transaction as the order. A
concurrent request with the same key then waits on the unique key (PostgreSQL) or on the write
lock (SQLite) and, once the first commits, finds the stored answer instead of ordering again.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from storekeeper.errors import Conflict
from storekeeper.ordering.models import IdempotencyRecord


class IdempotencyKeyReused(Conflict):
    """The key was used before with a different request body."""

    code = "idempotency_key_reused"


class RequestInProgress(Conflict):
    """The first request with this key has not finished yet."""

    code = "idempotency_key_in_progress"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer given to the first request with a key."""

    status_code: int
    body: dict[str, Any]


def fingerprint(canonical_body: bytes) -> str:
    """A digest of the request body, to tell a true retry from a reused key."""
    return hashlib.sha256(canonical_body).hexdigest()


def lookup(
    session: Session, *, user_id: uuid.UUID, key: str, request_hash: str
) -> StoredResponse | None:
    """The stored answer for this key, None if the key is new; 409 if it came with another body."""
    record = session.get(IdempotencyRecord, (user_id, key))
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        )
    if record.status_code is None or record.response is None:
        raise RequestInProgress("a request with this Idempotency-Key is still being processed")
    return StoredResponse(record.status_code, record.response)


def claim(
    session: Session, *, user_id: uuid.UUID, key: str, request_hash: str
) -> IdempotencyRecord:
    """Insert the key now, so that concurrent duplicates collide before doing any work."""
    record = IdempotencyRecord(user_id=user_id, key=key, request_hash=request_hash)
    session.add(record)
    session.flush()
    return record


def complete(record: IdempotencyRecord, *, status_code: int, body: dict[str, Any]) -> None:
    """Remember the answer given, for replays."""
    record.status_code = status_code
    record.response = body
