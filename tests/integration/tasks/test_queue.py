"""The durable job queue on real SQLite and PostgreSQL: transactional enqueue, claims, retries."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from storekeeper.bootstrap import Container
from storekeeper.tasks import queue
from storekeeper.tasks.models import Job


def _jobs(container: Container) -> list[Job]:
    with container.db.reading() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def _enqueue(container: Container, name: str = "test.job", **kwargs: Any) -> None:
    with container.db.transaction() as session:
        queue.enqueue(session, name, {"n": 1}, **kwargs)


def test_a_job_commits_or_rolls_back_with_the_callers_transaction(container: Container) -> None:
    with pytest.raises(RuntimeError), container.db.transaction() as session:
        queue.enqueue(session, "test.job", {"n": 1})
        raise RuntimeError("the state change failed")
    assert _jobs(container) == []

    _enqueue(container)
    assert [(j.name, j.args, j.status) for j in _jobs(container)] == [
        ("test.job", {"n": 1}, "queued")
    ]


def test_a_key_queues_a_job_only_once(container: Container) -> None:
    _enqueue(container, key="mail:welcome:1")
    _enqueue(container, key="mail:welcome:1")
    _enqueue(container, key="mail:welcome:2")
    assert len(_jobs(container)) == 2


def test_a_claimed_job_is_not_claimed_again_until_its_lease_runs_out(
    container: Container,
) -> None:
    _enqueue(container)
    first = queue.claim_next(container.db, lease_s=0.3)
    assert first is not None and first.attempts == 1
    assert queue.claim_next(container.db, lease_s=0.3) is None
    assert queue.claim(container.db, first.id, lease_s=0.3) is None

    time.sleep(0.4)  # the runner holding it "died"
    again = queue.claim_next(container.db, lease_s=30)
    assert again is not None and (again.id, again.attempts) == (first.id, 2)


def _run(container: Container, job: queue.ClaimedJob) -> bool:
    return queue.run(job, db=container.db, jobs=container.jobs)


def test_a_job_not_yet_due_waits(container: Container) -> None:
    _enqueue(container, delay_s=60)
    assert queue.claim_next(container.db, lease_s=30) is None


def test_success_marks_done_and_failure_retries_with_backoff_then_gives_up(
    container: Container,
) -> None:
    calls: list[dict[str, Any]] = []

    def flaky(args: dict[str, Any]) -> None:
        calls.append(args)
        raise ConnectionError("smtp down")

    container.jobs.register("test.ok", calls.append)
    container.jobs.register("test.flaky", flaky)
    _enqueue(container, "test.ok")
    _enqueue(container, "test.flaky", max_attempts=2)

    ok = queue.claim(container.db, 1, lease_s=30)
    assert ok is not None and _run(container, ok)
    job = queue.claim(container.db, 2, lease_s=30)
    assert job is not None and not _run(container, job)

    done, retrying = _jobs(container)
    assert (done.status, done.finished_at is not None) == ("done", True)
    assert retrying.status == "queued" and "smtp down" in (retrying.last_error or "")
    assert retrying.run_after > retrying.created_at  # backed off, not due at once
    assert queue.claim(container.db, 2, lease_s=30) is None

    with container.db.transaction() as session:  # fast-forward the backoff
        session.get(Job, 2).run_after = retrying.created_at  # type: ignore[union-attr]
    job = queue.claim(container.db, 2, lease_s=30)
    assert job is not None and job.attempts == 2 and not _run(container, job)
    assert _jobs(container)[1].status == "failed"
    assert len(calls) == 3
    assert queue.status(container.db).counts == {"done": 1, "failed": 1}


def test_permanent_errors_and_unknown_jobs_fail_at_once(container: Container) -> None:
    def broken(_: dict[str, Any]) -> None:
        raise queue.PermanentJobError("order is gone")

    container.jobs.register("test.broken", broken)
    _enqueue(container, "test.broken")
    _enqueue(container, "test.nobody-knows-me")
    for job_id in (1, 2):
        job = queue.claim(container.db, job_id, lease_s=30)
        assert job is not None and not _run(container, job)
    assert [j.status for j in _jobs(container)] == ["failed", "failed"]
    assert "no function is registered" in (_jobs(container)[1].last_error or "")


def test_concurrent_runners_claim_each_job_exactly_once(container: Container) -> None:
    for _ in range(40):
        _enqueue(container)
    claimed: Counter[int] = Counter()
    lock = threading.Lock()

    def runner() -> None:
        while (job := queue.claim_next(container.db, lease_s=60)) is not None:
            with lock:
                claimed[job.id] += 1

    threads = [threading.Thread(target=runner) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(1, 41))
    assert set(claimed.values()) == {1}


def test_dispatch_hands_each_due_job_over_once_until_it_goes_stale(
    container: Container,
) -> None:
    _enqueue(container)
    _enqueue(container, delay_s=60)
    assert queue.due_for_dispatch(container.db, redispatch_after_s=60) == [1]
    assert queue.due_for_dispatch(container.db, redispatch_after_s=60) == []
    # The message was lost (say, a broker restarted empty): it is sent again once stale.
    assert queue.due_for_dispatch(container.db, redispatch_after_s=0) == [1]
    queue.undispatch(container.db, [1])
    assert queue.due_for_dispatch(container.db, redispatch_after_s=60) == [1]
