"""Duplicates (design.md §4 "Delivery"): a ``task_id`` is rejected with TaskAlreadyExistsError while
its record exists: a second submit, an id repeated within a batch, a batch naming an existing
task; the rejected call writes nothing and the existing task is untouched (it runs once).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tasks
from kew import (
    QueueConfig,
    QueuePriority,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    TaskQueueError,
    TaskStatus,
)
from kew_testkit import assert_task_completed

Q = "unique"
P = QueuePriority.MEDIUM
LATER = 3600


def _spec(task_id: str, probe: tasks.Probe) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "task_type": "rec",
        "task_func": tasks.record,
        "priority": P,
        "args": (probe.name, task_id),
    }


async def _absent(manager: Any, *task_ids: str) -> None:
    for task_id in task_ids:
        with pytest.raises(TaskNotFoundError):
            await manager.get_task_status(task_id)


async def test_submitting_an_id_twice_raises_and_the_first_task_runs_once(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task("t", Q, "first", tasks.record, P, probe.name, "first")
    with pytest.raises(TaskAlreadyExistsError) as caught:
        await kew_manager.submit_task("t", Q, "second", tasks.record, P, probe.name, "second")
    assert isinstance(caught.value, TaskQueueError)
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_completed(info, "first")
    assert info.task_type == "first"
    assert probe.labels == ["first"]


async def test_a_deferred_task_id_cannot_be_reused(kew_manager: Any, probe: tasks.Probe) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task(
        "t", Q, "first", tasks.record, P, probe.name, "first", _defer_by=LATER
    )
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(TaskAlreadyExistsError):
        await kew_manager.submit_task("t", Q, "second", tasks.record, P, probe.name, "second")
    assert await kew_manager.get_queue_status(Q) == before
    info = await kew_manager.get_task_status("t")
    assert (info.task_type, info.status) == ("first", TaskStatus.QUEUED)


async def test_a_finished_task_id_cannot_be_reused_while_its_record_exists(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task("t", Q, "first", tasks.record, P, probe.name, "first")
    assert_task_completed(await kew_manager.wait_for_task("t", timeout=10))
    with pytest.raises(TaskAlreadyExistsError):
        await kew_manager.submit_task("t", Q, "again", tasks.record, P, probe.name, "again")
    assert_task_completed(await kew_manager.get_task_status("t"), "first")
    assert probe.labels == ["first"]


async def test_concurrent_submits_of_one_id_accept_exactly_one(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    outcomes = await asyncio.gather(
        *(
            kew_manager.submit_task("t", Q, f"n{i}", tasks.record, P, probe.name, f"n{i}")
            for i in range(10)
        ),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    rejected = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(accepted) == 1
    assert all(isinstance(o, TaskAlreadyExistsError) for o in rejected), rejected
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert probe.labels == [info.task_type]


async def test_an_id_repeated_within_a_batch_rejects_the_whole_batch(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(TaskAlreadyExistsError):
        await kew_manager.submit_tasks(Q, [_spec(i, probe) for i in ["a", "b", "c", "a"]])
    await _absent(kew_manager, "a", "b", "c")
    assert await kew_manager.get_queue_status(Q) == before
    assert probe.runs == []


async def test_an_id_repeated_across_chunks_of_a_batch_rejects_the_whole_batch(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    manager = await kew_manager_factory(submit_chunk=5)
    await manager.create_queue(QueueConfig(Q, max_workers=2))
    ids = [f"t{i:02d}" for i in range(12)] + ["t01"]
    with pytest.raises(TaskAlreadyExistsError):
        await manager.submit_tasks(Q, [_spec(i, probe) for i in ids])
    await _absent(manager, *ids)
    assert probe.runs == []


async def test_a_batch_naming_an_existing_task_is_rejected_whole(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task(
        "old", Q, "original", tasks.record, P, probe.name, "old", _defer_by=LATER
    )
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(TaskAlreadyExistsError):
        await kew_manager.submit_tasks(
            Q, [_spec("new1", probe), _spec("old", probe), _spec("new2", probe)]
        )
    await _absent(kew_manager, "new1", "new2")
    assert await kew_manager.get_queue_status(Q) == before
    kept = await kew_manager.get_task_status("old")
    assert (kept.task_type, kept.status) == ("original", TaskStatus.QUEUED)
    assert probe.runs == []


async def test_an_id_in_use_in_one_queue_is_rejected_in_another(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    """get_task_status(task_id) and wait_for_task(task_id) name a task by its id alone, so an id
    must stay unique across the queues of a namespace while its record exists."""
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.create_queue(QueueConfig("elsewhere", max_workers=2))
    await kew_manager.submit_task(
        "t", Q, "first", tasks.record, P, probe.name, "first", _defer_by=LATER
    )
    before = await kew_manager.get_queue_status("elsewhere")
    with pytest.raises(TaskAlreadyExistsError):
        await kew_manager.submit_task(
            "t", "elsewhere", "second", tasks.record, P, probe.name, "second"
        )
    assert await kew_manager.get_queue_status("elsewhere") == before
    info = await kew_manager.get_task_status("t")
    assert (info.queue_name, info.task_type) == (Q, "first")
    assert probe.runs == []
