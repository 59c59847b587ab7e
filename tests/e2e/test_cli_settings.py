"""A newcomer's mistakes in settings: named in one line, never a traceback or silence."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from storekeeper.config import Settings, warn_unknown_environment
from tests.e2e.test_cli import STRONG_SECRET, Shell

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """A shell in embedded mode."""
    return Shell(cwd=tmp_path, env={"STOREKEEPER_DATA_DIR": str(tmp_path / "data")})


def test_an_unknown_setting_is_warned_about_with_the_closest_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {
        "STOREKEEPER_DATABSE_URL": "postgresql://db/shop",
        "STOREKEEPER_PORT": "8001",
        "STOREKEEPER_TEST_PG_URL": "postgresql://db/test",
        "PATH": "/bin",
    }
    with caplog.at_level(logging.WARNING, logger="storekeeper.config"):
        assert warn_unknown_environment(environ) == ["STOREKEEPER_DATABSE_URL"]
    (record,) = caplog.records
    assert "STOREKEEPER_DATABSE_URL" in record.getMessage()
    assert "did you mean STOREKEEPER_DATABASE_URL" in record.getMessage()


def test_the_cli_warns_in_one_line_about_a_mistyped_setting_name(shell: Shell) -> None:
    result = shell.run("config", STOREKEEPER_DATABSE_URL="postgresql://db/shop")

    assert result.returncode == 0, _output(result)
    (line,) = [ln for ln in result.stderr.splitlines() if "STOREKEEPER_DATABSE_URL" in ln]
    assert "STOREKEEPER_DATABASE_URL" in line


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--no-migrate"], ["demo"], ["config"]])
def test_a_mistyped_database_url_scheme_is_one_line_not_a_traceback(
    shell: Shell, command: list[str]
) -> None:
    result = shell.run(*command, STOREKEEPER_DATABASE_URL="postgress://me@localhost/shop")

    assert result.returncode == 2
    assert "Traceback" not in _output(result)
    (line,) = [ln for ln in result.stderr.splitlines() if "postgress" in ln]
    assert "STOREKEEPER_DATABASE_URL" in line
    assert len(result.stderr.splitlines()) <= 3


def _example_secret() -> str:
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.startswith("STOREKEEPER_SECRET_KEY="):
            return line.partition("=")[2]
    raise AssertionError("deploy/.env.example has no STOREKEEPER_SECRET_KEY")


@pytest.mark.parametrize(
    "secret",
    [
        _example_secret(),
        "x" * 40,
        "changeme-changeme-changeme-changeme",
        "your-secret-key-goes-here-0123456789",
        "ünïcödé-but-short-ß",  # 31 characters is not 32 bytes' worth of randomness anyway
    ],
    ids=["env-example", "one-character", "changeme", "your-secret", "short"],
)
def test_production_refuses_the_example_and_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="STOREKEEPER_SECRET_KEY"):
        Settings(
            env="production",
            secret_key=secret,  # type: ignore[arg-type]
            database_url="postgresql://db/shop",
            _env_file=None,
        )


def test_production_accepts_a_generated_secret() -> None:
    settings = Settings(
        env="production",
        secret_key=STRONG_SECRET,  # type: ignore[arg-type]
        database_url="postgresql://db/shop",
        _env_file=None,
    )
    assert settings.env == "production"


def test_deploy_env_is_ignored_by_git() -> None:
    root = DEPLOY.parent
    checked = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=root, check=False, timeout=30
    )
    assert checked.returncode == 0


def test_demo_refuses_production_without_force(shell: Shell) -> None:
    production = {
        "STOREKEEPER_ENV": "production",
        "STOREKEEPER_SECRET_KEY": STRONG_SECRET,
        "STOREKEEPER_DATABASE_URL": f"sqlite:///{shell.cwd / 'prod.db'}",
    }
    refused = shell.run("demo", **production)
    assert refused.returncode == 1
    assert "production" in refused.stdout and "--force" in refused.stdout
    assert not (shell.cwd / "prod.db").exists()

    skipped = shell.run("demo", "--if-empty", **production)  # what `make run` does
    assert skipped.returncode == 0
    assert "demo data not loaded" in skipped.stdout

    forced = shell.run("demo", "--force", "--products", "3", **production)
    assert forced.returncode == 0, _output(forced)
    assert "warning" in forced.stderr
    assert "demo data loaded" in forced.stdout
