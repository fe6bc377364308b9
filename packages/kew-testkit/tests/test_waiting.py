"""Waits, eager mode and assertions against a real manager (this suite's own kew fixtures)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kew import QueueConfig, QueuePriority, TaskInfo, TaskStatus
from kew_testkit import (
    FakeClock,
    Load,
    UnexpectedStatusError,
    assert_task_completed,
    assert_task_failed,
    assert_task_status,
    drain,
    eager_manager,
    manager_load,
    wait_for_status,
    wait_until,
)

GATE: dict[str, asyncio.Event] = {}


async def double(x: int) -> int:
    return 2 * x


async def explode() -> None:
    raise ValueError("kaboom")


async def gated(name: str) -> str:
    await GATE[name].wait()
    return name


def info(**overrides: Any) -> TaskInfo:
    fields: dict[str, Any] = {
        "task_id": "t1",
        "task_type": "kind",
        "queue_name": "q",
        "priority": 2,
        "status": TaskStatus.COMPLETED,
        "result": 4,
    }
    return TaskInfo(**{**fields, **overrides})


def test_assertions_pass_quietly() -> None:
    assert_task_completed(info(), result=4)
    assert_task_completed(info())
    assert_task_status(info(status=TaskStatus.RETRY), "retry")
    failed = info(status=TaskStatus.FAILED, error="ValueError: kaboom", retry_count=2)
    assert_task_failed(failed, error_contains="kaboom", retry_count=2)


def test_assertion_messages_say_what_happened() -> None:
    failed = info(status=TaskStatus.FAILED, error="boom", retry_count=3)
    with pytest.raises(AssertionError) as exc:
        assert_task_completed(failed, result=4)
    assert str(exc.value) == (
        "expected COMPLETED, got task 't1' (type 'kind', queue 'q'), status FAILED, "
        "retry_count=3, error='boom'"
    )
    with pytest.raises(AssertionError, match="completed with result 4, expected 5"):
        assert_task_completed(info(), result=5)
    with pytest.raises(AssertionError, match="failed with error 'boom', which does not contain"):
        assert_task_failed(failed, error_contains="timeout")
    with pytest.raises(AssertionError, match="failed after 3 retries, expected 1"):
        assert_task_failed(failed, retry_count=1)
    with pytest.raises(AssertionError, match=r"expected FAILED, got .* status COMPLETED.*result=4"):
        assert_task_failed(info())


async def test_wait_until_is_bounded() -> None:
    with pytest.raises(TimeoutError, match=r"never \(waited 0.05 s\)"):
        await wait_until(lambda: False, timeout=0.05, message="never")
    flag = {"n": 0}

    async def third_time() -> bool:
        flag["n"] += 1
        return flag["n"] >= 3

    await wait_until(third_time, timeout=5)


async def test_wait_for_status_and_unexpected_endings(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig("w", max_workers=2))
    await kew_manager.submit_task("ok", "w", "double", double, QueuePriority.MEDIUM, 21)
    await kew_manager.submit_task("bad", "w", "explode", explode, QueuePriority.MEDIUM)
    done = await wait_for_status(kew_manager, "ok", [TaskStatus.COMPLETED, "failed"], timeout=10)
    assert_task_completed(done, result=42)
    with pytest.raises(UnexpectedStatusError, match=r"task 'bad' ended status FAILED.*kaboom"):
        await wait_for_status(kew_manager, "bad", TaskStatus.COMPLETED, timeout=10)


async def test_wait_for_status_times_out_with_the_last_status(
    kew_manager: Any, fake_clock: FakeClock
) -> None:
    await kew_manager.create_queue(QueueConfig("w"))
    await kew_manager.submit_task("later", "w", "d", double, QueuePriority.LOW, 1, _defer_by=60)
    with pytest.raises(TimeoutError, match=r"'later' did not reach COMPLETED.*status QUEUED"):
        await wait_for_status(kew_manager, "later", TaskStatus.COMPLETED, timeout=0.2)
    with pytest.raises(TimeoutError, match=r"did not reach PROCESSING within 0.2 s"):
        await wait_for_status(kew_manager, "later", TaskStatus.PROCESSING, timeout=0.2)


async def test_drain_and_the_clock_probe(kew_manager: Any) -> None:
    GATE["g1"] = asyncio.Event()
    await kew_manager.create_queue(QueueConfig("d", max_workers=1))
    assert await manager_load(kew_manager) is Load.IDLE
    await kew_manager.submit_task("g1", "d", "gated", gated, QueuePriority.MEDIUM, "g1")
    await kew_manager.submit_task("g2", "d", "double", double, QueuePriority.MEDIUM, 2)
    await wait_for_status(kew_manager, "g1", TaskStatus.PROCESSING, timeout=10)
    assert await manager_load(kew_manager) is Load.RUNNING  # g2 waits for the only slot
    with pytest.raises(TimeoutError, match=r"queues not drained: .*'ready': 1"):
        await drain(kew_manager, "d", timeout=0.2)
    GATE["g1"].set()
    await drain(kew_manager, timeout=10)
    assert_task_completed(await kew_manager.get_task_status("g2"), result=4)


async def test_eager_without_a_fake_clock(kew_manager: Any) -> None:
    eager = eager_manager(kew_manager, timeout=10)
    await eager.create_queue(QueueConfig("e"))  # other methods are the manager's
    assert_task_completed(
        await eager.submit_task("e1", "e", "double", double, QueuePriority.MEDIUM, 5), result=10
    )
    assert_task_failed(
        await eager.submit_task("e2", "e", "explode", explode, QueuePriority.MEDIUM), "kaboom"
    )


def test_a_paused_or_held_back_queue_is_not_due_work_for_the_clock() -> None:
    """FakeClock.advance settles while due work waits to be picked up; work that the queue is
    holding back (pause, fleet-wide limits) will not be picked up, so it must not count."""
    from kew_testkit.clock import Load
    from kew_testkit.waiting import _load_of

    base = {"ready": 3, "max_workers": 2, "current_workers": 0, "processing": 0}
    assert _load_of(base) is Load.DUE
    assert _load_of({**base, "paused": True}) is not Load.DUE
    assert _load_of({**base, "held_back": True}) is not Load.DUE
