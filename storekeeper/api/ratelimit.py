"""Rate limits per account and per client address on the endpoints worth hammering (OWASP API4).

GCRA (the generic cell rate algorithm): each bucket keeps one timestamp, in Redis when
``STOREKEEPER_REDIS_URL`` is set (shared by every API process) or else in this process's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import math
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from fastapi.security.utils import get_authorization_scheme_param
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storekeeper.accounts import security
from storekeeper.accounts.keys import Keyring
from storekeeper.api.errors import error_body
from storekeeper.api.limit_rules import Limit, Per, parse_limits
from storekeeper.config import Settings
from storekeeper.errors import NotAuthenticated

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)

AccountSource = Literal[
    "form_username", "form_email", "json_email", "refresh_token", "access_token"
]

# (settings field suffix, path under the API prefix, where the account name comes from)
_ENDPOINTS: tuple[tuple[str, str, AccountSource], ...] = (
    ("login", "/auth/token", "form_username"),
    ("register", "/auth/register", "json_email"),
    ("password_reset", "/auth/password-reset", "json_email"),
    ("refresh", "/auth/refresh", "refresh_token"),
    ("orders", "/orders", "access_token"),
)
# The console's sign-in form (storekeeper.web.auth): the same buckets as the API's sign-in, so
# neither door gives an attacker more guesses than the other.
_CONSOLE_ENDPOINTS: tuple[tuple[str, str, AccountSource], ...] = (
    ("login", "/login", "form_email"),
)
# The tokens api.deps accepts as a bearer.
_BEARER: tuple[security.TokenType, ...] = ("access", "device")
_REDIS_TIMEOUT_S = 0.5
_WARN_EVERY_S = 60.0
_SWEEP_EVERY_US = 60_000_000

# One bucket = (key, emission interval, burst window), in microseconds. Every bucket of a request
# is checked first and updated only if all admit it, in one script: two processes can never both
# take the last slot, and a request refused by one limit costs nothing from the others.
_GCRA_LUA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local wait, tats = 0, {}
for i, key in ipairs(KEYS) do
  local interval, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key) or now), now) + interval
  wait = math.max(wait, tat - burst - now)
  tats[i] = tat
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  local ttl_ms = math.max(1, math.ceil((tats[i] - now) / 1000))
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl_ms)
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Rule:
    """The limits of one endpoint and where its account name comes from."""

    name: str
    limits: tuple[Limit, ...]
    account: AccountSource


class _Store(Protocol):
    async def acquire(self, buckets: Sequence[tuple[str, int, int]]) -> int:
        """Take one request from every bucket, or from none: 0, or the microseconds to wait."""

    async def close(self) -> None:
        """Release connections."""


def _gcra(tat: int, now: int, interval: int, burst: int) -> tuple[int, int]:
    new_tat = max(tat, now) + interval
    return new_tat, max(0, new_tat - burst - now)


class _MemoryStore:
    """Buckets in this process: enough for embedded mode, which is a single process."""

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}
        self._next_sweep = 0

    async def acquire(self, buckets: Sequence[tuple[str, int, int]]) -> int:
        # No await between reading and writing: on the event loop this is atomic.
        now = time.monotonic_ns() // 1000
        if now >= self._next_sweep:
            # A timestamp in the past means the same as no entry: dropping them bounds memory.
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
            self._next_sweep = now + _SWEEP_EVERY_US
        taken = [(key, *_gcra(self._tats.get(key, now), now, i, b)) for key, i, b in buckets]
        wait = max((wait for _, _, wait in taken), default=0)
        if wait == 0:
            self._tats.update((key, tat) for key, tat, _ in taken)
        return wait

    async def close(self) -> None:
        """Nothing to release."""


class _RedisStore:
    """Buckets in Redis, shared by every API process; lets requests through when Redis fails."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client = self._connect()  # a bad URL fails at start-up, not on the first login
        self._loop: asyncio.AbstractEventLoop | None = None
        self._script: AsyncScript | None = None
        self._warned_at = self._recovered_at = -math.inf
        self._failures = 0  # requests let through since the last "enforced again"

    def _connect(self) -> Redis:
        # No retries: a limit that waits for Redis would slow the API down with it.
        return Redis.from_url(
            self._url,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )

    def _gcra_script(self) -> AsyncScript:
        # A client's connections belong to one event loop; a TestClient used outside ``with``
        # runs each request on a new loop.
        loop = asyncio.get_running_loop()
        if self._script is None or self._loop is not loop:
            if self._loop is not None:
                self._client = self._connect()
            self._loop = loop
            self._script = self._client.register_script(_GCRA_LUA)
        return self._script

    async def acquire(self, buckets: Sequence[tuple[str, int, int]]) -> int:
        keys = [key for key, _, _ in buckets]
        args = [value for _, interval, burst in buckets for value in (interval, burst)]
        try:
            wait = int(await self._gcra_script()(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            # Fail open: Redis being down must not take logins and orders down with it. At most
            # one warning a minute each way, however often Redis fails or flaps.
            self._failures += 1
            if time.monotonic() - self._warned_at >= _WARN_EVERY_S:
                self._warned_at = time.monotonic()
                log.warning("rate limits not enforced, requests let through: Redis failed: %s", exc)
            return 0
        if self._failures and time.monotonic() - self._recovered_at >= _WARN_EVERY_S:
            self._recovered_at = time.monotonic()
            log.warning(
                "rate limits enforced again: Redis answers (%d request(s) were let through)",
                self._failures,
            )
            self._failures = 0
        return wait

    async def close(self) -> None:
        if self._loop is asyncio.get_running_loop():
            await self._client.aclose()


class RateLimit:
    """Answer 429 with ``Retry-After`` once an account or a client address exceeds its limits.

    Rules are keyed by (method, path). The account is the login form's ``username``, the
    registration's ``email``, or the subject of a refresh or access token that verifies; the
    address is the ASGI client host (an IPv6 host counts by its /64). A request with neither
    passes unchecked.
    """

    def __init__(
        self, app: ASGIApp, *, settings: Settings, signing_key: Keyring, api_prefix: str
    ) -> None:
        self.app = app
        self.signing_key = signing_key
        self.prefix = settings.rate_limit_prefix
        self.rules: dict[tuple[str, str], Rule] = {}
        for name, path, account in _ENDPOINTS if settings.rate_limits_enabled else ():
            limits = parse_limits(getattr(settings, f"rate_limit_{name}"))
            if limits:
                self.rules["POST", api_prefix + path] = Rule(name, limits, account)
        for name, path, account in _CONSOLE_ENDPOINTS if settings.rate_limits_enabled else ():
            limits = parse_limits(getattr(settings, f"rate_limit_{name}"))
            if limits:
                self.rules["POST", path] = Rule(name, limits, account)
        self.api_prefix = api_prefix
        self.store: _Store = (
            _RedisStore(settings.redis_url) if settings.redis_url else _MemoryStore()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_store(receive), send)
            return
        rule = self.rules.get((scope.get("method", ""), _route_path(scope)))
        if scope["type"] != "http" or rule is None:
            await self.app(scope, receive, send)
            return
        receive, account = await self._account(rule, scope, receive)
        buckets = self._buckets(rule, {"account": account, "address": _address(scope)})
        wait_us = await self.store.acquire(buckets) if buckets else 0
        if wait_us > 0:
            retry_after_s = max(1, math.ceil(wait_us / 1_000_000))
            page = not _route_path(scope).startswith(self.api_prefix)
            await _reject(send, retry_after_s=retry_after_s, page=page)
            return
        await self.app(scope, receive, send)

    async def _account(self, rule: Rule, scope: Scope, receive: Receive) -> tuple[Receive, str]:
        """The account the request is for, or ``""``; and a receive that replays the body."""
        if not any(limit.per == "account" for limit in rule.limits):
            return receive, ""
        if rule.account == "access_token":
            # Read the way the app reads it (fastapi's OAuth2PasswordBearer), or forged spacing
            # could get a token past the limit that the app still accepts.
            scheme, token = get_authorization_scheme_param(
                Headers(scope=scope).get("authorization")
            )
            return receive, self._subject(token, _BEARER) if scheme.lower() == "bearer" else ""
        messages = await _read_body(receive)
        if rule.account in ("form_username", "form_email"):
            field = "username" if rule.account == "form_username" else "email"
            name = await _form_value(scope, messages, field)
        else:
            field = "email" if rule.account == "json_email" else "refresh_token"
            name = _json_value(messages, field)
        if rule.account == "refresh_token":
            account = self._subject(name, ("refresh",))
        else:
            # As accounts.domain.normalise_email does (plus NFC, as the e-mail schema does), so
            # that case or spacing variants of one address share its budget.
            account = unicodedata.normalize("NFC", name).strip().lower()
        return _replay(messages, receive), account

    def _subject(self, token: str, types: tuple[security.TokenType, ...]) -> str:
        """``user:<id>`` if the token verifies with our key; a forged one names no account."""
        if not token:
            return ""
        try:
            claims = security.decode_token(token, key=self.signing_key, expected_types=types)
        except NotAuthenticated:
            return ""
        return f"user:{claims.user_id}"

    def _buckets(self, rule: Rule, who: dict[Per, str]) -> list[tuple[str, int, int]]:
        buckets = []
        for limit in rule.limits:
            if who[limit.per]:
                # Hashed: no e-mail or IP address in Redis, and keys of bounded length.
                digest = hashlib.sha256(who[limit.per].encode()).hexdigest()[:32]
                spec = f"{limit.count}/{limit.period_s}:{limit.per}"
                key = f"{self.prefix}:{rule.name}:{spec}:{digest}"
                buckets.append((key, limit.interval_us, limit.burst_us))
        return buckets

    def _closing_store(self, receive: Receive) -> Receive:
        async def receive_closing() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.store.close()
            return message

        return receive_closing


def _route_path(scope: Scope) -> str:
    # As Starlette routes: the path below the root path of a mounted app or a proxy prefix.
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) :].startswith("/"):
        return path[len(root) :]
    return path


