"""Idempotency keys for order placement: a retry replays the first answer, never a second order.

The answer is stored under the key in the same transaction as the order. A concurrent request
with the same key either waits on the write lock and then finds the stored answer (SQLite), or
does its work, collides on the key's primary key when it stores its own answer, rolls back
everything, and replays the first answer instead (PostgreSQL). Either way: one order.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from storekeeper.db import Database, as_aware, utcnow
from storekeeper.errors import Conflict
from storekeeper.events.retention import Pruned, delete_in_batches
from storekeeper.ordering.models import IdempotencyRecord

_records = cast(Table, IdempotencyRecord.__table__)
_LOOKUP = select(_records.c.request_hash, _records.c.status_code, _records.c.response).where(
    _records.c.user_id == bindparam("user_id"), _records.c.key == bindparam("key")
)


class IdempotencyKeyReused(Conflict):
    """The key was used before with a different request body."""

    code = "idempotency_key_reused"


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
    record = session.connection().execute(_LOOKUP, {"user_id": user_id, "key": key}).one_or_none()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body"
        )
    return StoredResponse(record.status_code, record.response)


def remember(
    session: Session,
    *,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    """Store the answer under the key; a concurrent twin fails here with IntegrityError."""
    session.connection().execute(
        insert(_records),
        [
            {
                "user_id": user_id,
                "key": key,
                "request_hash": request_hash,
                "status_code": status_code,
                "response": body,
                "created_at": utcnow(),
            }
        ],
    )


def prune(db: Database, *, before: datetime, dry_run: bool = False) -> Pruned:
    """Forget keys stored before ``before`` (48 hours by default): a replay after that is a
    new request, as the API documents."""
    pruned = delete_in_batches(
        db,
        _records,
        where=_records.c.created_at < before,
        key=[_records.c.user_id, _records.c.key],
        dry_run=dry_run,
    )
    with db.reading() as session:
        oldest = session.connection().execute(select(func.min(_records.c.created_at))).scalar()
    return Pruned("ordering_idempotency", pruned, as_aware(oldest))
