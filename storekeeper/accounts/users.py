"""Accounts of people: sign-up, creation by an admin, look-ups, and changes to role and status."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, passwords, security, sessions
from storekeeper.accounts.domain import Role, normalise_email
from storekeeper.accounts.events import AccountRegistered
from storekeeper.accounts.models import User
from storekeeper.errors import Conflict, InvalidRequest, NotAuthenticated, NotFound
from storekeeper.events import outbox


class DuplicateEmail(Conflict):
    """An account with that e-mail exists already."""

    code = "duplicate_email"


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
    email = normalise_email(email)
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


def get_active_or_raise(session: Session, *, user_id: uuid.UUID) -> User:
    """The user a token names, if the account still exists and is active; else 401."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("account disabled or gone", code="invalid_token")
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
            sessions.revoke_all(session, user_id=user.id, reason="user_disabled")
    session.flush()
    return user
