"""Task-id uniqueness across queues on Redis Cluster when a submit fails (review finding).

On a cluster the id is claimed namespace-wide before the queue's script runs; a submit that the
script then refuses (queue full, duplicate in a batch) must not leave the id blocked in the
other queues.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from kew import (
    QueueConfig,
    QueuePriority,
    QueueProcessorError,
    TaskAlreadyExistsError,
    TaskQueueManager,
)
from kew.store import ID_CLAIM_MS
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


async def test_a_failed_submit_keeps_the_claims_another_submit_holds(
    manager: TaskQueueManager,
) -> None:
    # review finding: a batch that failed dropped every claim of its ids held for its queue,
    # including those of a batch of the same queue still on the wire, so the id was free for
    # another queue until that batch committed (and then lived in two queues)
    store = manager._store
    assert store is not None
    keys = manager.queues["other"].keys
    first = await store.claim_ids(keys, ["x1", "x2"])  # an earlier submit, still staging
    assert first.fresh == ["x1", "x2"] and not first.taken
    second = await store.claim_ids(keys, ["x2", "x3"])
    assert second.fresh == ["x3"]  # x2's claim is the first submit's
    await store.release_id_claims(keys, second.fresh)  # the second submit fails
    elsewhere = manager.queues["full"].keys
    assert (await store.claim_ids(elsewhere, ["x2"])).taken == {"x2"}
    assert (await store.claim_ids(elsewhere, ["x3"])).taken == set()


async def test_a_chunked_batch_claims_its_ids_until_its_commit(
    manager: TaskQueueManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review finding: claims lived ID_CLAIM_MS (60 s) while a chunked batch may stage for the
    # staging ttl (600 s); the claim must cover the whole batch
    store = manager._store
    assert store is not None
    seen: list[int] = []
    claim_ids = store.claim_ids

    async def spy(qk: object, ids: list[str], claim_ms: int = ID_CLAIM_MS) -> object:
        seen.append(claim_ms)
        return await claim_ids(qk, ids, claim_ms)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "claim_ids", spy)
    manager.settings = dataclasses.replace(manager.settings, submit_chunk=2)
    await manager.submit_tasks(
        "other", [{"task_id": f"c{i}", "task_func": add, "args": (i, 0)} for i in range(5)]
    )
    await manager.submit_tasks("other", [{"task_id": "single", "task_func": add, "args": (1, 0)}])
    assert seen == [600_000, ID_CLAIM_MS]
