"""Task-id uniqueness across queues on Redis Cluster when a submit fails (review finding).

On a cluster the id is claimed namespace-wide before the queue's script runs; a submit that the
script then refuses (queue full, duplicate in a batch) must not leave the id blocked in the
other queues.
"""

from __future__ import annotations

import uuid

import pytest
from kew import (
    QueueConfig,
    QueuePriority,
    QueueProcessorError,
    TaskAlreadyExistsError,
    TaskQueueManager,
)
from kew_testkit import RedisClusterServer

P = QueuePriority.MEDIUM


async def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture
async def manager(kew_redis_cluster: RedisClusterServer) -> TaskQueueManager:
    m = TaskQueueManager(kew_redis_cluster.url, namespace=f"ids-{uuid.uuid4().hex[:6]}")
    await m.initialize()
    await m.create_queue(QueueConfig("full", max_workers=1, max_size=1))
    await m.create_queue(QueueConfig("other", max_workers=2))
    await m.pause_queue("full")
    await m.submit_task("filler", "full", "add", add, P, 1, 1)
    yield m
    await m.cleanup()
    await m.shutdown()


async def test_an_id_refused_by_a_full_queue_is_free_in_another_queue(
    manager: TaskQueueManager,
) -> None:
    with pytest.raises(QueueProcessorError):
        await manager.submit_task("job-1", "full", "add", add, P, 1, 2)
    await manager.submit_task("job-1", "other", "add", add, P, 1, 2)
    assert (await manager.wait_for_task("job-1", timeout=20)).result == 3


async def test_ids_of_a_rejected_batch_are_free_in_another_queue(
    manager: TaskQueueManager,
) -> None:
    await manager.create_queue(QueueConfig("third", max_workers=1))
    batch = [{"task_id": f"b{i}", "task_func": add, "args": (i, 1)} for i in range(5)]
    with pytest.raises(TaskAlreadyExistsError):  # "filler" lives in "full"
        await manager.submit_tasks("third", [*batch, {"task_id": "filler", "task_func": add}])
    await manager.submit_tasks("other", batch)
    assert [(await manager.wait_for_task(f"b{i}", timeout=20)).result for i in range(5)] == [
        i + 1 for i in range(5)
    ]
