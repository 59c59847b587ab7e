"""The security audit log: what happened to whose account, from where, done by whom."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from storekeeper.accounts.models import AuditEvent
from storekeeper.db import Database, utcnow

_audit = cast(Table, AuditEvent.__table__)
MAX_PAGE = 200
KINDS = (
    "device_created",
    "device_revoked",
    "event_retried",
    "event_skipped",
    "job_discarded",
    "job_retried",
    "login_failed",
    "login_succeeded",
    "logout",
    "password_changed",
    "password_reset",
    "password_reset_by_admin",
    "password_reset_refused",
    "password_reset_requested",
    "recovery_code_used",
    "refresh_token_reuse",
    "registered",
    "role_changed",
    "two_factor_enabled",
    "user_created",
    "user_disabled",
    "user_enabled",
)
"""The kinds of event this context records (for choosing one in a filter)."""


def record(
    session: Session,
    kind: str,
    *,
    user_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    """Add an event to the log within the caller's transaction."""
    session.connection().execute(
        insert(_audit),
        [
            {
                "at": utcnow(),
                "kind": kind,
                "user_id": user_id,
                "actor_id": actor_id,
                "address": address,
                "detail": detail,
            }
        ],
    )


def record_now(db: Database, kind: str, **fields: Any) -> None:
    """Add an event in a transaction of its own: for failures whose own transaction rolls back."""
    with db.transaction() as session:
        record(session, kind, **fields)


def list_(
    session: Session,
    *,
    kind: str | None,
    user_id: uuid.UUID | None,
    before: int | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """Newest first, optionally of one kind, about one user, at or after ``since`` and before
    ``until``; ``before`` pages by id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if kind is not None:
        query = query.where(AuditEvent.kind == kind)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(session.scalars(query.limit(max(1, min(limit, MAX_PAGE)))))
