"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from storekeeper.accounts.domain import Role
from storekeeper.accounts.passwords import MAX_LENGTH, MIN_LENGTH

# A warehouse code as inventory defines it (not imported: accounts does not depend on inventory).
WarehouseCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")
]
Password = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
Scope = Annotated[str, StringConstraints(pattern=r"^warehouse:[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")]


class UserCreate(BaseModel):
    """A new account made by an admin."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    role: Role
    warehouses: list[WarehouseCode] = Field(default_factory=list, max_length=100)


class Registration(BaseModel):
    """A customer signing themselves up."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password


class UserUpdate(BaseModel):
    """Changes an admin makes to an account: its role, its warehouses, or disabling it."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None
    warehouses: list[WarehouseCode] | None = Field(default=None, max_length=100)


class PasswordChange(BaseModel):
    """The caller's current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: Password


class PasswordSet(BaseModel):
    """A new password an admin sets for a user."""

    model_config = ConfigDict(extra="forbid")

    new_password: Password


class PasswordResetRequest(BaseModel):
    """Where to send a password-reset link."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class PasswordResetConfirm(BaseModel):
    """The token from a reset e-mail and the new password."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128)
    new_password: Password


class PasswordResetAccepted(BaseModel):
    """The same answer whether or not the account exists."""

    detail: str


class UserRead(BaseModel):
    """An account as the API shows it (never the hash or the TOTP secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    warehouses: list[str]
    two_factor_enabled: bool = Field(validation_alias="totp_enabled")
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


class TwoFactorSetup(BaseModel):
    """The secret to put into an authenticator app, also as an ``otpauth://`` URI (QR code)."""

    secret: str
    otpauth_uri: str


class TwoFactorCode(BaseModel):
    """A current code from the authenticator app."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class RecoveryCodes(BaseModel):
    """Single-use codes for signing in without the authenticator; shown only once."""

    recovery_codes: list[str]


class DeviceCreate(BaseModel):
    """A sensor or point-of-sale box to issue a token for."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scope: Scope
    # sensor: readings only; till (or handheld): sync and reads. Omitted: unrestricted, as the
    # tokens issued before purposes existed (deprecated: give every new device a purpose).
    purpose: Literal["sensor", "till"] | None = None


class DeviceRead(BaseModel):
    """A device token's record (not the token itself)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    label: str | None
    scope: str | None
    purpose: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class DeviceCreated(DeviceRead):
    """A new device with its token: store it on the device now, it is not shown again."""

    token: str


class AuditRead(BaseModel):
    """One security event."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    address: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """Audit events newest first; pass ``next_before`` as ``before`` for the next page."""

    items: list[AuditRead]
    next_before: int | None
