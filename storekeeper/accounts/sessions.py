"""Sign-in sessions: password sign-in with its second factor, token pairs, refresh, logout.

Tokens are JWTs naming a server-side session (``accounts_session``), checked on every request
(``authentication``), so logout, revocation, disabling and role changes take effect at once
rather than when a token expires. Refresh tokens rotate: each use issues a new one and retires
the old; presenting a retired one revokes the whole session (RFC 6819 5.2.2.3, OAuth 2.0
Security BCP 4.14).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, security, totp
from storekeeper.accounts.domain import Principal, Role, normalise_email
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import LOGIN, AuthSession, RecoveryCode, User
from storekeeper.accounts.schemas import TokenPair
from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.errors import NotAuthenticated


def sign_in(
    db: Database,
    settings: Settings,
    *,
    key: Keyring,
    email: str,
    password: str,
    otp: str | None,
    address: str | None,
) -> TokenPair:
    """Check the credentials (and the second factor), open a session, issue its tokens.

    Every failure answers with the same message for unknown e-mails, wrong passwords and
    disabled accounts, after the same argon2 work, and is written to the audit log.
    """
    try:
        # The argon2 check (tens of milliseconds) runs outside the write transaction: on SQLite
        # that transaction holds the database's only write lock.
        with db.reading() as session:
            user_id = _check_password(session, email=email, password=password)
        with db.transaction() as session:
            # Locked: two sign-ins racing with one TOTP code must not both pass the replay check.
            user = session.scalar(select(User).where(User.id == user_id).with_for_update())
            if user is None or not user.is_active:
                raise NotAuthenticated("incorrect e-mail or password", code="invalid_credentials")
            if security.needs_rehash(user.password_hash):
                user.password_hash = security.hash_password(password)
            _second_factor(session, user, otp=otp, address=address)
            auth_session, refresh_jti = _open_session(
                session, user, ttl_s=settings.refresh_token_ttl_s
            )
            audit.record(session, "login_succeeded", user_id=user.id, address=address)
            return _pair(key, settings, auth_session, refresh_jti)
    except NotAuthenticated as exc:
        audit.record_now(
            db, "login_failed", address=address, email=normalise_email(email)[:254], reason=exc.code
        )
        raise


def _check_password(session: Session, *, email: str, password: str) -> uuid.UUID:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    valid = security.verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active or user.role == Role.DEVICE.value:
        raise NotAuthenticated("incorrect e-mail or password", code="invalid_credentials")
    return user.id


def _second_factor(session: Session, user: User, *, otp: str | None, address: str | None) -> None:
    if not user.totp_enabled:
        return
    if not otp:
        raise NotAuthenticated("a one-time code is required", code="otp_required")
    if totp.looks_like_recovery_code(otp):
        code = session.scalar(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == totp.hash_recovery_code(otp),
                RecoveryCode.used_at.is_(None),
            )
        )
        if code is None:
            raise NotAuthenticated("invalid one-time code", code="invalid_otp")
        code.used_at = utcnow()
        audit.record(session, "recovery_code_used", user_id=user.id, address=address)
        return
    step = totp.accepted_step(user.totp_secret or "", otp, last_step=user.totp_last_step)
    if step is None:
        raise NotAuthenticated("invalid one-time code", code="invalid_otp")
    user.totp_last_step = step


def _open_session(session: Session, user: User, *, ttl_s: int) -> tuple[AuthSession, str]:
    refresh_jti = security.new_jti()
    auth_session = AuthSession(
        user_id=user.id,
        kind=LOGIN,
        refresh_jti=refresh_jti,
        expires_at=utcnow() + timedelta(seconds=ttl_s),
    )
    session.add(auth_session)
    session.flush()
    return auth_session, refresh_jti


def open_session_for(
    session: Session, settings: Settings, *, key: Keyring, user: User
) -> TokenPair:
    """A session and tokens for ``user`` without a password (tests, tools acting for a user)."""
    auth_session, refresh_jti = _open_session(session, user, ttl_s=settings.refresh_token_ttl_s)
    return _pair(key, settings, auth_session, refresh_jti)


def _pair(
    key: Keyring, settings: Settings, auth_session: AuthSession, refresh_jti: str
) -> TokenPair:
    """New tokens of ``auth_session``; the session records the key that signed them."""

    def token(kind: security.TokenType, ttl_s: int, jti: str | None = None) -> str:
        return security.issue_token(
            key=key,
            user_id=auth_session.user_id,
            session_id=auth_session.id,
            token_type=kind,
            ttl=timedelta(seconds=ttl_s),
            jti=jti,
        )

    pair = TokenPair(
        access_token=token("access", settings.access_token_ttl_s),
        refresh_token=token("refresh", settings.refresh_token_ttl_s, refresh_jti),
        expires_in=settings.access_token_ttl_s,
    )
    auth_session.key_id = security.key_id_of(pair.refresh_token)
    return pair


def browser_token(*, key: Keyring, settings: Settings, access_token: str) -> str:
    """An access token of the same session that lives as long as the session: the console's
    cookie. It is checked against the session on every request like any access token, so
    logout and revocation end it at once; it never leaves the browser's HttpOnly cookie."""
    claims = security.decode_token(access_token, key=key, expected_types=("access",))
    return security.issue_token(
        key=key,
        user_id=claims.user_id,
        session_id=claims.session_id,
        token_type="access",  # noqa: S106 - a token type, not a password
        ttl=timedelta(seconds=settings.refresh_token_ttl_s),
    )


