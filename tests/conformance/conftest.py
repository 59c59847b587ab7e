"""The conformance suite's fixtures: a live server on SQLite, a shop, and clients of one kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from storekeeper.accounts.domain import Role
from tests.browser.conftest import browser  # noqa: F401  # the PWA driver's Chromium
from tests.conformance.drivers import ClientDriver, PwaDriver, PythonDriver
from tests.conftest import Actors, LiveServer

pytestmark = pytest.mark.live

MakeClient = Callable[..., ClientDriver]
"""``make_client(role=Role.CLERK)``: a new user of that role on BER, on a device of their own."""


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite only: the suite tests the clients, and must stay fast."""
    return str(request.param)


@pytest.fixture(params=["python", "pwa"])
def make_client(
    request: pytest.FixtureRequest, live_server: LiveServer, actors: Actors, tmp_path: Path
) -> Iterator[MakeClient]:
    """Makes clients of this test's kind, each a new user of BER (a clerk unless ``role``
    says otherwise) on their own device."""
    made: list[ClientDriver] = []
    chromium: Browser | None = None
    if request.param == "pwa":
        chromium = request.getfixturevalue("browser")

    def make(role: Role = Role.CLERK) -> ClientDriver:
        clerk = actors.make(role, warehouses=["BER"])
        driver: ClientDriver
        if chromium is None:
            driver = PythonDriver(live_server, clerk, tmp_path / f"replica-{len(made)}.db")
        else:
            driver = PwaDriver(chromium, live_server, clerk)
        made.append(driver)
        return driver

    yield make
    problems: list[str] = []
    for driver in made:
        problems += getattr(driver, "problems", [])
        driver.close()
    assert not problems, problems


@pytest.fixture
def client(make_client: MakeClient) -> ClientDriver:
    """One client of this test's kind (ids ``python`` and ``pwa``)."""
    return make_client()
