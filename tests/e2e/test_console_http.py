"""The console over plain HTTP: what a browser without JavaScript (or a crawler) gets."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from storekeeper.web.static_files import static_url
from storekeeper.web.templating import PAGE_POLICY
from tests.conftest import Actor


def _signed_in(client: TestClient, actor: Actor) -> str:
    """Sign ``actor`` in through the form; the page's CSRF token."""
    form = client.get("/login").text
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert login_csrf
    answer = client.post(
        "/login",
        data={"email": actor.email, "password": actor.password, "login_csrf": login_csrf[1]},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert token
    return token[1]


def test_an_unknown_console_path_is_a_page_in_words_with_the_page_policy(
    client: TestClient,
) -> None:
    answer = client.get("/nowhere")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == PAGE_POLICY
    assert answer.headers["cache-control"] == "no-store"
    assert "Not found" in answer.text


def test_pages_ask_for_a_session_and_come_back_after_sign_in(
    client: TestClient, manager: Actor
) -> None:
    answer = client.get("/orders?status=paid", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/orders%3Fstatus%3Dpaid"
    _signed_in(client, manager)
    assert client.get("/orders", follow_redirects=False).status_code == 200


def test_static_files_are_immutable_under_their_content_hash_only(client: TestClient) -> None:
    current = client.get(static_url("console.css"))
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/static/console.css?v=old").headers["cache-control"] == "no-cache"
    assert client.get("/static/../web/session.py").status_code == 404


def test_a_login_form_without_its_double_submit_cookie_is_refused(
    client: TestClient, manager: Actor
) -> None:
    answer = client.post(
        "/login",
        data={"email": manager.email, "password": manager.password, "login_csrf": "forged"},
        follow_redirects=False,
    )
    assert answer.status_code == 400
    assert "sk_console" not in answer.cookies


def test_sign_in_redirects_only_within_this_site(client: TestClient, manager: Actor) -> None:
    form = client.get("/login?next=//evil.example/x").text
    assert 'name="next" value="/"' in form
