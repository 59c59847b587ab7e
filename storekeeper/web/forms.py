"""Reading console forms with the API's own schemas, so a rule on input is written once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, BeforeValidator, StringConstraints, ValidationError

from storekeeper.web.session import CSRF_FIELD, read_form

Model = TypeVar("Model", bound=BaseModel)


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)
"""For an optional query parameter: a filter form sends an unset field as ``name=``, which
means "no filter", not an invalid value. ``Annotated[X | None, Blank, Query()]``."""

Cursor = Annotated[str, StringConstraints(max_length=200)] | None
"""A paging cursor from a query string (with :data:`Blank`): the length limit is on the text,
so a blank one (None) is not measured."""


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as text fields (no files), without the CSRF token; blanks dropped."""
    form = await read_form(request)
    return {
        name: value.strip()
        for name, value in form.items()
        if isinstance(value, str) and name != CSRF_FIELD and value.strip() != ""
    }


async def form_lists(request: Request) -> dict[str, list[str]]:
    """Every value of every field (for repeated fields such as a count sheet's lines)."""
    form = await read_form(request)
    lists: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name != CSRF_FIELD:
            lists.setdefault(name, []).append(value.strip())
    return lists


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's problems as ``{field: message in words}`` for showing next to each field."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "form"
        message = str(problem["msg"]).removeprefix("Value error, ")
        errors.setdefault(field, message)
    return errors


def validate(schema: type[Model], data: Mapping[str, Any]) -> tuple[Model | None, dict[str, str]]:
    """``schema`` built from ``data``, or ``None`` and the errors per field."""
    try:
        return schema.model_validate(dict(data)), {}
    except ValidationError as exc:
        return None, field_errors(exc)
