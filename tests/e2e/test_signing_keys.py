"""Rotating and retiring the token-signing keys: no outage, and a retirement that says what it
ends (docs/operations.md, "Rotating the signing keys")."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from storekeeper.accounts import keys, security
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings
from storekeeper.errors import Conflict
from tests.conftest import Actor, Actors, env_for, start_server, stop_server
from tests.e2e.api_support import API, assert_error

RELOAD_S = 0.2


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """The test's settings with keys reloaded every ``RELOAD_S``."""
    return Settings.model_validate({**settings.model_dump(), "keys_reload_s": RELOAD_S})


@pytest.fixture
def keyed(quick: Settings) -> Iterator[Container]:
    """A container whose keyring sees the table's changes within ``RELOAD_S``."""
    built = bootstrap(quick)
    yield built
    built.close()


def _kid(actor: Actor) -> str | None:
    return security.key_id_of(actor.headers["Authorization"].removeprefix("Bearer "))


def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(RELOAD_S / 2)


def test_a_rotation_signs_with_the_new_key_and_older_tokens_keep_working(
    keyed: Container,
) -> None:
    actors = Actors(keyed)
    before = actors.make(Role.MANAGER)
    assert _kid(before) == keys.ROOT

    with keyed.db.transaction() as session:
        new = keys.rotate(session)
    time.sleep(RELOAD_S * 2)
    after = actors.make(Role.MANAGER)

    assert _kid(after) == new
    for actor in (before, after):
        token = actor.headers["Authorization"].removeprefix("Bearer ")
        assert security.decode_token(token, key=keyed.signing_key, expected_types=("access",))
    with keyed.db.reading() as session:
        shown = {
            k.kid: k for k in keys.list_keys(session, root_secret=keyed.signing_key.root_secret)
        }
    assert shown[new].signing and not shown[keys.ROOT].signing
    assert shown[keys.ROOT].live_sessions >= 1 and shown[new].live_sessions == 1


def test_retiring_refuses_the_signing_key_and_names_the_sessions_and_devices_it_would_end(
    keyed: Container,
) -> None:
    actors = Actors(keyed)
    device = actors.make(Role.DEVICE)
    root = keyed.signing_key.root_secret
    with keyed.db.transaction() as session, pytest.raises(Conflict) as signing:
        keys.retire(session, kid=keys.ROOT, root_secret=root)
    assert signing.value.code == "key_signing"

    with keyed.db.transaction() as session:
        keys.rotate(session)
    with keyed.db.transaction() as session, pytest.raises(keys.KeyInUse) as in_use:
        keys.retire(session, kid=keys.ROOT, root_secret=root)
    assert "1 of them device(s)" in str(in_use.value)
    assert [s.label for s in in_use.value.sessions] == [device.email]

    with keyed.db.transaction() as session:
        ended = keys.retire(session, kid=keys.ROOT, root_secret=root, force=True)
    assert [s.label for s in ended] == [device.email]
    time.sleep(RELOAD_S * 2)
    token = device.headers["Authorization"].removeprefix("Bearer ")
    with pytest.raises(Exception, match="invalid or expired token"):
        security.decode_token(token, key=keyed.signing_key, expected_types=("device",))


def test_a_refresh_moves_a_session_to_the_new_key_so_the_old_one_retires_without_ending_it(
    keyed: Container,
) -> None:
    from fastapi.testclient import TestClient

    from storekeeper.api.app import create_app

    with TestClient(create_app(container=keyed)) as client:
        Actors(keyed).make(Role.CLERK, email="clerk@example.com")
        form = {"username": "clerk@example.com", "password": "correct-horse-battery"}
        pair = client.post(f"{API}/auth/token", data=form).json()
        with keyed.db.transaction() as session:
            new = keys.rotate(session)
        time.sleep(RELOAD_S * 2)
        # Retiring root would end the clerk's sign-in (and the fixture's own session) ...
        with keyed.db.transaction() as session, pytest.raises(keys.KeyInUse):
            keys.retire(session, kid=keys.ROOT, root_secret=keyed.signing_key.root_secret)
        # ... until it refreshes: its new tokens are the new key's.
        refreshed = client.post(
            f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        fresh = refreshed.json()
        assert security.key_id_of(fresh["refresh_token"]) == new
        with keyed.db.transaction() as session:
            ended = keys.retire(
                session, kid=keys.ROOT, root_secret=keyed.signing_key.root_secret, force=True
            )
        claims = security.decode_token(
            fresh["access_token"], key=keyed.signing_key, expected_types=("access",)
        )
        assert claims.session_id not in {s.id for s in ended}
        time.sleep(RELOAD_S * 2)
        bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert client.get(f"{API}/me", headers=bearer).status_code == 200
        old = {"Authorization": f"Bearer {pair['access_token']}"}
        assert_error(client.get(f"{API}/me", headers=old), 401, "invalid_token")


def test_a_token_naming_an_unknown_key_is_refused_like_a_bad_signature(keyed: Container) -> None:
    from fastapi.testclient import TestClient

    from storekeeper.api.app import create_app

    real = Actors(keyed).make(Role.MANAGER).headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(real, options={"verify_signature": False})
    # Well signed by a key this server has, but naming one it has not: refused all the same.
    forged = jwt.encode(claims, keyed.signing_key.root_secret, headers={"kid": "k-nope"})
    not_a_string = _with_header(real, kid=7)
    with TestClient(create_app(container=keyed)) as client:
        for token in (forged, not_a_string):
            answer = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
            assert_error(answer, 401, "invalid_token")


def _with_header(token: str, **fields: object) -> str:
    """``token`` with its header's ``fields`` replaced (its signature no longer matches)."""
    header, payload, signature = token.split(".")
    changed = {**json.loads(base64.urlsafe_b64decode(header + "==")), **fields}
    encoded = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
    return ".".join([encoded, payload, signature])


def _storekeeper(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None
    env = {**env_for(settings), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [script, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _sign_in(url: str, email: str) -> str:
    form = {"username": email, "password": "correct-horse-battery"}
    answer = httpx.post(f"{url}{API}/auth/token", data=form, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _me(url: str, token: str) -> int:
    return httpx.get(f"{url}{API}/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_the_cli_rotates_and_retires_keys_while_a_server_keeps_serving(
    quick: Settings, keyed: Container, tmp_path: Path
) -> None:
    Actors(keyed).make(Role.MANAGER, email="boss@example.com")
    server = start_server(quick, tmp_path / "server.log")
    try:
        old_token = _sign_in(server.url, "boss@example.com")
        assert security.key_id_of(old_token) == keys.ROOT

        rotated = _storekeeper(quick, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        new_kid = rotated.stdout.split()[1]
        _eventually(
            lambda: security.key_id_of(_sign_in(server.url, "boss@example.com")) == new_kid,
            "the server signs with the new key",
        )
        new_token = _sign_in(server.url, "boss@example.com")
        assert _me(server.url, old_token) == 200 and _me(server.url, new_token) == 200

        listed = _storekeeper(quick, "keys", "list")
        assert listed.returncode == 0 and new_kid in listed.stdout and "signs" in listed.stdout

        refused = _storekeeper(quick, "keys", "retire", keys.ROOT)
        assert refused.returncode == 1 and "live session" in refused.stdout, refused.stdout
        assert _me(server.url, old_token) == 200

        retired = _storekeeper(quick, "keys", "retire", keys.ROOT, "--force")
        assert retired.returncode == 0, retired.stdout + retired.stderr
        _eventually(lambda: _me(server.url, old_token) == 401, "the old token is refused")
        assert _me(server.url, new_token) == 200
    finally:
        stop_server(server)
