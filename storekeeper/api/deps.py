"""FastAPI dependencies shared by every context's router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from storekeeper.accounts import security
from storekeeper.accounts import service as accounts_service
from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated, PermissionDenied

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# Dependencies are ``async def`` on purpose: they do no I/O, and a sync dependency costs a
# thread-pool hop per request, which measured as the largest single overhead on hot reads.


async def get_container(request: Request) -> Container:
    """The app's composition root."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_db(container: ContainerDep) -> Database:
    """The database; views open a unit of work with ``db.transaction()``."""
    return container.db


DatabaseDep = Annotated[Database, Depends(get_db)]


async def get_principal_allowing_setup(
    container: ContainerDep, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller proven by a bearer access or device token whose session is still alive.

    Also admits a caller who still has to set up two-factor sign-in: only for the routes that
    set it up (and ``/me``, ``/auth/logout``).
    """
    if not token:
        raise NotAuthenticated("a bearer token is required")
    claims = security.decode_token(
        token, key=container.signing_key, expected_types=("access", "device")
    )
    roles = container.settings.require_2fa_roles
    return await container.db.read(
        lambda conn: accounts_service.principal_for(conn, claims, two_factor_roles=roles)
    )


CurrentUserAllowingSetup = Annotated[Principal, Depends(get_principal_allowing_setup)]


async def get_principal(principal: CurrentUserAllowingSetup) -> Principal:
    """The caller, who has two-factor sign-in set up if their role requires it."""
    accounts_service.ensure_two_factor_done(principal)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require(allowed: frozenset[Role]) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only callers whose role is in ``allowed``."""

    async def check(principal: CurrentUser) -> Principal:
        if not principal.has_role(allowed):
            raise PermissionDenied(f"role {principal.role.value} may not do this")
        return principal

    return check
