"""Token-signing keys: several at once — the newest signs, the older ones verify until retired.

Keys live in the accounts context's own table, so every process of a deployment sees a rotation
without a restart (Keycloak keeps realm keys the same way). ``STOREKEEPER_SECRET_KEY`` is the
first key, ``root``: it signs until the first rotation and verifies the tokens issued before keys
had ids. Each token names its key in the JWT header (``kid``); each session records the key its
newest tokens were signed with, so retiring a key can say which sessions and devices it ends.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storekeeper.accounts import audit
from storekeeper.accounts.models import AuthSession, SigningKey
from storekeeper.db import Database, utcnow
from storekeeper.errors import Conflict, NotFound

ROOT = "root"
"""The id of the key that ``STOREKEEPER_SECRET_KEY`` holds."""
_UNKNOWN_KID_RELOAD_S = 1.0
"""A token naming a key this process has not seen reloads at most this often (forged ids
cannot turn every request into a database read)."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as its table holds it (``root``'s row holds no secret, only its retirement)."""

    kid: str
    secret: str
    created_at: datetime
    retired_at: datetime | None


class Keyring:
    """The keys one process signs and verifies with, reloaded from the table every
    ``reload_s`` (``STOREKEEPER_KEYS_RELOAD_S``) and at once (rate-limited) when a token names
    a key it does not know: a rotation signs, and a retirement refuses, everywhere within
    ``reload_s``."""

    def __init__(
        self,
        root_secret: str,
        load: Callable[[], Sequence[StoredKey]] | None = None,
        *,
        reload_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root_secret = root_secret
        self.reload_s = reload_s
        self._load = load
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at = -reload_s
        self._verifying: dict[str, str] = {ROOT: root_secret}
        self._signer = ROOT

    def signer(self) -> tuple[str, str]:
        """The id and secret new tokens are signed with: the newest key not retired."""
        self._refresh(older_than=self.reload_s)
        kid = self._signer
        return kid, self._verifying[kid]

    def secret(self, kid: str | None) -> str | None:
        """The secret that verifies tokens of key ``kid`` (None: a token from before key ids),
        or None if that key is unknown or retired."""
        self._refresh(older_than=self.reload_s)
        found = self._verifying.get(kid or ROOT)
        if found is None:
            self._refresh(older_than=min(self.reload_s, _UNKNOWN_KID_RELOAD_S))
            found = self._verifying.get(kid or ROOT)
        return found

    def _refresh(self, *, older_than: float) -> None:
        if self._load is None or self._clock() - self._loaded_at < older_than:
            return
        with self._lock:
            if self._clock() - self._loaded_at < older_than:
                return
            stored = self._load()
            verifying, signer = _keys_in_use(self.root_secret, stored)
            # One assignment each: readers on other threads see the old set or the new one.
            self._verifying, self._signer = verifying, signer
            self._loaded_at = self._clock()


def _keys_in_use(root_secret: str, stored: Sequence[StoredKey]) -> tuple[dict[str, str], str]:
    """The verifying keys by id and the signing key's id, from the table's rows."""
    retired = {key.kid for key in stored if key.retired_at is not None}
    verifying = {ROOT: root_secret} if ROOT not in retired else {}
    newest: StoredKey | None = None
    for key in stored:
        if key.kid == ROOT or key.kid in retired:
            continue
        verifying[key.kid] = key.secret
        if newest is None or key.created_at > newest.created_at:
            newest = key
    return verifying, newest.kid if newest is not None else ROOT


def loader(db: Database) -> Callable[[], list[StoredKey]]:
    """What a ``Keyring`` calls to read the table."""

    def load() -> list[StoredKey]:
        with db.reading() as session:
            return stored_keys(session)

    return load


def stored_keys(session: Session) -> list[StoredKey]:
    """Every key row, oldest first."""
    rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
    return [StoredKey(r.kid, r.secret, r.created_at, r.retired_at) for r in rows]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """A key as ``storekeeper keys list`` shows it."""

    kid: str
    created_at: datetime | None
    retired_at: datetime | None
    signing: bool
    live_sessions: int
    """Sessions and devices not ended whose newest tokens this key signed."""


def list_keys(session: Session, *, root_secret: str) -> list[KeyStatus]:
    """Every key, ``root`` first, with whether it signs and how many live sessions it holds."""
    stored = stored_keys(session)
    _, signer = _keys_in_use(root_secret, stored)
    rows = {key.kid: key for key in stored}
    kids = [ROOT] + [key.kid for key in stored if key.kid != ROOT]
    return [
        KeyStatus(
            kid=kid,
            created_at=rows[kid].created_at if kid in rows else None,
            retired_at=rows[kid].retired_at if kid in rows else None,
            signing=kid == signer,
            live_sessions=len(_live_sessions(session, kid)),
        )
        for kid in kids
    ]


def rotate(session: Session, *, actor_id: uuid.UUID | None = None) -> str:
    """Add a new key that signs from now on (in every process within ``reload_s``); the
    older ones keep verifying. Returns the new key's id."""
    kid = f"k{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    session.add(SigningKey(kid=kid, secret=secrets.token_urlsafe(48), created_at=utcnow()))
    audit.record(session, "key_rotated", actor_id=actor_id, kid=kid)
    return kid


class KeyInUse(Conflict):
    """Retiring this key would end sessions or devices that still use it."""

    def __init__(self, kid: str, sessions: Sequence[AuthSession]) -> None:
        devices = [s for s in sessions if s.kind == "device"]
        super().__init__(
            f"key {kid} still signs the tokens of {len(sessions)} live session(s), "
            f"{len(devices)} of them device(s): sign those devices up again (or revoke them) "
            "and let users refresh, or retire with --force to end them now",
            code="key_in_use",
        )
        self.sessions = list(sessions)


def retire(
    session: Session,
    *,
    kid: str,
    root_secret: str,
    force: bool = False,
    actor_id: uuid.UUID | None = None,
) -> list[AuthSession]:
    """Stop ``kid`` verifying (in every process within ``reload_s``); returns the sessions
    this ended. Refused for the key that signs (rotate first), and — unless ``force`` — while
    live sessions or devices still hold tokens it signed."""
    stored = {key.kid: key for key in stored_keys(session)}
    if kid != ROOT and kid not in stored:
        raise NotFound(f"no key {kid}", code="key_not_found")
    if kid in stored and stored[kid].retired_at is not None:
        return []
    _, signer = _keys_in_use(root_secret, list(stored.values()))
    if kid == signer:
        raise Conflict(
            f"key {kid} is the one that signs: rotate first (storekeeper keys rotate)",
            code="key_signing",
        )
    live = _live_sessions(session, kid)
    if live and not force:
        raise KeyInUse(kid, live)
    now = utcnow()
    for ended in live:
        ended.revoked_at, ended.revoked_reason = now, "key_retired"
    row = session.get(SigningKey, kid)
    if row is None:  # root: its row only records the retirement
        session.add(SigningKey(kid=ROOT, secret="", created_at=now, retired_at=now))
    else:
        row.retired_at = now
    audit.record(session, "key_retired", actor_id=actor_id, kid=kid, ended=len(live))
    return live


def _live_sessions(session: Session, kid: str) -> list[AuthSession]:
    """Sessions not revoked nor expired whose newest tokens ``kid`` signed (sessions from
    before key ids have none recorded: ``root`` signed them)."""
    signed_by = AuthSession.key_id == kid
    if kid == ROOT:
        signed_by = or_(signed_by, AuthSession.key_id.is_(None))
    return list(
        session.scalars(
            select(AuthSession)
            .where(signed_by, AuthSession.revoked_at.is_(None), AuthSession.expires_at > utcnow())
            .order_by(AuthSession.created_at)
        )
    )
