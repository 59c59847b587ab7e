"""Browser sessions of the console: a cookie naming a server-side session, and CSRF tokens.

The cookie holds an access token of a sign-in session (``accounts.sessions``) that lives as long
as the session; every request checks it with the same ``Authenticator`` as the API, so logout,
revocation, disabling and role changes act on the next page. The cookie is ``HttpOnly`` (no
script reads it), ``SameSite=Lax`` and ``Secure`` outside local mode. The API never reads it:
it takes bearer tokens only, so the cookie cannot be used for cross-site requests there.

Every state-changing console request carries a CSRF token (a form field or the
``X-CSRF-Token`` header htmx sends): an HMAC of the session id under the signing key, so it
needs no storage and dies with the session. The sign-in form, which has no session yet, uses a
random double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData

from storekeeper.accounts.authentication import Authenticator, PendingTwoFactor
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.keys import Keyring
from storekeeper.config import Settings
from storekeeper.errors import NotAuthenticated, PermissionDenied
from storekeeper.observability import logs

SESSION_COOKIE = "sk_console"
LOGIN_CSRF_COOKIE = "sk_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfRejected(PermissionDenied):
    """A state-changing console request without the CSRF token of its session."""

    code = "csrf_failed"


class SignInRequired(NotAuthenticated):
    """A console page asked for without a live session: the browser is sent to sign in."""

    code = "sign_in_required"

    def __init__(self, detail: str, *, next_url: str) -> None:
        super().__init__(detail)
        self.next_url = next_url


class TwoFactorSetupPending(PermissionDenied):
    """Signed in, but the role must set up two-factor sign-in before using the console."""

    code = "two_factor_setup_required"


async def read_form(request: Request) -> FormData:
    """The request's form, parsed once: text fields only, at most a count sheet's worth."""
    return await request.form(max_files=0, max_fields=4000, max_part_size=64 * 1024)


def cookie_options(settings: Settings) -> dict[str, object]:
    """How the session cookie is set: HttpOnly, SameSite=Lax, Secure outside local mode."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": settings.env != "local",
        "path": "/",
    }


def csrf_token(key: Keyring, principal: Principal) -> str:
    """The CSRF token of the principal's session.

    Made with ``STOREKEEPER_SECRET_KEY`` itself, not the signing key of the day: a key rotation
    must not refuse the forms already open in browsers.
    """
    message = f"csrf:{principal.session_id}".encode()
    return hmac.new(key.root_secret.encode(), message, hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    """A random value for the sign-in form's double-submit cookie."""
    return secrets.token_urlsafe(24)


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.dependencies["authenticator"]
    return authenticator


def _next_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(target, safe="/?=&")


async def _principal(request: Request, *, allow_2fa_setup: bool) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    try:
        principal = await _authenticator(request).principal(token, allow_2fa_setup=True)
    except NotAuthenticated as exc:
        raise SignInRequired(
            "sign in to continue" if not token else "your session ended: sign in again",
            next_url=_next_url(request),
        ) from exc
    if principal.role in (Role.DEVICE, Role.CUSTOMER):
        raise PermissionDenied("the console is for staff: clerks, managers and admins")
    if isinstance(principal, PendingTwoFactor) and not allow_2fa_setup:
        raise TwoFactorSetupPending("set up two-factor sign-in first")
    logs.set_user(principal.user_id)
    if request.method in UNSAFE_METHODS:
        await _check_csrf(request, principal)
    return principal


async def _check_csrf(request: Request, principal: Principal) -> None:
    expected = csrf_token(_authenticator(request).key, principal)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await read_form(request)
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRejected("this form expired or came from elsewhere: reload the page and retry")


async def console_user(request: Request) -> Principal:
    """The signed-in staff member (clerk, manager, admin) with two-factor done; CSRF checked."""
    return await _principal(request, allow_2fa_setup=False)


async def console_user_allowing_setup(request: Request) -> Principal:
    """As :func:`console_user`, also admitting someone who still has to set up 2FA."""
    return await _principal(request, allow_2fa_setup=True)


ConsoleUser = Annotated[Principal, Depends(console_user)]
ConsoleUserAllowingSetup = Annotated[Principal, Depends(console_user_allowing_setup)]


def allowed(roles: frozenset[Role]) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting console users whose role is in ``roles`` (``accounts.domain``'s
    sets, as the matching API route): ``Annotated[Principal, Depends(allowed(STAFF))]``."""

    async def check(principal: ConsoleUser) -> Principal:
        if not principal.has_role(roles):
            raise PermissionDenied(f"a {principal.role.value} may not do this")
        return principal

    return check
