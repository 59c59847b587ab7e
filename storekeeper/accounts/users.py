"""Accounts of people: sign-up, creation by an admin, look-ups, and changes to role and status."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, passwords, security, sessions
from storekeeper.accounts.domain import Role, normalise_email
from storekeeper.accounts.events import AccountRegistered
from storekeeper.accounts.models import User
from storekeeper.errors import Conflict, InvalidRequest, NotAuthenticated, NotFound
from storekeeper.events import outbox
from storekeeper.inventory import warehouses as inventory_warehouses


class DuplicateEmail(Conflict):
    """An account with that e-mail exists already."""

    code = "duplicate_email"


class LastAdmin(Conflict):
    """The change would leave no active admin to manage the accounts."""

    code = "last_admin"


class UnknownWarehouse(InvalidRequest):
    """A clerk assigned to a warehouse that does not exist."""

    code = "unknown_warehouse"


def _check_warehouses(session: Session, codes: list[str]) -> list[str]:
    """The codes sorted and deduplicated, if inventory knows each of them."""
    wanted = sorted(set(codes))
    missing = [c for c in wanted if not inventory_warehouses.has_warehouse(session, code=c)]
    if missing:
        raise UnknownWarehouse(f"no warehouse with code {', '.join(missing)}")
    return wanted


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
    codes = sorted(set(warehouses or []))
    if actor_id is not None:
        # An admin's request is checked against inventory; seeding and test fixtures create
        # clerks before (or without) their warehouses.
        codes = _check_warehouses(session, codes)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(f"an account with e-mail {email} exists already")
    user = User(
        email=email,
        password_hash=security.hash_password(password),
        role=role.value,
        warehouses=codes,
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


def id_by_email(session: Session, *, email: str) -> uuid.UUID | None:
    """The id of the account with ``email`` (any case), or None."""
    return session.scalar(select(User.id).where(User.email == normalise_email(email)))


def emails_by_id(session: Session, *, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The e-mail of each of ``user_ids`` that exists (for showing who a row belongs to)."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.email).where(User.id.in_(sorted(set(user_ids)))))
    return {row.id: row.email for row in rows}


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


def list_(
    session: Session,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[User]:
    """Accounts but devices (``list_devices``), oldest first, optionally filtered; keyset-paged
    by the e-mail ``after`` of the previous page's last account."""
    query = select(User).where(User.role != Role.DEVICE.value)
    if role is not None:
        query = query.where(User.role == role.value)
    if is_active is not None:
        query = query.where(User.is_active.is_(is_active))
    if after is not None:
        cursor = normalise_email(after)
        since = select(User.created_at).where(User.email == cursor).scalar_subquery()
        query = query.where(
            tuple_(User.created_at, User.email) > tuple_(since, literal(cursor, User.email.type))
        )
    query = query.order_by(User.created_at, User.email)
    if limit is not None:
        query = query.limit(max(1, limit))
    return list(session.scalars(query))


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
    if role is Role.DEVICE:
        raise InvalidRequest("devices are created with POST /devices", code="is_a_device")
    demoted = role is not None and role is not Role.ADMIN
    if user.role == Role.ADMIN.value and user.is_active and (demoted or is_active is False):
        _ensure_another_admin(session, user_id=user.id)
    if role is not None and role.value != user.role:
        audit.record(
            session, "role_changed", user_id=user.id, actor_id=actor_id, old=user.role, new=role
        )
        user.role = role.value
    if warehouses is not None:
        user.warehouses = _check_warehouses(session, warehouses)
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


def _ensure_another_admin(session: Session, *, user_id: uuid.UUID) -> None:
    """Raise LastAdmin unless an active admin other than ``user_id`` remains."""
    # Locked (PostgreSQL): two admins demoting each other at once must not both pass.
    others = session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.is_active, User.id != user_id)
        .with_for_update()
    ).first()
    if others is None:
        raise LastAdmin("this is the last active admin: make another admin first")
