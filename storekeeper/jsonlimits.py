"""Free-form JSON as the API accepts it: bounded depth and size, storable on both databases.

One Pydantic type, :data:`FreeJson` (:func:`limits` for other bounds), wherever a request
carries JSON whose shape we do not define (product ``attributes``, a sync mutation's ``data``);
its refusals carry the codes in :data:`LIMIT_CODES`, which the HTTP error mapping answers as 422
with that code.
"""

from __future__ import annotations

import json
import math
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_DEPTH = 32
"""Levels of nesting below the top object; orjson, which writes our answers, stops at 255."""
MAX_BYTES = 16 * 1024
"""Bytes of the document written as compact JSON."""
TOO_DEEP = "json_too_deep"
TOO_LARGE = "json_too_large"
LIMIT_CODES = frozenset({TOO_DEEP, TOO_LARGE})


def check(
    value: dict[str, Any], *, max_depth: int, max_bytes: int, storable: bool = True
) -> dict[str, Any]:
    """``value`` if within the limits (and ``storable`` as it is); else a Pydantic error."""
    # Iterative, so a document nested far beyond the limit cannot exhaust the stack here.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise PydanticCustomError(
                    TOO_DEEP, "JSON nested more than {limit} levels", {"limit": max_depth}
                )
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif not storable:
            continue
        elif isinstance(item, float) and not math.isfinite(item):
            # Not JSON: PostgreSQL refuses them, SQLite turns them into null.
            raise ValueError("JSON must not contain NaN or Infinity")
        elif isinstance(item, str):
            if "\x00" in item:  # JSONB refuses NUL
                raise ValueError("JSON must not contain NUL characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate is not UTF-8
                raise ValueError("JSON must be valid Unicode text") from exc
    # surrogatepass: a lone surrogate (allowed when not ``storable``) counts, and cannot fail.
    size = len(
        json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(errors="surrogatepass")
    )
    if size > max_bytes:
        raise PydanticCustomError(TOO_LARGE, "JSON larger than {limit} bytes", {"limit": max_bytes})
    return value


def limits(
    *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES, storable: bool = True
) -> AfterValidator:
    """The validator of free-form JSON within other limits (``Annotated[dict[str, Any], ...]``)."""
    return AfterValidator(
        partial(check, max_depth=max_depth, max_bytes=max_bytes, storable=storable)
    )


FreeJson = Annotated[dict[str, Any], Field(max_length=100), limits()]
"""A free-form JSON object: at most 100 keys, :data:`MAX_DEPTH` levels, :data:`MAX_BYTES`."""
