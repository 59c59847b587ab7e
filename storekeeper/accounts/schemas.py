"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from storekeeper.accounts.domain import MIN_PASSWORD_LENGTH, Role


class UserCreate(BaseModel):
    """A new account made by an admin."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    role: Role


class Registration(BaseModel):
    """A customer signing themselves up."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


class UserUpdate(BaseModel):
    """Changes an admin makes to an account: its role, or disabling it."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None


class UserRead(BaseModel):
    """An account as the API shows it (never the hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime


class TokenPair(BaseModel):
    """OAuth2 token response with a refresh token beside the access token."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshRequest(BaseModel):
    """A refresh token to trade for a new pair."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)
