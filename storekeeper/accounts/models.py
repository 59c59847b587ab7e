"""Tables of the accounts context: users, sign-in sessions, recovery codes, password resets, the
audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, JSONDocument, utcnow

LOGIN, DEVICE = "login", "device"
"""The kinds of ``AuthSession``: a person's sign-in, or a device's token."""


class User(Base):
    """A person or device that can sign in; ``role`` decides what it may do."""

    __tablename__ = "accounts_user"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Warehouse codes a clerk may act on (ignored for other roles).
    warehouses: Mapped[list[str]] = mapped_column(
        JSONDocument, default=list, server_default=text("'[]'")
    )
    # TOTP (RFC 6238): the secret once set up, whether it is confirmed, and the last time step
    # accepted, so that no code is accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    totp_last_step: Mapped[int] = mapped_column(default=0, server_default="0")


class AuthSession(Base):
    """One sign-in (a refresh-token family) or one device token.

    Every access token names its session, and each request checks that the session is alive,
    so logging out, disabling the user or revoking a device takes effect at once. A login
    session remembers the one refresh token that may be used next: presenting an older one means
    it was stolen and replayed, and the whole session is revoked.
    """

    __tablename__ = "accounts_session"
    __table_args__ = (Index("ix_accounts_session_user", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_user.id"))
    kind: Mapped[str] = mapped_column(String(16))  # LOGIN | DEVICE
    refresh_jti: Mapped[str | None] = mapped_column(String(64), default=None)
    # A device's scope, e.g. ``warehouse:BER``.
    scope: Mapped[str | None] = mapped_column(String(64), default=None)
    label: Mapped[str | None] = mapped_column(String(100), default=None)
    # A device token's purpose (``policy.PURPOSES``): ``sensor`` sends readings only, ``till``
    # syncs and reads. None: a token issued before purposes existed, allowed both.
    purpose: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    # The signing key of this session's newest tokens (``keys``); None: issued before key ids,
    # by ``root``.
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)


class SigningKey(Base):
    """A token-signing key (``keys``): the newest not retired signs, the others verify.

    ``root`` (``STOREKEEPER_SECRET_KEY``) has a row only once retired, without its secret.
    """

    __tablename__ = "accounts_signing_key"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class RecoveryCode(Base):
    """A single-use two-factor recovery code, stored as a SHA-256 (the code is random)."""

    __tablename__ = "accounts_recovery_code"
    __table_args__ = (Index("ix_accounts_recovery_code_user", "user_id"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_user.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class PasswordReset(Base):
    """A single-use password-reset token sent by e-mail, stored as a SHA-256 (it is random)."""

    __tablename__ = "accounts_password_reset"
    __table_args__ = (Index("ix_accounts_password_reset_user", "user_id"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts_user.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEvent(Base):
    """A security event: sign-ins and their failures, role changes, token reuse, revocations."""

    __tablename__ = "accounts_audit"
    __table_args__ = (Index("ix_accounts_audit_kind", "kind", "id"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    address: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
