"""Who a live client is: the same bearer-token check as every other route, repeatable later.

A stream outlives the request that opened it, so the check is kept (``Caller.recheck``) and run
again every ``live_recheck_s``: a revoked session or a disabled account cuts the stream.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from storekeeper.accounts import security
from storekeeper.accounts import service as accounts_service
from storekeeper.accounts.domain import Principal
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What checking a live client's token takes."""

    db: Database
    signing_key: str
    two_factor_roles: Collection[str]


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified live client: its principal now, and what it takes to check it again."""

    principal: Principal
    claims: security.TokenClaims
    check: TokenCheck

    async def recheck(self) -> Principal:
        """The caller as of now; raises if the session ended (see ``authenticate``)."""
        return await _principal(self.check, self.claims)


async def authenticate(check: TokenCheck, token: str | None) -> Caller:
    """The caller an access or device token proves, with its session alive and 2FA done."""
    if not token:
        raise NotAuthenticated("a bearer token is required")
    claims = security.decode_token(
        token, key=check.signing_key, expected_types=("access", "device")
    )
    return Caller(await _principal(check, claims), claims, check)


async def _principal(check: TokenCheck, claims: security.TokenClaims) -> Principal:
    roles = check.two_factor_roles
    principal = await check.db.read(
        lambda conn: accounts_service.principal_for(conn, claims, two_factor_roles=roles)
    )
    accounts_service.ensure_two_factor_done(principal)
    return principal
