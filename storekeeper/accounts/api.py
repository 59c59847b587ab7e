"""HTTP routes of the accounts context: registration, tokens, users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, status
from fastapi.security import OAuth2PasswordRequestForm

from storekeeper.accounts import service
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.models import User
from storekeeper.accounts.schemas import (
    RefreshRequest,
    Registration,
    TokenPair,
    UserCreate,
    UserRead,
    UserUpdate,
)
from storekeeper.api.deps import ContainerDep, CurrentUser, DatabaseDep, require
from storekeeper.bootstrap import Container

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require(frozenset({Role.ADMIN})))]


def _tokens(container: Container, user: User) -> TokenPair:
    return service.issue_tokens(
        key=container.signing_key,
        user=user,
        access_ttl_s=container.settings.access_token_ttl_s,
        refresh_ttl_s=container.settings.refresh_token_ttl_s,
    )


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, response_model=UserRead)
def register(body: Registration, db: DatabaseDep) -> User:
    """Sign up as a customer."""
    with db.transaction() as session:
        return service.register(session, email=body.email, password=body.password)


@router.post("/auth/token", response_model=TokenPair)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    container: ContainerDep,
    otp: Annotated[str | None, Form(max_length=16)] = None,
) -> TokenPair:
    """Trade e-mail (as ``username``) and password for an access and a refresh token."""
    with container.db.transaction() as session:
        user = service.authenticate(session, email=form.username, password=form.password)
        return _tokens(container, user)


@router.post("/auth/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, container: ContainerDep) -> TokenPair:
    """Trade a refresh token for a new pair."""
    with container.db.reading() as session:
        user = service.refresh(session, key=container.signing_key, refresh_token=body.refresh_token)
        return _tokens(container, user)


@router.get("/me", response_model=UserRead)
def me(principal: CurrentUser, db: DatabaseDep) -> User:
    """The signed-in account."""
    with db.reading() as session:
        return service.get_active_or_raise(session, user_id=principal.user_id)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserRead)
def create_user(body: UserCreate, _: Admin, db: DatabaseDep) -> User:
    """Create an account with any role (admins only)."""
    with db.transaction() as session:
        return service.create_user(
            session, email=body.email, password=body.password, role=body.role
        )


@router.get("/users", response_model=list[UserRead])
def list_users(_: Admin, db: DatabaseDep) -> list[User]:
    """Every account (admins only)."""
    with db.reading() as session:
        return service.list_(session)


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: uuid.UUID, body: UserUpdate, _: Admin, db: DatabaseDep) -> User:
    """Change a user's role or disable the account (admins only)."""
    with db.transaction() as session:
        return service.update(session, user_id=user_id, role=body.role, is_active=body.is_active)
