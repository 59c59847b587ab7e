"""Changing a password: by its owner, by an admin, or through a single-use link sent by e-mail.

Each change applies the password policy, ends sessions (the owner's other sessions; every
session after an admin's or a link's reset) and is written to the audit log. Reset links carry
a random token whose SHA-256 alone is stored; a token works once and until it expires.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, passwords, security, sessions
from storekeeper.accounts.domain import Principal, Role, normalise_email
from storekeeper.accounts.events import PasswordResetRequested
from storekeeper.accounts.models import AuthSession, PasswordReset, User
from storekeeper.accounts.users import get_active_or_raise, get_or_raise
from storekeeper.db import as_aware, utcnow
from storekeeper.errors import InvalidRequest, NotAuthenticated
from storekeeper.events import outbox


class InvalidResetToken(InvalidRequest):
    """The reset token is unknown, used already or expired."""

    code = "invalid_reset_token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _set_password(user: User, password: str) -> None:
    passwords.check(password, email=user.email)
    user.password_hash = security.hash_password(password)


def change_password(
    session: Session,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
    address: str | None,
) -> None:
    """Set a new password after checking the current one; every other session of the user ends."""
    user = get_active_or_raise(session, user_id=principal.user_id)
    if user.role == Role.DEVICE.value:
        raise InvalidRequest("devices have no password", code="is_a_device")
    if not security.verify_password(current_password, user.password_hash):
        raise NotAuthenticated("the current password is wrong", code="invalid_credentials")
    _set_password(user, new_password)
    others = sql_update(AuthSession).where(
        AuthSession.user_id == user.id,
        AuthSession.revoked_at.is_(None),
        AuthSession.id != principal.session_id,
    )
    session.execute(others.values(revoked_at=utcnow(), revoked_reason="password_changed"))
    audit.record(session, "password_changed", user_id=user.id, address=address)


def reset_by_admin(
    session: Session, *, user_id: uuid.UUID, new_password: str, actor_id: uuid.UUID
) -> User:
    """An admin sets a user's password; every session of the user ends."""
    user = get_or_raise(session, user_id=user_id)
    if user.role == Role.DEVICE.value:
        raise InvalidRequest("devices are managed under /devices", code="is_a_device")
    _set_password(user, new_password)
    sessions.revoke_all(session, user_id=user.id, reason="password_reset")
    audit.record(session, "password_reset_by_admin", user_id=user.id, actor_id=actor_id)
    return user


def request_reset(session: Session, *, email: str, ttl_s: int, address: str | None) -> None:
    """For an active person's account, a single-use reset token mailed to it; else nothing.

    The caller answers the same either way, so the answer does not tell whether the account
    exists.
    """
    email = normalise_email(email)
    user = session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active or user.role == Role.DEVICE.value:
        audit.record(session, "password_reset_refused", address=address, email=email[:254])
        return
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(seconds=ttl_s)
    session.add(PasswordReset(user_id=user.id, token_hash=_hash(token), expires_at=expires_at))
    outbox.record(
        session,
        PasswordResetRequested(
            user_id=str(user.id),
            email=user.email,
            token=token,
            expires_at=expires_at.isoformat(),
            valid_minutes=max(1, ttl_s // 60),
        ),
    )
    audit.record(session, "password_reset_requested", user_id=user.id, address=address)


def confirm_reset(session: Session, *, token: str, new_password: str, address: str | None) -> None:
    """Set the password named by a reset token, once; every session of the user ends."""
    reset = session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == _hash(token)).with_for_update()
    )
    now = utcnow()
    if reset is None or reset.used_at is not None or (as_aware(reset.expires_at) or now) <= now:
        raise InvalidResetToken("this reset link is unknown, used or expired; ask for a new one")
    user = get_or_raise(session, user_id=reset.user_id)
    if not user.is_active:
        raise InvalidResetToken("this reset link is unknown, used or expired; ask for a new one")
    _set_password(user, new_password)
    reset.used_at = now
    # Every other link of the user dies with this one.
    session.execute(
        sql_update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    sessions.revoke_all(session, user_id=user.id, reason="password_reset")
    audit.record(session, "password_reset", user_id=user.id, address=address)
