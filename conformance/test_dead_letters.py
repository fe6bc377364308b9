"""Dead letters (issue 7): a task that fails for good (retries exhausted, payload unreadable) is
kept in its queue's dead-letter set with its error, the error of every attempt, its attempts and
times, for ``dead_letter_retention`` seconds (default: ``retention``).

- ``list_dead(queue, limit=100, offset=0)``: TaskInfo of the dead letters, newest first;
- ``requeue_dead(queue, task_ids=None)``: run them again with fresh retries, keeping their
  history (attempts, errors); returns how many were requeued;
- ``purge_dead(queue, older_than=None)``: delete them (records included), all or those that
  failed at least ``older_than`` seconds ago; returns how many;
- ``get_queue_status(queue)["dead_letters"]`` counts them.

Every test uses two managers on one Redis and namespace, as two processes would.
"""

from __future__ import annotations

from typing import Any

import ops_tasks
import pytest
import tasks
from kew import (
    InvalidArgumentError,
    QueueConfig,
    QueueNotFoundError,
    QueuePriority,
    TaskInfo,
    TaskNotFoundError,
    TaskQueueManager,
    TaskStatus,
)
from kew_testkit import assert_task_completed, assert_task_failed, drain, wait_until

Q = "dlq"
P = QueuePriority.MEDIUM
BOUND = 10.0  # real seconds any wait may take at most


def _config(**overrides: Any) -> QueueConfig:
    values: dict[str, Any] = {
        "max_workers": 2,
        "max_retries": 2,
        "retry_delay": 0,
        "max_circuit_breaker_failures": 10**6,  # these tasks fail on purpose
    }
    values.update(overrides)
    return QueueConfig(Q, **values)


async def _pair(factory: Any, **settings: Any) -> tuple[Any, Any]:
    a = await factory(**settings)
    b = await factory(**settings)
    return a, b


async def _dead_ids(manager: Any, **kwargs: Any) -> list[str]:
    return [info.task_id for info in await manager.list_dead(Q, **kwargs)]