def _address(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return ""
    try:
        ip = ipaddress.ip_address(client[0])
    except ValueError:
        return str(client[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # One IPv6 host is usually given a whole /64: counting single addresses would let it
        # rotate through them.
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


async def _read_body(receive: Receive) -> list[Message]:
    # At most max_body_bytes: BodySizeLimit runs before this middleware.
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


async def _form_value(scope: Scope, messages: list[Message], name: str) -> str:
    # Starlette's parser, the one the app uses: both see the same value of a repeated field.
    request = Request(dict(scope), _replay(messages, _disconnected))
    try:
        form = await request.form()
    except (ClientDisconnect, HTTPException, MultiPartException):
        return ""
    try:
        value = form.get(name)
        return value if isinstance(value, str) else ""
    finally:
        await form.close()


def _json_value(messages: list[Message], name: str) -> str:
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


async def _reject(send: Send, *, retry_after_s: int, page: bool = False) -> None:
    """429 with ``Retry-After``: the JSON error body, or for a console form a page in words."""
    if page:
        body = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Too many attempts</title>"
            f"<h1>Too many attempts</h1><p>Wait {retry_after_s} seconds, then try again.</p>"
            "<p><a href=/login>Back to sign-in</a></p></html>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps(
            error_body(f"too many requests; retry after {retry_after_s} s", "rate_limited")
        ).encode()
        content_type = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after_s).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
