"""The composition root's dependency injection: handlers get what they name, by name."""

from __future__ import annotations

from typing import Any

import pytest

from storekeeper.bootstrap import inject_dependencies


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
