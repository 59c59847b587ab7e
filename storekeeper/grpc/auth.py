"""Who is calling: the bearer token in the call's metadata, checked exactly as the HTTP API does.

Same token types (access and device), same live-session check (``principal_for``: a revoked
session or deactivated account is refused at once), same two-factor rule as ``api.deps``.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from storekeeper.accounts import authentication, security
from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
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


def authenticate(
    container: Container, context: grpc.ServicerContext, allowed: frozenset[Role]
) -> Principal:
    """The caller of this call, admitted only if their role is in ``allowed``."""
    token = bearer_token(context.invocation_metadata())
    claims = security.decode_token(
        token, key=container.signing_key, expected_types=("access", "device")
    )
    roles = container.settings.require_2fa_roles
    with container.db.reading() as session:
        principal = authentication.principal_for(
            session.connection(), claims, two_factor_roles=roles
        )
    authentication.ensure_two_factor_done(principal)
    if not principal.has_role(allowed):
        raise PermissionDenied(f"role {principal.role.value} may not do this")
    return principal
