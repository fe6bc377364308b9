"""An idle worker's wait and its next claim are one round trip (kew.worker._wait_then_claim).

The claim is pipelined behind the BLPOP and carries the time the wait began; these tests hold
the rules that make that safe: shutdown ends the wait at once (no connection left blocked), and
tasks claimed after an overlong wait get full leases before they run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from kew import QueueConfig, QueuePriority, TaskQueueManager
from kew.connection import create_client, is_memory_url
from kew_testkit import wait_until

P = QueuePriority.MEDIUM


async def noop() -> None:
    return None


@pytest.fixture
def real_redis(kew_redis_url: str) -> str:
    if is_memory_url(kew_redis_url):
        pytest.skip("memory:// has no pipelined wait; its worker waits and claims separately")
    return kew_redis_url


async def _blocked_on(url: str, key: str) -> int:
    """How many clients of the server are blocked in BLPOP right now (any key: CLIENT LIST
    does not show the key, so the namespace's own client name is not needed)."""
    client = create_client(url)
    try:
        clients = await client.client_list()
    finally:
        await client.aclose()
    return sum(1 for c in clients if c.get("cmd") == "blpop" and "b" in c.get("flags", ""))


async def test_shutdown_ends_an_idle_wait_at_once_and_leaves_no_connection_blocked(
    real_redis: str,
) -> None:
    ns = f"wake-{uuid.uuid4().hex[:6]}"
    m = TaskQueueManager(real_redis, namespace=ns, idle_wait=120, lease_timeout=120)
    await m.initialize()
    await m.create_queue(QueueConfig("q", max_workers=2))
    worker = m.queues["q"].worker
    await wait_until(lambda: worker._blocked_client is not None, timeout=10)
    before = await _blocked_on(real_redis, "q")
    assert before >= 1
    async with asyncio.timeout(4):  # the wait itself would last 30 s (a quarter of the lease)
        await m.cleanup()
        await m.shutdown()
    assert await _blocked_on(real_redis, "q") == before - 1


async def test_tasks_claimed_after_an_overlong_wait_get_full_leases(real_redis: str) -> None:
    ns = f"wake-{uuid.uuid4().hex[:6]}"
    lease = 8.0  # the wait is capped at 2 s; the claim below ends it 3 s "later"
    async with TaskQueueManager(real_redis, namespace=ns, lease_timeout=lease) as m:
        gate = asyncio.Event()

        async def hold() -> None:
            await gate.wait()

        await m.create_queue(QueueConfig("q", max_workers=1))
        worker = m.queues["q"].worker
        offset = 0.0

        class Clock:
            is_virtual = False

            def now(self) -> float:
                return time.time() + offset

            async def sleep(self, seconds: float) -> None:
                await asyncio.sleep(seconds)

        worker.clock = Clock()
        store: Any = worker.store
        real = store.wake_then_claim
        claimed_at: list[int] = []

        async def slow_wake_then_claim(*args: Any, **kwargs: Any) -> Any:
            nonlocal offset
            woken, result = await real(*args, **kwargs)
            if result.tasks:
                claimed_at.append(kwargs["now_ms"])
                offset += 3.0  # as if the wait had lasted 3 s longer than its cap
            return woken, result

        store.wake_then_claim = slow_wake_then_claim
        await wait_until(lambda: worker._blocked_client is not None, timeout=10)
        await m.submit_task("t", "q", "hold", hold, P)
        await wait_until(lambda: worker.running == 1, timeout=10)
        assert claimed_at, "the task was not claimed by the pipelined wait"
        client = create_client(real_redis)
        try:
            expiry = await client.zscore(worker.keys.leased, "t")
        finally:
            await client.aclose()
        assert expiry is not None
        # granted at the wait's start: claimed_at + 8 s; renewed at once: about 3 s later
        assert expiry >= claimed_at[0] + lease * 1000 + 2_500
        gate.set()
        await m.wait_for_task("t", timeout=10)
        await m.cleanup()


async def test_leaving_right_after_a_submit_does_not_wait_for_the_idle_wait(
    real_redis: str,
) -> None:
    """stop() raced the wait's CLIENT ID reply and fell back to a 5 s timeout (review)."""
    ns = f"wake-{uuid.uuid4().hex[:6]}"
    for i in range(3):
        async with asyncio.timeout(3):  # the fallback would take RELEASE_TIMEOUT (5 s)
            async with TaskQueueManager(real_redis, namespace=ns, idle_wait=120) as m:
                await m.create_queue(QueueConfig("q", max_workers=2))
                await asyncio.sleep(0.05)
                await m.submit_task(f"t{i}", "q", "noop", noop, P)
    async with TaskQueueManager(real_redis, namespace=ns) as m:
        await m.cleanup()
