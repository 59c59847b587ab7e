"""Who a live client is: the same check as every other route, repeatable later.

A stream outlives the request that opened it, so the check is kept (``Caller.recheck``) and run
again every ``live_recheck_s``: a revoked session or a disabled account cuts the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from storekeeper.accounts import security
from storekeeper.accounts.authentication import Authenticator
from storekeeper.accounts.domain import Principal


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified live client: its principal now, and what it takes to check it again."""

    principal: Principal
    claims: security.TokenClaims
    authenticator: Authenticator

    async def recheck(self) -> Principal:
        """The caller as of now; raises if the session ended (see ``authenticate``)."""
        return await self.authenticator.principal(self.claims)


async def authenticate(authenticator: Authenticator, token: str | None) -> Caller:
    """The caller an access or device token proves, with its session alive and 2FA done."""
    # The claims, not the token, are kept: a stream is bound to its session, and the access
    # token's own expiry is checked only here, when connecting (docs/live.md).
    claims = authenticator.verify(token)
    return Caller(await authenticator.principal(claims), claims, authenticator)
