"""HTTP routes of the accounts context: sign-up, sign-in, tokens, two-factor, users, devices,
the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from storekeeper.accounts import audit, credentials, devices, sessions, two_factor, users
from storekeeper.accounts.domain import ADMINS, Principal
from storekeeper.accounts.models import AuthSession, User
from storekeeper.accounts.schemas import (
    AuditPage,
    AuditRead,
    DeviceCreate,
    DeviceCreated,
    DeviceRead,
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    PasswordSet,
    RecoveryCodes,
    RefreshRequest,
    Registration,
    TokenPair,
    TwoFactorCode,
    TwoFactorSetup,
    UserCreate,
    UserRead,
    UserUpdate,
)
from storekeeper.api.deps import (
    CurrentUserAllowingSetup,
    DatabaseDep,
    SettingsDep,
    SigningKeyDep,
    require,
)
from storekeeper.api.errors import responses
from storekeeper.ids import MAX_ID

router = APIRouter(tags=["accounts"])
Admin = Annotated[Principal, Depends(require(ADMINS))]


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=responses(409, 422, 429),
)
def register(body: Registration, request: Request, db: DatabaseDep) -> User:
    """Sign up as a customer (a welcome e-mail follows)."""
    with db.transaction() as session:
        return users.register(
            session, email=body.email, password=body.password, address=_address(request)
        )


@router.post(
    "/auth/token",
    response_model=TokenPair,
    responses=responses(401, 422, 429),
)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    signing_key: SigningKeyDep,
    otp: Annotated[
        str | None,
        Form(max_length=32, description="TOTP code or recovery code, when two-factor is on"),
    ] = None,
) -> TokenPair:
    """Trade e-mail (as ``username``), password and, with two-factor on, ``otp`` for tokens."""
    return sessions.sign_in(
        db,
        settings,
        key=signing_key,
        email=form.username,
        password=form.password,
        otp=otp,
        address=_address(request),
    )


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses=responses(401, 422, 429),
)
def refresh(
    body: RefreshRequest,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    signing_key: SigningKeyDep,
) -> TokenPair:
    """Trade the current refresh token for a new pair; each refresh token works once."""
    return sessions.refresh(
        db,
        settings,
        key=signing_key,
        refresh_token=body.refresh_token,
        address=_address(request),
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401),
)
def logout(principal: CurrentUserAllowingSetup, db: DatabaseDep) -> Response:
    """End this sign-in: its access and refresh tokens stop working at once."""
    with db.transaction() as session:
        sessions.logout(session, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/2fa/setup",
    response_model=TwoFactorSetup,
    responses=responses(401, 409),
)
def two_factor_setup(principal: CurrentUserAllowingSetup, db: DatabaseDep) -> TwoFactorSetup:
    """Start two-factor sign-in: a new secret for an authenticator app (confirm it next)."""
    with db.transaction() as session:
        secret, uri = two_factor.setup_two_factor(session, user_id=principal.user_id)
    return TwoFactorSetup(secret=secret, otpauth_uri=uri)


@router.post(
    "/auth/2fa/enable",
    response_model=RecoveryCodes,
    responses=responses(401, 409, 422),
)
def two_factor_enable(
    body: TwoFactorCode, principal: CurrentUserAllowingSetup, db: DatabaseDep
) -> RecoveryCodes:
    """Turn two-factor on by confirming a current code; answers the recovery codes, once."""
    with db.transaction() as session:
        codes = two_factor.enable_two_factor(session, principal=principal, code=body.code)
    return RecoveryCodes(recovery_codes=codes)


@router.get(
    "/me",
    response_model=UserRead,
    responses=responses(401),
)
def me(principal: CurrentUserAllowingSetup, db: DatabaseDep) -> User:
    """The signed-in account."""
    with db.reading() as session:
        return users.get_active_or_raise(session, user_id=principal.user_id)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 422),
)
def change_password(
    body: PasswordChange, request: Request, principal: CurrentUserAllowingSetup, db: DatabaseDep
) -> Response:
    """Change your password (the current one is required); your other sessions end."""
    with db.transaction() as session:
        credentials.change_password(
            session,
            principal=principal,
            current_password=body.current_password,
            new_password=body.new_password,
            address=_address(request),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_RESET_ACCEPTED = PasswordResetAccepted(
    detail="if an active account has this e-mail, a reset link is on its way"
)


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
    responses=responses(422, 429),
)
def request_password_reset(
    body: PasswordResetRequest, request: Request, db: DatabaseDep, settings: SettingsDep
) -> PasswordResetAccepted:
    """Mail a single-use reset link; the answer is the same whether the account exists or not."""
    with db.transaction() as session:
        credentials.request_reset(
            session,
            email=body.email,
            ttl_s=settings.password_reset_ttl_s,
            address=_address(request),
        )
    return _RESET_ACCEPTED


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(422, 429),
)
def confirm_password_reset(
    body: PasswordResetConfirm, request: Request, db: DatabaseDep
) -> Response:
    """Set a new password with the token of a reset e-mail (once); every session ends."""
    with db.transaction() as session:
        credentials.confirm_reset(
            session, token=body.token, new_password=body.new_password, address=_address(request)
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/users/{user_id}/password",
    response_model=UserRead,
    responses=responses(401, 403, 404, 422),
)
def reset_user_password(user_id: uuid.UUID, body: PasswordSet, who: Admin, db: DatabaseDep) -> User:
    """Set a user's password (admins only); every session of the user ends."""
    with db.transaction() as session:
        return credentials.reset_by_admin(
            session, user_id=user_id, new_password=body.new_password, actor_id=who.user_id
        )


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=responses(401, 403, 409, 422),
)
def create_user(body: UserCreate, who: Admin, db: DatabaseDep) -> User:
    """Create an account with any role but ``device`` (admins only)."""
    with db.transaction() as session:
        return users.create_user(
            session,
            email=body.email,
            password=body.password,
            role=body.role,
            warehouses=body.warehouses,
            actor_id=who.user_id,
        )


