"""How an import sizes its batches: by how long the last one held the write lock."""

from __future__ import annotations

from storekeeper.imports.service import (
    MAX_BATCH_ROWS,
    MIN_BATCH_ROWS,
    TARGET_BATCH_S,
    next_batch_size,
)


def test_a_batch_that_took_the_target_time_keeps_its_size() -> None:
    assert next_batch_size(400, 400, TARGET_BATCH_S) == 400


def test_a_fast_batch_at_most_doubles_the_next() -> None:
    assert next_batch_size(100, 100, TARGET_BATCH_S / 10) == 200


def test_a_slow_batch_shrinks_the_next_but_not_below_the_floor() -> None:
    assert next_batch_size(400, 400, TARGET_BATCH_S * 2) == 200
    assert next_batch_size(400, 400, TARGET_BATCH_S * 100) == MIN_BATCH_ROWS


def test_the_size_never_passes_the_ceiling() -> None:
    assert next_batch_size(MAX_BATCH_ROWS, MAX_BATCH_ROWS, 0.0) == MAX_BATCH_ROWS


def test_a_short_last_batch_changes_nothing() -> None:
    assert next_batch_size(400, 7, TARGET_BATCH_S * 100) == 400
