"""Use cases of the accounts context: users, sign-in sessions and tokens, two-factor, devices.

Tokens are JWTs naming a server-side session (``accounts_session``). Each request checks the
session and the account (``principal_for``), so logout, revocation, disabling and role changes
take effect at once rather than when a token expires. Refresh tokens rotate: each use issues a
new one and retires the old; presenting a retired one revokes the whole session (RFC 6819 5.2.2.3,
OAuth 2.0 Security BCP 4.14).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, passwords, security, totp
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.events import AccountRegistered
from storekeeper.accounts.models import AuthSession, RecoveryCode, User
from storekeeper.accounts.schemas import TokenPair
from storekeeper.config import Settings
from storekeeper.db import Database, as_aware, utcnow
from storekeeper.errors import (
    Conflict,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from storekeeper.events import outbox

LOGIN, DEVICE = "login", "device"


class DuplicateEmail(Conflict):
    """An account with that e-mail exists already."""

    code = "duplicate_email"


class TwoFactorSetupRequired(PermissionDenied):
    """The account's role must use two-factor sign-in and has not set it up yet."""

    code = "two_factor_setup_required"


def _normalise(email: str) -> str:
    return email.strip().lower()


# --- users ---------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: Role,
    warehouses: list[str] | None = None,
    actor_id: uuid.UUID | None = None,
) -> User:
    """Create an account; the e-mail is unique regardless of case, the password must be strong."""
    if role is Role.DEVICE:
        raise InvalidRequest("devices get tokens from POST /devices", code="is_a_device")
    email = _normalise(email)
    passwords.check(password, email=email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(f"an account with e-mail {email} exists already")
    user = User(
        email=email,
        password_hash=security.hash_password(password),
        role=role.value,
        warehouses=sorted(set(warehouses or [])),
    )
    session.add(user)
    session.flush()
    if actor_id is not None:
        audit.record(session, "user_created", user_id=user.id, actor_id=actor_id, role=role.value)
    return user


def register(session: Session, *, email: str, password: str, address: str | None = None) -> User:
    """Sign a customer up; announces ``account.registered`` (the welcome e-mail follows)."""
    user = create_user(session, email=email, password=password, role=Role.CUSTOMER)
    outbox.record(session, AccountRegistered(user_id=str(user.id), email=user.email))
    audit.record(session, "registered", user_id=user.id, address=address)
    return user


def email_of(session: Session, *, user_id: uuid.UUID) -> str:
    """Where to write to the user (for notifications)."""
    return get_or_raise(session, user_id=user_id).email


def staff_emails(session: Session) -> list[str]:
    """Addresses of the active managers and admins (who get operational alerts)."""
    query = (
        select(User.email)
        .where(User.role.in_([Role.ADMIN.value, Role.MANAGER.value]), User.is_active)
        .order_by(User.email)
    )
    return list(session.scalars(query))


def get_or_raise(session: Session, *, user_id: uuid.UUID) -> User:
    """The user with ``user_id``."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


def count(session: Session) -> int:
    """How many accounts exist."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def list_(session: Session) -> list[User]:
    """Every account except devices, oldest first (devices are listed by ``list_devices``)."""
    return list(
        session.scalars(
            select(User).where(User.role != Role.DEVICE.value).order_by(User.created_at, User.email)
        )
    )


def update(
    session: Session,
    *,
    user_id: uuid.UUID,
    role: Role | None,
    is_active: bool | None,
    warehouses: list[str] | None,
    actor_id: uuid.UUID,
) -> User:
    """Change an account's role, active flag or warehouses; disabling ends its sessions."""
    user = get_or_raise(session, user_id=user_id)
    if user.role == Role.DEVICE.value:
        raise InvalidRequest("devices are managed under /devices", code="is_a_device")
    if role is not None and role.value != user.role:
        audit.record(
            session, "role_changed", user_id=user.id, actor_id=actor_id, old=user.role, new=role
        )
        user.role = role.value
    if warehouses is not None:
        user.warehouses = sorted(set(warehouses))
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        audit.record(
            session,
            "user_enabled" if is_active else "user_disabled",
            user_id=user.id,
            actor_id=actor_id,
        )
        if not is_active:
            _revoke_all(session, user.id, reason="user_disabled")
    session.flush()
    return user


# --- signing in ----------------------------------------------------------------------------


def sign_in(
    db: Database,
    settings: Settings,
    *,
    key: str,
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
            user_id = _authenticate(session, email=email, password=password)
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
            return _pair(key, settings, user.id, auth_session.id, refresh_jti)
    except NotAuthenticated as exc:
        audit.record_now(
            db, "login_failed", address=address, email=_normalise(email)[:254], reason=exc.code
        )
        raise


def _authenticate(session: Session, *, email: str, password: str) -> uuid.UUID:
    user = session.scalar(select(User).where(User.email == _normalise(email)))
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


def open_session_for(session: Session, settings: Settings, *, key: str, user: User) -> TokenPair:
    """A session and tokens for ``user`` without a password (tests, tools acting for a user)."""
    auth_session, refresh_jti = _open_session(session, user, ttl_s=settings.refresh_token_ttl_s)
    return _pair(key, settings, user.id, auth_session.id, refresh_jti)


def _pair(
    key: str, settings: Settings, user_id: uuid.UUID, session_id: uuid.UUID, refresh_jti: str
) -> TokenPair:
    def token(kind: security.TokenType, ttl_s: int, jti: str | None = None) -> str:
        return security.issue_token(
            key=key,
            user_id=user_id,
            session_id=session_id,
            token_type=kind,
            ttl=timedelta(seconds=ttl_s),
            jti=jti,
        )

    return TokenPair(
        access_token=token("access", settings.access_token_ttl_s),
        refresh_token=token("refresh", settings.refresh_token_ttl_s, refresh_jti),
        expires_in=settings.access_token_ttl_s,
    )


def refresh(
    db: Database, settings: Settings, *, key: str, refresh_token: str, address: str | None
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
            _revoke(auth_session, reason="refresh_token_reuse")
            audit.record(
                session,
                "refresh_token_reuse",
                user_id=user.id,
                address=address,
                session_id=str(auth_session.id),
            )
        else:
            auth_session.refresh_jti = security.new_jti()
            pair = _pair(key, settings, user.id, auth_session.id, auth_session.refresh_jti)
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
        _revoke(auth_session, reason="logout")
        audit.record(session, "logout", user_id=principal.user_id)


def _alive(auth_session: AuthSession) -> bool:
    return auth_session.revoked_at is None and auth_session.expires_at > utcnow()


def _revoke(auth_session: AuthSession, *, reason: str) -> None:
    auth_session.revoked_at = utcnow()
    auth_session.revoked_reason = reason


def _revoke_all(session: Session, user_id: uuid.UUID, *, reason: str) -> None:
    session.execute(
        sql_update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def principal_for(
    connection: Connection, claims: security.TokenClaims, *, two_factor_roles: Collection[str]
) -> Principal:
    """The caller a verified token names, if its session and account are still good; else 401.

    One indexed read per request: the price of revocation that works at once. A caller whose
    role is in ``two_factor_roles`` without two-factor sign-in on comes back as
    ``PendingTwoFactor``.
    """
    row = connection.execute(
        select(
            User.role,
            User.is_active,
            User.warehouses,
            AuthSession.user_id,
            AuthSession.kind,
            AuthSession.scope,
            User.totp_enabled,
            AuthSession.expires_at,
            AuthSession.revoked_at,
        )
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == claims.session_id)
    ).first()
    expected_kind = DEVICE if claims.token_type == "device" else LOGIN
    if (
        row is None
        or row.user_id != claims.user_id
        or row.kind != expected_kind
        or row.revoked_at is not None
        or (as_aware(row.expires_at) or utcnow()) <= utcnow()
        or not row.is_active
    ):
        raise NotAuthenticated("token revoked or session ended", code="invalid_token")
    principal = Principal(
        user_id=claims.user_id,
        role=Role(row.role),
        session_id=claims.session_id,
        warehouses=frozenset(row.warehouses or ()),
        scope=row.scope,
    )
    if row.role in two_factor_roles and not row.totp_enabled:
        return _needs_two_factor(principal)
    return principal


@dataclass(frozen=True, slots=True)
class PendingTwoFactor(Principal):
    """A caller who must set up two-factor sign-in before doing anything else."""


def _needs_two_factor(principal: Principal) -> Principal:
    return PendingTwoFactor(
        user_id=principal.user_id,
        role=principal.role,
        session_id=principal.session_id,
        warehouses=principal.warehouses,
        scope=principal.scope,
    )


def ensure_two_factor_done(principal: Principal) -> None:
    """Refuse callers whose role requires two-factor sign-in until they have set it up."""
    if isinstance(principal, PendingTwoFactor):
        raise TwoFactorSetupRequired(
            "your role must use two-factor sign-in: set it up at /auth/2fa/setup first"
        )


def get_active_or_raise(session: Session, *, user_id: uuid.UUID) -> User:
    """The user a token names, if the account still exists and is active; else 401."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("account disabled or gone", code="invalid_token")
    return user


# --- two-factor ----------------------------------------------------------------------------


def setup_two_factor(session: Session, *, user_id: uuid.UUID) -> tuple[str, str]:
    """A new TOTP secret for the user (replacing an unconfirmed one) and its ``otpauth://`` URI."""
    user = get_active_or_raise(session, user_id=user_id)
    if user.totp_enabled:
        raise Conflict("two-factor sign-in is already on", code="two_factor_enabled")
    user.totp_secret = totp.new_secret()
    return user.totp_secret, totp.provisioning_uri(user.totp_secret, email=user.email)


def enable_two_factor(session: Session, *, principal: Principal, code: str) -> list[str]:
    """Confirm the set-up secret with a current code; returns recovery codes, shown only now."""
    user = get_active_or_raise(session, user_id=principal.user_id)
    if user.totp_enabled:
        raise Conflict("two-factor sign-in is already on", code="two_factor_enabled")
    if not user.totp_secret:
        raise Conflict("call /auth/2fa/setup first", code="two_factor_not_set_up")
    step = totp.accepted_step(user.totp_secret, code, last_step=user.totp_last_step)
    if step is None:
        raise InvalidRequest("invalid one-time code", code="invalid_otp")
    user.totp_enabled, user.totp_last_step = True, step
    codes = totp.new_recovery_codes()
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(c)) for c in codes
    )
    audit.record(session, "two_factor_enabled", user_id=user.id)
    return codes


# --- devices -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A device and its token (the token is shown once, at creation)."""

    device: AuthSession
    token: str


def create_device(
    session: Session, settings: Settings, *, key: str, label: str, scope: str, actor_id: uuid.UUID
) -> DeviceToken:
    """A sensor or point-of-sale box with a long-lived token bound to ``scope``."""
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
    audit.record(
        session, "device_created", user_id=user.id, actor_id=actor_id, scope=scope, label=label
    )
    return DeviceToken(device, token)


def list_devices(session: Session) -> list[AuthSession]:
    """Every device token, newest first."""
    return list(
        session.scalars(
            select(AuthSession)
            .where(AuthSession.kind == DEVICE)
            .order_by(AuthSession.created_at.desc())
        )
    )


def revoke_device(session: Session, *, device_id: uuid.UUID, actor_id: uuid.UUID) -> AuthSession:
    """Revoke a device's token at once."""
    device = session.get(AuthSession, device_id)
    if device is None or device.kind != DEVICE:
        raise NotFound("no such device", code="device_not_found")
    if device.revoked_at is None:
        _revoke(device, reason="revoked_by_admin")
        audit.record(session, "device_revoked", user_id=device.user_id, actor_id=actor_id)
    return device
