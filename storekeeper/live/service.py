"""Who a live client is: the same bearer-token check as every other route, repeatable later.

A stream outlives the request that opened it, so the check is kept (``Caller.recheck``) and run
again every ``live_recheck_s``: a revoked session or a disabled account cuts the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from storekeeper.accounts import authentication, security
from storekeeper.accounts.domain import Principal
from storekeeper.bootstrap import Container


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified live client: its principal now, and what it takes to check it again."""

    principal: Principal
    claims: security.TokenClaims
    container: Container

    async def recheck(self) -> Principal:
        """The caller as of now; raises if the session ended (see ``authenticate``)."""
        return await _principal(self.container, self.claims)


async def authenticate(container: Container, token: str | None) -> Caller:
    """The caller an access or device token proves, with its session alive and 2FA done."""
    # The claims, not the token, are kept: a stream is bound to its session, and the access
    # token's own expiry is checked only here, when connecting (docs/live.md).
    claims = authentication.verify_token(
        token, key=container.signing_key, allowed_types=authentication.CALLER_TOKENS
    )
    return Caller(await _principal(container, claims), claims, container)


async def _principal(container: Container, claims: security.TokenClaims) -> Principal:
    key, roles = container.signing_key, container.settings.require_2fa_roles
    return await container.db.read(
        lambda conn: authentication.authenticate(
            conn,
            claims,
            key=key,
            allowed_types=authentication.CALLER_TOKENS,
            two_factor_roles=roles,
        )
    )
