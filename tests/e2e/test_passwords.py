"""Password change, an admin's reset, and a reset by an e-mailed single-use token."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from storekeeper.accounts.domain import Role
from storekeeper.accounts.models import PasswordReset
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.notifications.handlers import SEND_MAIL
from storekeeper.tasks.models import Job
from tests.conftest import Actors
from tests.e2e.api_support import API, assert_error

NEW = "a-brand-new-passphrase"


def _sign_in(client: TestClient, email: str, password: str) -> int:
    form = {"username": email, "password": password}
    return client.post(f"{API}/auth/token", data=form).status_code


def _mails(settings: Settings, count: int, timeout_s: float = 30) -> list[EmailMessage]:
    outbox: Path = settings.data_dir / "outbox-mail"
    deadline = time.monotonic() + timeout_s
    while True:
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if len(files) >= count:
            return [
                message_from_bytes(f.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for f in files
            ]
        assert time.monotonic() < deadline, f"{len(files)} of {count} mails arrived"
        time.sleep(0.05)


def _token(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r'"token": "([A-Za-z0-9_-]{40,})"', body.get_content())
    assert found, body.get_content()
    return found.group(1)


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(
    client: TestClient, actors: Actors
) -> None:
    clerk = actors.make(Role.CLERK)
    other = client.post(
        f"{API}/auth/token", data={"username": clerk.email, "password": clerk.password}
    ).json()
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    url = f"{API}/me/password"

    wrong = client.post(
        url, headers=clerk.headers, json={"current_password": "nope", "new_password": NEW}
    )
    weak = client.post(
        url,
        headers=clerk.headers,
        json={"current_password": clerk.password, "new_password": "password123"},
    )
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(weak, 422, "weak_password")
    assert client.get(f"{API}/me", headers=other_headers).status_code == 200

    done = client.post(
        url, headers=clerk.headers, json={"current_password": clerk.password, "new_password": NEW}
    )

    assert done.status_code == 204, done.text
    assert client.get(f"{API}/me", headers=clerk.headers).status_code == 200  # this one stays
    assert client.get(f"{API}/me", headers=other_headers).status_code == 401
    refreshed = client.post(f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401
    assert _sign_in(client, clerk.email, clerk.password) == 401
    assert _sign_in(client, clerk.email, NEW) == 200
    admin = actors.make(Role.ADMIN)
    kinds = [e["kind"] for e in client.get(f"{API}/audit", headers=admin.headers).json()["items"]]
    assert "password_changed" in kinds


def test_an_admin_sets_a_password_and_every_session_of_the_user_ends(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    customer = actors.make(Role.CUSTOMER)
    manager = actors.make(Role.MANAGER)
    device = actors.make(Role.DEVICE)
    url = f"{API}/users/{customer.id}/password"

    by_manager = client.post(url, headers=manager.headers, json={"new_password": NEW})
    to_device = client.post(
        f"{API}/users/{device.id}/password", headers=admin.headers, json={"new_password": NEW}
    )
    done = client.post(url, headers=admin.headers, json={"new_password": NEW})

    assert by_manager.status_code == 403
    assert_error(to_device, 422, "is_a_device")
    assert done.status_code == 200, done.text
    assert client.get(f"{API}/me", headers=customer.headers).status_code == 401
    assert _sign_in(client, customer.email, NEW) == 200
    audit = client.get(f"{API}/audit?kind=password_reset_by_admin", headers=admin.headers).json()
    assert [(e["user_id"], e["actor_id"]) for e in audit["items"]] == [
        (str(customer.id), str(admin.id))
    ]


def test_a_reset_request_answers_alike_for_unknown_and_known_accounts_and_mails_only_these(
    client: TestClient, actors: Actors, settings: Settings, container: Container
) -> None:
    customer = actors.make(Role.CUSTOMER)

    unknown = client.post(f"{API}/auth/password-reset", json={"email": "nobody@example.com"})
    known = client.post(f"{API}/auth/password-reset", json={"email": customer.email.upper()})

    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    mails = _mails(settings, 1)
    with container.db.reading() as session:  # the unknown address queued no mail either
        mail_jobs = session.scalars(select(Job).where(Job.name == SEND_MAIL))
        sent_to = [job.args["to"] for job in mail_jobs]
    assert sent_to == [customer.email]
    assert mails[0]["To"] == customer.email
    assert "reset" in mails[0]["Subject"].lower()


def test_a_mailed_reset_token_sets_the_password_once_and_ends_every_session(
    client: TestClient, actors: Actors, settings: Settings
) -> None:
    customer = actors.make(Role.CUSTOMER)
    assert client.post(f"{API}/auth/password-reset", json={"email": customer.email}).status_code
    token = _token(_mails(settings, 1)[0])
    confirm = f"{API}/auth/password-reset/confirm"

    weak = client.post(confirm, json={"token": token, "new_password": "password123"})
    done = client.post(confirm, json={"token": token, "new_password": NEW})
    again = client.post(confirm, json={"token": token, "new_password": NEW + "-again"})
    forged = client.post(confirm, json={"token": "x" * 43, "new_password": NEW})

    assert_error(weak, 422, "weak_password")  # a refused password does not use the token up
    assert done.status_code == 204, done.text
    assert_error(again, 422, "invalid_reset_token")
    assert_error(forged, 422, "invalid_reset_token")
    assert client.get(f"{API}/me", headers=customer.headers).status_code == 401
    assert _sign_in(client, customer.email, customer.password) == 401
    assert _sign_in(client, customer.email, NEW) == 200


def test_an_expired_reset_token_is_refused(
    client: TestClient, actors: Actors, settings: Settings, container: Container
) -> None:
    customer = actors.make(Role.CUSTOMER)
    client.post(f"{API}/auth/password-reset", json={"email": customer.email})
    token = _token(_mails(settings, 1)[0])
    with container.db.transaction() as session:  # the token's 30 minutes have passed
        session.execute(update(PasswordReset).values(expires_at=PasswordReset.created_at))

    r = client.post(
        f"{API}/auth/password-reset/confirm", json={"token": token, "new_password": NEW}
    )

    assert_error(r, 422, "invalid_reset_token")
    assert _sign_in(client, customer.email, customer.password) == 200