def refresh(
    db: Database, settings: Settings, *, key: Keyring, refresh_token: str, address: str | None
) -> TokenPair:
    """Trade the session's current refresh token for a new pair; a retired one revokes it all."""
    claims = security.decode_token(refresh_token, key=key, expected_types=("refresh",))
    with db.transaction() as session:
        auth_session = session.scalar(
            select(AuthSession).where(AuthSession.id == claims.session_id).with_for_update()
        )
        user = session.get(User, claims.user_id)
        if (
            auth_session is None
            or auth_session.kind != LOGIN
            or auth_session.user_id != claims.user_id
            or not _alive(auth_session)
            or user is None
            or not user.is_active
        ):
            raise NotAuthenticated("session ended; sign in again", code="invalid_token")
        reused = auth_session.refresh_jti != claims.jti
        if reused:
            revoke(auth_session, reason="refresh_token_reuse")
            audit.record(
                session,
                "refresh_token_reuse",
                user_id=user.id,
                address=address,
                session_id=str(auth_session.id),
            )
        else:
            auth_session.refresh_jti = security.new_jti()
            pair = _pair(key, settings, auth_session, auth_session.refresh_jti)
    # Raised after the block so that the revocation commits.
    if reused:
        raise NotAuthenticated(
            "refresh token already used: the session is revoked, sign in again",
            code="refresh_token_reused",
        )
    return pair


def logout(session: Session, *, principal: Principal) -> None:
    """End the caller's session: its access and refresh tokens stop working at once."""
    if principal.session_id is None:
        return
    auth_session = session.get(AuthSession, principal.session_id)
    if auth_session is not None and auth_session.revoked_at is None:
        revoke(auth_session, reason="logout")
        audit.record(session, "logout", user_id=principal.user_id)


def _alive(auth_session: AuthSession) -> bool:
    return auth_session.revoked_at is None and auth_session.expires_at > utcnow()


def revoke(auth_session: AuthSession, *, reason: str) -> None:
    """End one session (a sign-in or a device token) now; ``reason`` goes into the row."""
    auth_session.revoked_at = utcnow()
    auth_session.revoked_reason = reason


def revoke_all(session: Session, *, user_id: uuid.UUID, reason: str) -> None:
    """End every session of the user now (the account was disabled)."""
    session.execute(
        sql_update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
