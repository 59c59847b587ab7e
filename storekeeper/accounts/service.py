"""Use cases of the accounts context: creating users, signing in, issuing tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storekeeper.accounts import security
from storekeeper.accounts.domain import Role
from storekeeper.accounts.events import AccountRegistered
from storekeeper.accounts.models import User
from storekeeper.accounts.schemas import TokenPair
from storekeeper.errors import Conflict, NotAuthenticated, NotFound
from storekeeper.events import outbox


class DuplicateEmail(Conflict):
    """An account with that e-mail exists already."""

    code = "duplicate_email"


def _normalise(email: str) -> str:
    return email.strip().lower()


def create_user(session: Session, *, email: str, password: str, role: Role) -> User:
    """Create an account; the e-mail is unique regardless of case."""
    email = _normalise(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateEmail(f"an account with e-mail {email} exists already")
    user = User(email=email, password_hash=security.hash_password(password), role=role.value)
    session.add(user)
    session.flush()
    return user


def register(session: Session, *, email: str, password: str) -> User:
    """Sign a customer up; announces ``account.registered`` (the welcome e-mail follows)."""
    user = create_user(session, email=email, password=password, role=Role.CUSTOMER)
    outbox.record(session, AccountRegistered(user_id=str(user.id), email=user.email))
    return user


def email_of(session: Session, *, user_id: uuid.UUID) -> str:
    """Where to write to the user (for notifications)."""
    return get_or_raise(session, user_id=user_id).email


def get_or_raise(session: Session, *, user_id: uuid.UUID) -> User:
    """The user with ``user_id``."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


def count(session: Session) -> int:
    """How many accounts exist."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The active user with these credentials; one message for every failure (no enumeration)."""
    user = session.scalar(select(User).where(User.email == _normalise(email)))
    valid = security.verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        raise NotAuthenticated("incorrect e-mail or password", code="invalid_credentials")
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    return user


def issue_tokens(*, key: str, user: User, access_ttl_s: int, refresh_ttl_s: int) -> TokenPair:
    """A fresh access and refresh token for ``user``."""

    def token(token_type: security.TokenType, ttl_s: int) -> str:
        return security.issue_token(
            key=key,
            user_id=user.id,
            role=user.role,
            token_type=token_type,
            ttl=timedelta(seconds=ttl_s),
        )

    return TokenPair(
        access_token=token("access", access_ttl_s),
        refresh_token=token("refresh", refresh_ttl_s),
        expires_in=access_ttl_s,
    )


def refresh(session: Session, *, key: str, refresh_token: str) -> User:
    """The still-active user a valid refresh token names."""
    claims = security.decode_token(refresh_token, key=key, expected_type="refresh")
    return get_active_or_raise(session, user_id=claims.user_id)


def get_active_or_raise(session: Session, *, user_id: uuid.UUID) -> User:
    """The user a token names, if the account still exists and is active; else 401."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("account disabled or gone", code="invalid_token")
    return user


def list_(session: Session) -> list[User]:
    """Every account, oldest first."""
    return list(session.scalars(select(User).order_by(User.created_at, User.email)))


def update(
    session: Session, *, user_id: uuid.UUID, role: Role | None, is_active: bool | None
) -> User:
    """Change an account's role or active flag."""
    user = get_or_raise(session, user_id=user_id)
    if role is not None:
        user.role = role.value
    if is_active is not None:
        user.is_active = is_active
    session.flush()
    return user