@router.get(
    "/users",
    response_model=list[UserRead],
    responses=responses(401, 403),
)
def list_users(_: Admin, db: DatabaseDep) -> list[User]:
    """Every account (admins only)."""
    with db.reading() as session:
        return users.list_(session)


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    responses=responses(401, 403, 404, 422),
)
def update_user(user_id: uuid.UUID, body: UserUpdate, who: Admin, db: DatabaseDep) -> User:
    """Change a user's role or warehouses, or disable the account and end its sessions."""
    with db.transaction() as session:
        return users.update(
            session,
            user_id=user_id,
            role=body.role,
            is_active=body.is_active,
            warehouses=body.warehouses,
            actor_id=who.user_id,
        )


@router.post(
    "/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    responses=responses(401, 403, 422),
)
def create_device(
    body: DeviceCreate,
    who: Admin,
    db: DatabaseDep,
    settings: SettingsDep,
    signing_key: SigningKeyDep,
) -> DeviceCreated:
    """Issue a token for a sensor or point-of-sale box, bound to one scope (admins only)."""
    with db.transaction() as session:
        created = devices.create_device(
            session,
            settings,
            key=signing_key,
            label=body.label,
            scope=body.scope,
            actor_id=who.user_id,
            purpose=body.purpose,
        )
        return DeviceCreated(
            **DeviceRead.model_validate(created.device).model_dump(), token=created.token
        )


@router.get(
    "/devices",
    response_model=list[DeviceRead],
    responses=responses(401, 403),
)
def list_devices(_: Admin, db: DatabaseDep) -> list[AuthSession]:
    """Every device token, newest first (admins only)."""
    with db.reading() as session:
        return devices.list_devices(session)


@router.delete(
    "/devices/{device_id}",
    response_model=DeviceRead,
    responses=responses(401, 403, 404, 422),
)
def revoke_device(device_id: uuid.UUID, who: Admin, db: DatabaseDep) -> AuthSession:
    """Revoke a device's token at once (admins only)."""
    with db.transaction() as session:
        return devices.revoke_device(session, device_id=device_id, actor_id=who.user_id)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=responses(401, 403, 422),
)
def audit_log(
    _: Admin,
    db: DatabaseDep,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    user_id: uuid.UUID | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
) -> AuditPage:
    """Security events newest first: sign-ins and failures, role changes, token reuse, devices."""
    with db.reading() as session:
        events = audit.list_(session, kind=kind, user_id=user_id, before=before, limit=limit)
        items = [AuditRead.model_validate(e) for e in events]
    return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)