async def test_a_task_failing_for_good_is_a_dead_letter_with_its_errors_and_attempts(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a, b = await _pair(kew_manager_factory)
    for m in (a, b):
        await m.create_queue(_config())
    await a.submit_task("doomed", Q, "always_fail", ops_tasks.always_fail, P, probe.name, "doomed")
    await a.submit_task("fine", Q, "stamp", ops_tasks.stamp, P, probe.name, "fine")
    await a.submit_task("late", Q, "fail_until", ops_tasks.fail_until, P, probe.name, "late", 2)
    assert_task_failed(await b.wait_for_task("doomed", timeout=BOUND), "doomed attempt 3")
    assert_task_completed(await b.wait_for_task("fine", timeout=BOUND))
    assert_task_completed(await b.wait_for_task("late", timeout=BOUND))  # on its last retry

    for m in (a, b):  # only the task that failed for good is a dead letter, seen everywhere
        dead = await m.list_dead(Q)
        assert [d.task_id for d in dead] == ["doomed"]
        assert (await m.get_queue_status(Q))["dead_letters"] == 1
    info: TaskInfo = dead[0]
    assert info.status is TaskStatus.FAILED
    assert info.queue_name == Q
    assert info.task_type == "always_fail"
    assert info.error == "doomed attempt 3"
    assert info.errors == ["doomed attempt 1", "doomed attempt 2", "doomed attempt 3"]
    assert info.attempts == 3
    assert info.retry_count == 2
    assert info.result is None
    assert info.queued_time is not None and info.started_time is not None
    assert info.completed_time is not None
    assert info.queued_time <= info.started_time <= info.completed_time
    # the record read by id tells the same story
    assert (await a.get_task_status("doomed")).to_dict() == info.to_dict()


async def test_a_task_whose_payload_cannot_be_read_is_a_dead_letter_at_once(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a, b = await _pair(kew_manager_factory)
    for m in (a, b):
        await m.create_queue(_config(max_retries=3))
    await a.submit_task(
        "garbled",
        Q,
        "takes_anything",
        ops_tasks.takes_anything,
        P,
        probe.name,
        "garbled",
        ops_tasks.BadOnLoad("garbled"),
    )
    info = await b.wait_for_task("garbled", timeout=BOUND)
    assert_task_failed(info)
    assert info.error
    assert probe.labels == []  # the function never ran: its arguments could not be loaded
    dead = await b.list_dead(Q)
    assert [d.task_id for d in dead] == ["garbled"]
    assert dead[0].attempts == 1  # no retry can read the payload either
    assert dead[0].errors == [info.error]


async def test_requeue_dead_runs_a_task_again_with_fresh_retries_keeping_its_history(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a, b = await _pair(kew_manager_factory)
    for m in (a, b):
        await m.create_queue(_config())
    await a.submit_task("heals", Q, "fail_until", ops_tasks.fail_until, P, probe.name, "heals", 3)
    await a.submit_task("never", Q, "always_fail", ops_tasks.always_fail, P, probe.name, "never")
    await a.submit_task("ok", Q, "stamp", ops_tasks.stamp, P, probe.name, "ok")
    for task_id in ("heals", "never"):
        assert_task_failed(await b.wait_for_task(task_id, timeout=BOUND), retry_count=2)
    assert_task_completed(await b.wait_for_task("ok", timeout=BOUND))
    assert sorted(await _dead_ids(a)) == ["heals", "never"]

    # ids that are not dead letters are skipped
    assert await b.requeue_dead(Q, ["ok", "no-such-task"]) == 0
    assert await b.requeue_dead(Q, []) == 0
    assert_task_completed(await a.get_task_status("ok"))

    assert await b.requeue_dead(Q, ["heals"]) == 1
    assert await _dead_ids(a) == ["never"]
    info = await a.wait_for_task("heals", timeout=BOUND)
    assert_task_completed(info, "heals")  # its 4th run succeeds
    assert info.attempts == 4
    assert info.errors == ["heals attempt 1", "heals attempt 2", "heals attempt 3"]
    assert info.retry_count == 0

    assert await a.requeue_dead(Q) == 1  # every dead letter: "never" fails 3 more times
    info = await b.wait_for_task("never", timeout=BOUND)
    assert_task_failed(info, "never attempt 6", retry_count=2)
    assert info.attempts == 6
    assert info.errors == [f"never attempt {n}" for n in range(1, 7)]
    assert await _dead_ids(b) == ["never"]  # a dead letter again, listed once
    assert (await a.get_queue_status(Q))["dead_letters"] == 1
    assert probe.attempts == {"heals": 4, "never": 6, "ok": 1}


async def test_list_dead_pages_newest_first_and_purge_dead_deletes_by_age_or_all(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    a, b = await _pair(kew_manager_factory)
    for m in (a, b):
        await m.create_queue(_config(max_retries=0))
    for task_id in ("old", "mid", "new"):  # failed 200 s, 100 s and 0 s before the end
        await a.submit_task(
            task_id, Q, "always_fail", ops_tasks.always_fail, P, probe.name, task_id
        )
        assert_task_failed(await b.wait_for_task(task_id, timeout=BOUND))
        if task_id != "new":
            await fake_clock.advance(100)

    assert await _dead_ids(b) == ["new", "mid", "old"]
    assert await _dead_ids(b, limit=2) == ["new", "mid"]
    assert await _dead_ids(b, limit=2, offset=2) == ["old"]
    assert await _dead_ids(b, offset=3) == []

    assert await a.purge_dead(Q, older_than=150) == 1
    assert await _dead_ids(b) == ["new", "mid"]
    with pytest.raises(TaskNotFoundError):
        await b.get_task_status("old")  # its record is deleted too
    assert await b.purge_dead(Q, older_than=100) == 1  # failed exactly 100 s ago: "at least"
    assert await _dead_ids(a) == ["new"]
    assert await b.purge_dead(Q, older_than=100) == 0

    assert await b.purge_dead(Q) == 1
    assert await _dead_ids(a) == []
    assert (await a.get_queue_status(Q))["dead_letters"] == 0
    for task_id in ("old", "mid", "new"):
        with pytest.raises(TaskNotFoundError):
            await a.get_task_status(task_id)
    assert await a.purge_dead(Q) == 0


async def test_dead_letters_expire_after_the_dead_letter_retention(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a, b = await _pair(kew_manager_factory, dead_letter_retention=1.0)  # retention stays 24 h
    for m in (a, b):
        await m.create_queue(_config(max_retries=0))
    await a.submit_task("brief", Q, "always_fail", ops_tasks.always_fail, P, probe.name, "brief")
    await a.submit_task("kept", Q, "stamp", ops_tasks.stamp, P, probe.name, "kept")
    assert_task_failed(await b.wait_for_task("brief", timeout=BOUND))
    assert_task_completed(await b.wait_for_task("kept", timeout=BOUND))
    assert await _dead_ids(a) == ["brief"]

    async def expired() -> bool:
        try:
            await b.get_task_status("brief")
        except TaskNotFoundError:
            return True
        return False

    await wait_until(expired, timeout=5.0, message="dead letter kept beyond its retention")
    assert (await a.get_queue_status(Q))["dead_letters"] == 0  # counted only while kept
    assert await _dead_ids(b) == []
    assert_task_completed(await a.get_task_status("kept"))  # the general retention is unchanged


def test_a_bad_dead_letter_retention_is_rejected(kew_redis_url: str) -> None:
    accepted = []
    for bad in (-1, 0, float("nan"), float("inf"), "60", True):
        try:
            TaskQueueManager(kew_redis_url, dead_letter_retention=bad)
        except InvalidArgumentError:
            continue
        accepted.append(bad)
    assert accepted == [], f"dead_letter_retention accepted {accepted!r}"


async def test_dead_letter_calls_reject_bad_arguments(kew_manager_factory: Any) -> None:
    a, _ = await _pair(kew_manager_factory)
    await a.create_queue(_config())
    for call in (a.list_dead, a.requeue_dead, a.purge_dead):
        with pytest.raises(QueueNotFoundError):
            await call("no-such-queue")
    bad_calls = [
        a.list_dead(Q, limit=0),
        a.list_dead(Q, limit=True),
        a.list_dead(Q, offset=-1),
        a.list_dead(Q, offset=1.5),
        a.requeue_dead(Q, "one-id"),
        a.requeue_dead(Q, [""]),
        a.requeue_dead(Q, [42]),
        a.purge_dead(Q, older_than=-1),
        a.purge_dead(Q, older_than=float("nan")),
        a.purge_dead(Q, older_than="1"),
    ]
    for coro in bad_calls:
        with pytest.raises(InvalidArgumentError):
            await coro
    await drain(a, Q, timeout=BOUND)
