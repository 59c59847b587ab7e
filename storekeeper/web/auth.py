"""Signing in and out of the console, the second factor, and the account page (2FA, password)."""

from __future__ import annotations

import functools
from typing import Any

import anyio.to_thread
import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from storekeeper.accounts import credentials, sessions, two_factor, users
from storekeeper.accounts.authentication import PendingTwoFactor
from storekeeper.api.deps import DatabaseDep, SettingsDep, SigningKeyDep
from storekeeper.errors import DomainError, NotAuthenticated
from storekeeper.web.forms import form_data
from storekeeper.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleUserAllowingSetup,
    cookie_options,
    new_login_csrf,
)
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)


def qr_svg(data: str) -> Markup:
    """``data`` as an inline SVG QR code (segno: pure Python, no image library, no script)."""
    code = segno.make(data, error="m")
    return Markup(code.svg_inline(scale=4, dark="#000", light="#fff"))  # noqa: S704 - segno's own SVG


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _login_page(
    request: Request, *, error: str | None = None, status_code: int = 200, **context: Any
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        login_csrf=token,
        next=safe_next(request.query_params.get("next") or str(context.pop("next", "") or "")),
        **context,
    )
    options = cookie_options(request.app.state.dependencies["settings"])
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **options)  # type: ignore[arg-type]
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form."""
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request, db: DatabaseDep, settings: SettingsDep, key: SigningKeyDep
) -> Response:
    """Check e-mail and password (and the one-time code when 2FA is on); set the session cookie.

    The same rate limits as ``POST /api/v1/auth/token`` apply (storekeeper.api.ratelimit).
    """
    fields = await form_data(request)
    target = safe_next(fields.get("next"))
    sent, expected = fields.get("login_csrf", ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or sent != expected:
        return _login_page(
            request,
            error="the sign-in form expired: please try again",
            status_code=400,
            next=target,
        )
    email, password, otp = fields.get("email", ""), fields.get("password", ""), fields.get("otp")
    try:
        # In a worker thread: the argon2 check must not stall the event loop.
        pair = await anyio.to_thread.run_sync(
            functools.partial(
                sessions.sign_in,
                db,
                settings,
                key=key,
                email=email,
                password=password,
                otp=otp,
                address=_address(request),
            )
        )
    except NotAuthenticated as exc:
        if exc.code in ("otp_required", "invalid_otp"):
            # Step two: the same form asks for the code; the password travels again in the
            # form (never stored), so no half-signed-in state exists on the server.
            return _login_page(
                request,
                error=None if exc.code == "otp_required" else "that code is not valid: try again",
                status_code=200 if exc.code == "otp_required" else 401,
                otp_step=True,
                email=email,
                password=password,
                next=target,
            )
        return _login_page(request, error=exc.detail, status_code=401, email=email, next=target)
    response = RedirectResponse(target, status_code=303)
    token = sessions.browser_token(key=key, settings=settings, access_token=pair.access_token)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.refresh_token_ttl_s,
        **cookie_options(settings),  # type: ignore[arg-type]
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(principal: ConsoleUserAllowingSetup, db: DatabaseDep) -> Response:
    """End the session on the server and forget the cookie."""
    with db.transaction() as session:
        sessions.logout(session, principal=principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account")
def account(request: Request, principal: ConsoleUserAllowingSetup, db: DatabaseDep) -> Response:
    """Who is signed in, two-factor status, and the password form."""
    with db.reading() as session:
        user = users.get_or_raise(session, user_id=principal.user_id)
        email, totp_on = user.email, user.totp_enabled
    return render(
        request,
        "account.html",
        principal,
        email=email,
        totp_on=totp_on,
        pending_2fa=isinstance(principal, PendingTwoFactor),
    )


@router.post("/account/password")
async def change_password(
    request: Request, principal: ConsoleUserAllowingSetup, db: DatabaseDep
) -> Response:
    """Change one's own password; every other session ends (as the API's ``/me/password``)."""
    fields = await form_data(request)
    errors: dict[str, str] = {}
    try:
        with db.transaction() as session:
            credentials.change_password(
                session,
                principal=principal,
                current_password=fields.get("current_password", ""),
                new_password=fields.get("new_password", ""),
                address=_address(request),
            )
    except DomainError as exc:
        field = "current_password" if exc.code == "invalid_credentials" else "new_password"
        errors[field] = exc.detail
    with db.reading() as session:
        user = users.get_or_raise(session, user_id=principal.user_id)
        email, totp_on = user.email, user.totp_enabled
    return render(
        request,
        "account.html",
        principal,
        status_code=422 if errors else 200,
        email=email,
        totp_on=totp_on,
        pending_2fa=isinstance(principal, PendingTwoFactor),
        password_errors=errors,
        password_changed=not errors,
    )


@router.post("/account/2fa/setup")
def two_factor_setup(
    request: Request, principal: ConsoleUserAllowingSetup, db: DatabaseDep
) -> Response:
    """A new secret, shown as a QR code for an authenticator app and as text."""
    try:
        with db.transaction() as session:
            secret, uri = two_factor.setup_two_factor(session, user_id=principal.user_id)
    except DomainError as exc:
        return render(request, "two_factor.html", principal, status_code=409, error=exc.detail)
    return render(request, "two_factor.html", principal, secret=secret, qr=qr_svg(uri), uri=uri)


@router.post("/account/2fa/enable")
async def two_factor_enable(
    request: Request, principal: ConsoleUserAllowingSetup, db: DatabaseDep
) -> Response:
    """Confirm the secret with a current code; the recovery codes are shown once."""
    fields = await form_data(request)
    try:
        with db.transaction() as session:
            codes = two_factor.enable_two_factor(
                session, principal=principal, code=fields.get("code", "")
            )
    except DomainError as exc:
        return render(
            request,
            "two_factor.html",
            principal,
            status_code=422,
            code_error=exc.detail,
            secret=fields.get("secret"),
            qr=qr_svg(fields["uri"]) if fields.get("uri", "").startswith("otpauth://") else None,
            uri=fields.get("uri"),
        )
    return render(request, "two_factor.html", principal, recovery_codes=codes)
