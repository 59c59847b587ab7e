"""The composition root's dependency injection: handlers get what they name, by name."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from storekeeper.bootstrap import inject_dependencies, mqtt_client_id
from storekeeper.config import Settings


def test_keyword_only_parameters_are_filled_by_name() -> None:
    def job(args: dict[str, Any], *, db: str, mailer: str, retries: int = 3) -> tuple[Any, ...]:
        return args, db, mailer, retries

    bound = inject_dependencies(job, {"db": "the-db", "mailer": "the-mailer", "unused": 1})
    assert bound({"x": 1}) == ({"x": 1}, "the-db", "the-mailer", 3)


def test_a_dependency_nobody_provides_fails_at_wiring_time() -> None:
    def job(args: dict[str, Any], *, printer: str) -> None:
        pass

    with pytest.raises(TypeError, match="printer"):
        inject_dependencies(job, {"db": "the-db"})


def test_default_mqtt_client_id_differs_per_deployment_on_one_host(tmp_path: Path) -> None:
    def settings(data_dir: Path, **overrides: Any) -> Settings:
        return Settings(data_dir=data_dir, _env_file=None, **overrides)  # type: ignore[call-arg]

    first = mqtt_client_id(settings(tmp_path / "a"))
    assert first == mqtt_client_id(settings(tmp_path / "a"))  # stable across restarts
    assert first.startswith(f"storekeeper-telemetry-{socket.gethostname()}-")
    assert first != mqtt_client_id(settings(tmp_path / "b"))
    other_db = settings(tmp_path / "a", database_url="postgresql+psycopg://h/other")
    assert first != mqtt_client_id(other_db)
    assert mqtt_client_id(settings(tmp_path / "a", mqtt_client_id="mine")) == "mine"
