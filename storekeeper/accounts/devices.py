"""Devices (sensors, point-of-sale boxes): long-lived tokens bound to a scope, and revoking them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, security, sessions
from storekeeper.accounts.domain import Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import DEVICE, AuthSession, User
from storekeeper.config import Settings
from storekeeper.db import utcnow
from storekeeper.errors import NotFound


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A device and its token (the token is shown once, at creation)."""

    device: AuthSession
    token: str


def create_device(
    session: Session,
    settings: Settings,
    *,
    key: Keyring,
    label: str,
    scope: str,
    actor_id: uuid.UUID,
    purpose: str | None = None,
) -> DeviceToken:
    """A sensor or point-of-sale box with a long-lived token bound to ``scope`` and ``purpose``.

    ``purpose`` (``policy.PURPOSES``): ``sensor`` sends readings only, ``till`` syncs and reads;
    None leaves the token unrestricted, as tokens issued before purposes existed.
    """
    user = User(
        email=f"device-{uuid.uuid4().hex[:12]}@devices.invalid",
        # No password can match: devices sign in only with their token.
        password_hash=security.hash_password(secrets.token_urlsafe(32)),
        role=Role.DEVICE.value,
    )
    session.add(user)
    session.flush()
    device = AuthSession(
        user_id=user.id,
        kind=DEVICE,
        scope=scope,
        label=label,
        purpose=purpose,
        expires_at=utcnow() + timedelta(seconds=settings.device_token_ttl_s),
    )
    session.add(device)
    session.flush()
    token = security.issue_token(
        key=key,
        user_id=user.id,
        session_id=device.id,
        token_type="device",  # noqa: S106 - a token kind, not a password
        ttl=timedelta(seconds=settings.device_token_ttl_s),
    )
    device.key_id = security.key_id_of(token)
    audit.record(
        session,
        "device_created",
        user_id=user.id,
        actor_id=actor_id,
        scope=scope,
        label=label,
        purpose=purpose,
    )
    return DeviceToken(device, token)


def list_devices(
    session: Session, *, before: uuid.UUID | None = None, limit: int | None = None
) -> list[AuthSession]:
    """Every device token, newest first; keyset-paged by the id ``before`` of the previous
    page's last device."""
    query = select(AuthSession).where(AuthSession.kind == DEVICE)
    if before is not None:
        since = select(AuthSession.created_at).where(AuthSession.id == before).scalar_subquery()
        cursor = literal(before, AuthSession.id.type)
        query = query.where(tuple_(AuthSession.created_at, AuthSession.id) < tuple_(since, cursor))
    query = query.order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
    if limit is not None:
        query = query.limit(max(1, limit))
    return list(session.scalars(query))


def revoke_device(session: Session, *, device_id: uuid.UUID, actor_id: uuid.UUID) -> AuthSession:
    """Revoke a device's token at once."""
    device = session.get(AuthSession, device_id)
    if device is None or device.kind != DEVICE:
        raise NotFound("no such device", code="device_not_found")
    if device.revoked_at is None:
        sessions.revoke(device, reason="revoked_by_admin")
        audit.record(session, "device_revoked", user_id=device.user_id, actor_id=actor_id)
    return device
