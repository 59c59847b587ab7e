"""The credential a replica syncs with, kept in its file so it outlives the process.

An access token lasts minutes (``STOREKEEPER_ACCESS_TOKEN_TTL_S``); a replica syncs for days.
Either it holds a device token (long-lived, revocable by an admin), or it holds a sign-in's
refresh token and trades it for a new pair when the access token runs out. Refresh tokens work
once: the new pair is committed to the file in one transaction, before it is used, so a crash
after that leaves the file holding the one valid refresh token.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

from storekeeper_client.records import Offline, SyncError
from storekeeper_client.store import Store

REFRESH_PATH = "/api/v1/auth/refresh"
_ACCESS = "access_token"
_REFRESH = "refresh_token"


class Credentials:
    """The bearer token of one replica file and, for a sign-in, the refresh token behind it."""

    def __init__(
        self,
        store: Store,
        path: str | Path,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        self._store = store
        if token is not None or refresh_token is not None:
            # What the caller gives replaces what the file held, both together: a device token
            # given now must not be followed by a stale sign-in's refresh token.
            with store.transaction():
                store.set_meta(_ACCESS, token)
                store.set_meta(_REFRESH, refresh_token)
            # The file now holds a credential: only its owner may read it.
            with contextlib.suppress(OSError):
                Path(path).chmod(0o600)

    def bearer(self) -> str | None:
        """The token to send now, or None if the file holds none."""
        return self._store.get_meta(_ACCESS)

    def can_refresh(self) -> bool:
        """Whether a refresh token is held (a sign-in, not a device token)."""
        return self._store.get_meta(_REFRESH) is not None

    def refresh(self, http: httpx.Client) -> None:
        """Trade the refresh token for a new pair and commit the pair before returning."""
        refresh_token = self._store.get_meta(_REFRESH)
        if refresh_token is None:
            raise SyncError("no refresh token: sign in again", status=401, code="invalid_token")
        try:
            response = http.post(REFRESH_PATH, json={"refresh_token": refresh_token})
        except httpx.TransportError as exc:
            # The server may have rotated the token and the answer been lost; nothing to store.
            raise Offline(f"server unreachable while renewing the token: {exc}") from exc
        if response.status_code != 200:
            code: str | None = None
            message = response.text[:500]
            with contextlib.suppress(ValueError):
                body = response.json()
                code, message = body.get("code"), str(body.get("detail", message))
            raise SyncError(
                f"renewing the access token: {response.status_code} {message}; sign in again",
                status=response.status_code,
                code=code,
            )
        pair = response.json()
        with self._store.transaction():  # both or neither: the old refresh token is spent
            self._store.set_meta(_ACCESS, str(pair["access_token"]))
            self._store.set_meta(_REFRESH, str(pair["refresh_token"]))
