"""The ``storekeeper`` command as an operator runs it, settings checks, and the migrations.

Commands run as real subprocesses of the installed console script, against a fresh SQLite data
dir or a fresh PostgreSQL database each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect

from storekeeper import migrations
from storekeeper.api.app import create_app
from storekeeper.catalog import barcodes
from storekeeper.config import Settings
from storekeeper.demo import DEMO_USERS
from storekeeper.schema import metadata
from tests.conftest import PG_ADMIN_URL, TEST_SECRET
from tests.e2e.api_support import API

STRONG_SECRET = "a-production-secret-that-is-long-enough-0123456789"


def _storekeeper() -> list[str]:
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None, "the storekeeper console script is not installed in this venv"
    return [script]


@dataclass
class Shell:
    """An operator's shell: a working directory and ``STOREKEEPER_*`` variables."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run ``storekeeper ARGS`` and capture its output."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("STOREKEEPER_")}
        env = {
            **inherited,
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "TERM": "dumb",
            **self.env,
            **extra_env,
        }
        return subprocess.run(
            [*_storekeeper(), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def settings(self) -> Settings:
        """The settings the shell's commands see, plus the test secret for signing tokens."""
        return Settings(
            data_dir=Path(self.env["STOREKEEPER_DATA_DIR"]),
            database_url=self.env.get("STOREKEEPER_DATABASE_URL", ""),
            secret_key=TEST_SECRET,
            _env_file=None,
        )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database (plain ``postgresql://`` URL), dropped after."""
    name = f"sk_cli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> Shell:
    """A shell configured for embedded mode (data dir only) or for PostgreSQL."""
    env = {"STOREKEEPER_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgresql":
        env["STOREKEEPER_DATABASE_URL"] = request.getfixturevalue("fresh_pg_url")
    return Shell(cwd=tmp_path, env=env)


@pytest.fixture
def sqlite_shell(tmp_path: Path) -> Shell:
    """A shell in embedded mode only, for checks that do not depend on the database."""
    return Shell(cwd=tmp_path, env={"STOREKEEPER_DATA_DIR": str(tmp_path / "data")})


def _sign_in(settings: Settings, email: str, password: str) -> dict[str, object]:
    """Sign in through the app on the shell's database and return ``/me``."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = client.post(f"{API}/auth/token", data={"username": email, "password": password})
        assert token.status_code == 200, token.text
        me = client.get(
            f"{API}/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        assert me.status_code == 200, me.text
        result: dict[str, object] = me.json()
        return result


# --- migrate ----------------------------------------------------------------------------------


def test_migrate_brings_a_fresh_database_to_head_and_is_safe_to_repeat(shell: Shell) -> None:
    first = shell.run("migrate")
    second = shell.run("migrate")

    head = migrations.head_revision()
    assert first.returncode == 0, _output(first)
    assert second.returncode == 0, _output(second)
    assert f"database at revision {head}" in first.stdout
    assert f"database at revision {head}" in second.stdout
    assert migrations.current_revision(shell.settings().effective_database_url) == head


def test_embedded_mode_keeps_its_database_in_the_data_dir(sqlite_shell: Shell) -> None:
    result = sqlite_shell.run("migrate")

    assert result.returncode == 0, _output(result)
    assert (Path(sqlite_shell.env["STOREKEEPER_DATA_DIR"]) / "storekeeper.db").is_file()


# --- demo -------------------------------------------------------------------------------------


def test_demo_if_empty_loads_once_then_leaves_the_data_alone(shell: Shell) -> None:
    first = shell.run("demo", "--if-empty")
    second = shell.run("demo", "--if-empty")

    assert first.returncode == 0, _output(first)
    assert "demo data loaded: 50 products, 3 warehouses, 4 users" in first.stdout
    assert second.returncode == 0, _output(second)
    assert "has data already" in second.stdout
    assert "demo data loaded" not in second.stdout
    email, password, role = DEMO_USERS[1]
    assert _sign_in(shell.settings(), email, password)["role"] == role.value
    with TestClient(create_app(shell.settings())) as client:
        listed = client.get(f"{API}/products", params={"limit": 200}).json()
    assert len(listed["items"]) == 50
    codes = [code for item in listed["items"] for code in item["barcodes"]]
    assert len(set(codes)) == 50 and all(barcodes.parse(c).kind == "ean13" for c in codes)


def test_demo_without_if_empty_refuses_a_database_with_data(sqlite_shell: Shell) -> None:
    sqlite_shell.run("demo", "--if-empty", "--products", "3")

    again = sqlite_shell.run("demo", "--products", "3")

    assert again.returncode == 1
    assert "not empty" in again.stdout
    assert "Traceback" not in _output(again)


# --- users create -----------------------------------------------------------------------------


def test_users_create_makes_an_account_that_can_sign_in(shell: Shell) -> None:
    result = shell.run(
        "users",
        "create",
        "--email",
        "Root@Example.com",
        "--password",
        "a-long-admin-password",
        "--role",
        "admin",
    )

    assert result.returncode == 0, _output(result)
    assert "created admin root@example.com" in result.stdout
    me = _sign_in(shell.settings(), "root@example.com", "a-long-admin-password")
    assert (me["email"], me["role"]) == ("root@example.com", "admin")


def test_users_create_refuses_an_e_mail_that_exists(sqlite_shell: Shell) -> None:
    args = ("users", "create", "--password", "a-long-password-1", "--role", "clerk")
    sqlite_shell.run(*args, "--email", "clerk@example.com")

    again = sqlite_shell.run(*args, "--email", "CLERK@example.com")

    assert again.returncode == 1
    assert "exists already" in again.stdout
    assert "Traceback" not in _output(again)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--email", "x@example.com", "--password", "a-long-password-1", "--role", "wizard"),
            "wizard",
        ),
        (
            ("--email", "x@example.com", "--password", "short", "--role", "admin"),
            "at least 10 characters",
        ),
        (
            ("--email", "not-an-e-mail", "--password", "a-long-password-1", "--role", "admin"),
            "email",
        ),
        (("--email", "x@example.com", "--password", "a-long-password-1"), "--role"),
    ],
    ids=["unknown-role", "short-password", "bad-e-mail", "no-role"],
)
def test_users_create_explains_bad_input_without_a_traceback(
    sqlite_shell: Shell, args: tuple[str, ...], message: str
) -> None:
    result = sqlite_shell.run("users", "create", *args)

    assert result.returncode != 0
    assert message in _output(result)
    assert "Traceback" not in _output(result)
    assert not (Path(sqlite_shell.env["STOREKEEPER_DATA_DIR"]) / "storekeeper.db").exists()


# --- config -----------------------------------------------------------------------------------


def test_config_masks_the_secret_key_and_url_passwords(sqlite_shell: Shell) -> None:
    result = sqlite_shell.run(
        "config",
        STOREKEEPER_SECRET_KEY="s3cr3t-signing-key-value",
        STOREKEEPER_DATABASE_URL="postgresql://shop:hunter2-db@db.example:5432/shop",
        STOREKEEPER_BROKER_URL="amqp://rabbit:hunter3-mq@mq.example:5672/",
        STOREKEEPER_PORT="8123",
    )

    out = _output(result)
    assert result.returncode == 0, out
    for secret in ("s3cr3t", "hunter2", "hunter3"):
        assert secret not in out
    assert "**********" in out
    assert "postgresql://shop:***@db.example:5432/shop" in out
    assert "postgresql+psycopg://shop:***@db.example:5432/shop" in out
    assert "amqp://rabbit:***@mq.example:5672/" in out
    assert "8123" in out


def test_config_says_the_secret_is_generated_when_none_is_set(sqlite_shell: Shell) -> None:
    result = sqlite_shell.run("config")

    assert result.returncode == 0, _output(result)
    assert "(generated in data dir)" in result.stdout


def test_config_reads_storekeeper_toml_and_the_environment_wins(sqlite_shell: Shell) -> None:
    (sqlite_shell.cwd / "storekeeper.toml").write_text('port = 8181\nhost = "0.0.0.0"\n')

    result = sqlite_shell.run("config", STOREKEEPER_PORT="8282")

    assert result.returncode == 0, _output(result)
    assert "8282" in result.stdout
    assert "8181" not in result.stdout
    assert "0.0.0.0" in result.stdout


# --- production settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"database_url": "postgresql://db/shop"}, "STOREKEEPER_SECRET_KEY"),
        (
            {"database_url": "postgresql://db/shop", "secret_key": "too-short"},
            "STOREKEEPER_SECRET_KEY",
        ),
        ({"secret_key": STRONG_SECRET}, "STOREKEEPER_DATABASE_URL"),
    ],
    ids=["no-secret", "short-secret", "no-database"],
)
def test_production_settings_refuse_development_defaults(
    overrides: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(env="production", _env_file=None, **overrides)  # type: ignore[arg-type]


def test_production_settings_with_a_strong_secret_and_a_database_are_accepted() -> None:
    settings = Settings(
        env="production",
        secret_key=STRONG_SECRET,
        database_url="postgresql://db/shop",
        _env_file=None,
    )

    assert settings.signing_key() == STRONG_SECRET
    assert settings.effective_database_url == "postgresql+psycopg://db/shop"


def test_cli_names_an_insecure_production_setting_without_a_traceback(
    sqlite_shell: Shell,
) -> None:
    result = sqlite_shell.run(
        "migrate",
        STOREKEEPER_ENV="production",
        STOREKEEPER_DATABASE_URL="postgresql://db.invalid/shop",
    )

    assert result.returncode == 2
    assert "STOREKEEPER_SECRET_KEY" in result.stderr
    assert "Traceback" not in _output(result)


# --- migrations against the models ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_migrations_build_exactly_the_schema_the_models_declare(empty_database_url: str) -> None:
    assert migrations.current_revision(empty_database_url) is None

    migrations.upgrade(empty_database_url)

    assert migrations.current_revision(empty_database_url) == migrations.head_revision()
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
            assert set(inspect(conn).get_table_names()) == set(metadata.tables) | {
                "alembic_version"
            }
    finally:
        engine.dispose()


def test_migrations_downgrade_to_nothing_and_upgrade_again(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)

    command.downgrade(migrations.alembic_config(empty_database_url), "base")
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrations.upgrade(empty_database_url)
    assert migrations.current_revision(empty_database_url) == migrations.head_revision()
