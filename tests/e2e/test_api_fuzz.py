"""Property-based fuzzing of the HTTP API with schemathesis, driven by the published OpenAPI.

Every operation gets generated requests, valid and invalid, through the real app on a real
database; the answers must be no 5xx, only documented status codes, bodies matching the declared
schemas, and invalid input refused.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings
from tests.conftest import Actor, Actors
from tests.shop import add_product, add_warehouses

# schemathesis draws some values with the random module, which Hypothesis (seeding it per
# example) only frowns upon: the runs stay reproducible, see the seed below.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)
SEED = 20_261_122
EXAMPLES = 25  # random ones per operation; the coverage phase adds its boundary cases
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite only: the checks are about the HTTP contract, and PostgreSQL would double the time
    of the file (15 s to 45 s on one core) for what the rest of the suite already covers there:
    its own failure modes, such as NUL characters refused in text, are tested on both backends
    in test_errors.py. A PostgreSQL run of this file found nothing more when it was written."""
    return str(request.param)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings without rate limits: a fuzzer is a burst of requests by design, and
    limits are tested on their own."""
    return settings.model_copy(update={"rate_limits_enabled": False})


def _requests_only(app: ASGIApp) -> ASGIApp:
    """``app`` without its lifespan: the ``client`` fixture already runs it once, and schemathesis
    would otherwise start a second one (a second background worker) that outlives the test."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # answering nothing is how an app says it has no lifespan
        await app(scope, receive, send)

    return serve


@pytest.fixture(params=[Role.ADMIN, Role.CUSTOMER], ids=["as-admin", "as-customer"])
def api_schema(
    request: pytest.FixtureRequest, client: TestClient, actors: Actors, manager: Actor
) -> BaseSchema:
    """The app's OpenAPI loaded by schemathesis, calling as an admin or as a customer, over a
    small shop in which the documented examples (DEMO-0001 from MUC to HAM, ...) succeed."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "DEMO-0001", stock={"BER": 20, "HAM": 5, "MUC": 50})
    caller = actors.make(request.param)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": caller.headers,
            "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True},
        }
    )
    return schemathesis.openapi.from_asgi(
        "/openapi.json", _requests_only(client.app), config=config
    )


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 renames each operation's subtest through Node._nodeid, which pytest 9.2
    # no longer has (it keeps the id in _id): give it the attribute back. Drop this when
    # schemathesis follows pytest.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema").exclude(
    name=[
        # Not a defect: it ends the session whose token the fuzzer sends with every request.
        "POST /api/v1/auth/logout",
    ]
)


@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None)
def test_api_honours_its_openapi_contract(case: Case) -> None:
    case.call_and_validate(checks=CHECKS)
