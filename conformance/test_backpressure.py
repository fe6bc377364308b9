"""Backpressure (design.md §4): ``max_size`` bounds the tasks waiting in a queue (ready +
scheduled: deferred and retry-waiting); beyond it ``submit_task`` raises QueueProcessorError
("queue full"); a batch is all-or-nothing, also when it is larger than the manager's
``submit_chunk`` and so is written in several round trips.

A running task is not waiting: it does not count.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tasks
from kew import (
    QueueConfig,
    QueuePriority,
    QueueProcessorError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    TaskQueueError,
    TaskStatus,
)
from kew_testkit import assert_task_completed, drain, wait_for_status, wait_until

Q = "bounded"
P = QueuePriority.MEDIUM
LATER = 3600  # seconds: deferred tasks that stay waiting for the whole test


async def _absent(manager: Any, *task_ids: str) -> None:
    for task_id in task_ids:
        with pytest.raises(TaskNotFoundError):
            await manager.get_task_status(task_id)


def _spec(task_id: str, probe: tasks.Probe, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "task_type": "rec",
        "task_func": tasks.record,
        "priority": P,
        "args": (probe.name, task_id),
        **extra,
    }


async def test_a_submit_beyond_max_size_raises_queue_processor_error_and_writes_nothing(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, max_size=3))
    for i in range(3):
        await kew_manager.submit_task(
            f"t{i}", Q, "rec", tasks.record, P, probe.name, f"t{i}", _defer_by=LATER
        )
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(QueueProcessorError) as caught:
        await kew_manager.submit_task("extra", Q, "rec", tasks.record, P, probe.name, "extra")
    assert isinstance(caught.value, TaskQueueError)
    assert "full" in str(caught.value).lower()
    await _absent(kew_manager, "extra")
    assert await kew_manager.get_queue_status(Q) == before


async def test_max_size_counts_ready_and_deferred_tasks_but_not_running_ones(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, max_size=3))
    await kew_manager.submit_task("run", Q, "hold", tasks.hold, P, probe.name, "run")
    await wait_until(lambda: probe.current == 1, timeout=10, message="never started")
    await kew_manager.submit_task("ready", Q, "rec", tasks.record, P, probe.name, "ready")
    await kew_manager.submit_task(
        "deferred1", Q, "rec", tasks.record, P, probe.name, "d1", _defer_by=LATER
    )
    await kew_manager.submit_task(
        "deferred2", Q, "rec", tasks.record, P, probe.name, "d2", _defer_by=LATER
    )
    status = await kew_manager.get_queue_status(Q)
    assert status["queued_tasks"] == 3
    assert status["current_workers"] == 1
    with pytest.raises(QueueProcessorError):
        await kew_manager.submit_task("extra", Q, "rec", tasks.record, P, probe.name, "extra")
    await _absent(kew_manager, "extra")

    probe.open_gate()  # "run" and "ready" finish: two places free up
    assert_task_completed(await kew_manager.wait_for_task("ready", timeout=10))
    await kew_manager.submit_task("after", Q, "rec", tasks.record, P, probe.name, "after")
    assert_task_completed(await kew_manager.wait_for_task("after", timeout=10))


async def test_max_size_counts_retry_waiting_tasks(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=1, max_size=2, max_retries=1, retry_delay=LATER)
    )
    await kew_manager.submit_task("failing", Q, "fail", tasks.fail, P, probe.name, "failing")
    await wait_for_status(kew_manager, "failing", TaskStatus.RETRY, timeout=10)
    await kew_manager.submit_task(
        "deferred", Q, "rec", tasks.record, P, probe.name, "d", _defer_by=LATER * 10
    )
    assert (await kew_manager.get_queue_status(Q))["queued_tasks"] == 2
    with pytest.raises(QueueProcessorError):
        await kew_manager.submit_task("extra", Q, "rec", tasks.record, P, probe.name, "extra")
    await _absent(kew_manager, "extra")


async def test_a_batch_that_does_not_fit_is_rejected_whole(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, max_size=5))
    for i in range(2):
        await kew_manager.submit_task(
            f"w{i}", Q, "rec", tasks.record, P, probe.name, f"w{i}", _defer_by=LATER
        )
    before = await kew_manager.get_queue_status(Q)
    batch = [_spec(f"b{i}", probe) for i in range(4)]
    with pytest.raises(QueueProcessorError):
        await kew_manager.submit_tasks(Q, batch)
    await _absent(kew_manager, *(s["task_id"] for s in batch))
    assert await kew_manager.get_queue_status(Q) == before

    infos = await kew_manager.submit_tasks(Q, batch[:3])  # exactly fills the queue
    assert [i.task_id for i in infos] == ["b0", "b1", "b2"]
    for i in range(3):
        assert_task_completed(await kew_manager.wait_for_task(f"b{i}", timeout=10))


@pytest.mark.parametrize("chunk", [1, 10, 64])
async def test_a_batch_larger_than_submit_chunk_is_all_or_nothing_when_full(
    kew_manager_factory: Any, probe: tasks.Probe, chunk: int
) -> None:
    manager = await kew_manager_factory(submit_chunk=chunk)
    await manager.create_queue(QueueConfig(Q, max_workers=4, max_size=100))
    for i in range(2):
        await manager.submit_task(
            f"w{i}", Q, "rec", tasks.record, P, probe.name, f"w{i}", _defer_by=LATER
        )
    before = await manager.get_queue_status(Q)
    too_many = [_spec(f"b{i:03d}", probe) for i in range(99)]
    with pytest.raises(QueueProcessorError):
        await manager.submit_tasks(Q, too_many)
    await _absent(manager, *(s["task_id"] for s in too_many))
    assert await manager.get_queue_status(Q) == before
    assert probe.runs == []

    fits = too_many[:98]
    infos = await manager.submit_tasks(Q, fits)
    assert len(infos) == 98
    await drain(manager, Q, timeout=20)
    assert sorted(probe.labels) == sorted(s["task_id"] for s in fits)


async def test_a_chunked_batch_fails_whole_when_its_last_chunk_hits_a_duplicate(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    manager = await kew_manager_factory(submit_chunk=10)
    await manager.create_queue(QueueConfig(Q, max_workers=4, max_size=1000))
    await manager.submit_task(
        "taken", Q, "original", tasks.record, P, probe.name, "taken", _defer_by=LATER
    )
    before = await manager.get_queue_status(Q)
    batch = [_spec(f"b{i:02d}", probe) for i in range(34)] + [_spec("taken", probe)]
    with pytest.raises(TaskAlreadyExistsError):
        await manager.submit_tasks(Q, batch)
    await _absent(manager, *(s["task_id"] for s in batch[:-1]))
    assert await manager.get_queue_status(Q) == before
    kept = await manager.get_task_status("taken")
    assert (kept.task_type, kept.status) == ("original", TaskStatus.QUEUED)
    assert probe.runs == []


async def test_a_full_queue_accepts_tasks_again_once_it_drains(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, max_size=2))
    await kew_manager.submit_task("run", Q, "hold", tasks.hold, P, probe.name, "run")
    await wait_until(lambda: probe.current == 1, timeout=10, message="never started")
    await kew_manager.submit_task("a", Q, "rec", tasks.record, P, probe.name, "a")
    await kew_manager.submit_task("b", Q, "rec", tasks.record, P, probe.name, "b")
    with pytest.raises(QueueProcessorError):
        await kew_manager.submit_task("c", Q, "rec", tasks.record, P, probe.name, "c")
    probe.open_gate()
    await drain(kew_manager, Q, timeout=10)
    await kew_manager.submit_task("c", Q, "rec", tasks.record, P, probe.name, "c")
    assert_task_completed(await kew_manager.wait_for_task("c", timeout=10))


async def test_concurrent_submits_never_overfill_the_queue(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, max_size=5))
    outcomes = await asyncio.gather(
        *(
            kew_manager.submit_task(
                f"t{i}", Q, "rec", tasks.record, P, probe.name, f"t{i}", _defer_by=LATER
            )
            for i in range(12)
        ),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(accepted) == 5
    assert all(isinstance(o, QueueProcessorError) for o in refused), refused
    assert (await kew_manager.get_queue_status(Q))["queued_tasks"] == 5
