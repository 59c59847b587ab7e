"""Who is calling: the bearer token in the call's metadata, checked exactly as the HTTP API does.

Same token types (access and device), same live-session check (``principal_for``: a revoked
session or deactivated account is refused at once), same two-factor rule as ``api.deps``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import grpc

from storekeeper.accounts import security
from storekeeper.accounts import service as accounts_service
from storekeeper.accounts.domain import Principal, Role
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated, PermissionDenied

_SCHEME = "bearer "


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The token of the ``authorization: Bearer <jwt>`` metadata entry, or raise 401's kin."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            if value[: len(_SCHEME)].lower() == _SCHEME and value[len(_SCHEME) :].strip():
                return value[len(_SCHEME) :].strip()
            raise NotAuthenticated("authorization metadata must be 'Bearer <token>'")
    raise NotAuthenticated("a bearer token is required in the authorization metadata")


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What checking a caller's token takes."""

    db: Database
    signing_key: str
    two_factor_roles: Collection[str]


def authenticate(
    check: TokenCheck, context: grpc.ServicerContext, allowed: frozenset[Role]
) -> Principal:
    """The caller of this call, admitted only if their role is in ``allowed``."""
    token = bearer_token(context.invocation_metadata())
    claims = security.decode_token(
        token, key=check.signing_key, expected_types=("access", "device")
    )
    roles = check.two_factor_roles
    with check.db.reading() as session:
        principal = accounts_service.principal_for(
            session.connection(), claims, two_factor_roles=roles
        )
    accounts_service.ensure_two_factor_done(principal)
    if not principal.has_role(allowed):
        raise PermissionDenied(f"role {principal.role.value} may not do this")
    return principal
