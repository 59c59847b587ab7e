"""FastAPI dependencies shared by every context's router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from storekeeper.accounts import policy, security
from storekeeper.accounts.authentication import Authenticator
from storekeeper.accounts.domain import STAFF, Principal, Role
from storekeeper.accounts.keys import Keyring
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated, PermissionDenied
from storekeeper.observability import logs

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# Dependencies are ``async def`` on purpose: they do no I/O, and a sync dependency costs a
# thread-pool hop per request, which measured as the largest single overhead on hot reads.


def provided(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency giving what the composition root built under ``name``.

    ``Annotated[Mailer, Depends(provided("mailer"))]``; the names are those of
    ``storekeeper.bootstrap.Container.dependencies``.

    Routes thus name exactly what they use, and no context imports the composition root.
    """

    async def dependency(request: Request) -> Any:
        return request.app.state.dependencies[name]

    dependency.__name__ = f"provided_{name}"
    return dependency


DatabaseDep = Annotated[Database, Depends(provided("db"))]
"""The database; views open a unit of work with ``db.transaction()``."""
SettingsDep = Annotated[Settings, Depends(provided("settings"))]
SigningKeyDep = Annotated[Keyring, Depends(provided("signing_key"))]
AuthenticatorDep = Annotated[Authenticator, Depends(provided("authenticator"))]
"""The one check of a token, its session, account and two-factor, that every transport uses."""


def route_family(request: Request) -> policy.Family:
    """What the request does, for a device token's purpose (``policy.ensure_purpose``)."""
    path, method = request.url.path.rstrip("/"), request.method
    if path.endswith("/telemetry") and method == "POST":
        return "telemetry"
    if "/sync/" in path:
        return "sync"
    return "read" if method in ("GET", "HEAD") else "other"


async def get_principal_allowing_setup(
    request: Request,
    authenticator: AuthenticatorDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """The caller proven by a bearer access or device token whose session is still alive.

    Also admits a caller who still has to set up two-factor sign-in: only for the routes that
    set it up (and ``/me``, ``/auth/logout``).
    """
    return await _authenticate(request, authenticator, token, allow_2fa_setup=True)


CurrentUserAllowingSetup = Annotated[Principal, Depends(get_principal_allowing_setup)]


async def get_principal(
    request: Request,
    authenticator: AuthenticatorDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """The caller, who has two-factor sign-in set up if their role requires it."""
    return await _authenticate(request, authenticator, token, allow_2fa_setup=False)


async def _authenticate(
    request: Request, authenticator: Authenticator, token: str | None, *, allow_2fa_setup: bool
) -> Principal:
    principal = await authenticator.principal(
        token, allow_2fa_setup=allow_2fa_setup, family=route_family(request)
    )
    logs.set_user(principal.user_id)  # the request's log lines name the caller from here on
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require(allowed: frozenset[Role]) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only callers whose role is in ``allowed``."""

    async def check(principal: CurrentUser) -> Principal:
        if not principal.has_role(allowed):
            raise PermissionDenied(f"role {principal.role.value} may not do this")
        return principal

    return check


SERVICE = Principal(user_id=security.SERVICE_ACCOUNT, role=Role.ADMIN)
"""Another Storekeeper process calling with a service token (``serve --only``)."""


async def get_service_or_staff(
    request: Request,
    authenticator: AuthenticatorDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> Principal:
    """Another Storekeeper process (a service token), or a manager or admin."""
    if token:
        try:
            security.decode_token(token, key=authenticator.key, expected_types=("service",))
        except NotAuthenticated:
            pass  # not a service token: a person's, checked below
        else:
            return SERVICE
    principal = await get_principal(request, authenticator, token)
    if not principal.has_role(STAFF):
        raise PermissionDenied(f"role {principal.role.value} may not do this")
    return principal


ServiceOrStaff = Annotated[Principal, Depends(get_service_or_staff)]
