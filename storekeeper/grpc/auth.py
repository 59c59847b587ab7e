"""Who is calling: the bearer token in the call's metadata, checked exactly as the HTTP API does.

The same check as every transport (``accounts.authentication.authenticate``): token types access
and device, a revoked session or deactivated account refused at once, the two-factor rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from storekeeper.accounts.authentication import Authenticator
from storekeeper.accounts.domain import Principal, Role
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
    authenticator: Authenticator, context: grpc.ServicerContext, allowed: frozenset[Role]
) -> Principal:
    """The caller of this call, admitted only if their role is in ``allowed``."""
    principal = authenticator.principal_now(bearer_token(context.invocation_metadata()))
    if not principal.has_role(allowed):
        raise PermissionDenied(f"role {principal.role.value} may not do this")
    return principal
