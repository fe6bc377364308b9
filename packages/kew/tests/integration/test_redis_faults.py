"""Redis misbehaving (issue 8): scripts flushed mid-run, memory full under noeviction."""

from __future__ import annotations

import shutil
import uuid

import pytest
from kew import QueueConfig, QueuePriority, TaskNotFoundError, TaskQueueError, TaskQueueManager
from kew.connection import create_client, is_memory_url
from kew_testkit.redis_server import RedisServer

P = QueuePriority.MEDIUM

needs_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs a redis-server binary to start one"
)


async def add(a: int, b: int) -> int:
    return a + b


async def test_scripts_reload_transparently_after_script_flush(kew_redis_url: str) -> None:
    if is_memory_url(kew_redis_url):
        pytest.skip("SCRIPT FLUSH of a real server; memory:// has no shared script cache to flush")
    ns = f"flush-{uuid.uuid4().hex[:6]}"
    async with TaskQueueManager(kew_redis_url, namespace=ns) as m:
        await m.create_queue(QueueConfig("q", max_workers=2))
        await m.submit_task("before", "q", "add", add, P, 1, 1)
        assert (await m.wait_for_task("before", timeout=10)).result == 2
        client = create_client(kew_redis_url)
        try:
            await client.script_flush()
        finally:
            await client.aclose()
        for i in range(5):  # submit, claim, complete all reload their scripts
            await m.submit_task(f"after-{i}", "q", "add", add, P, i, 1)
        for i in range(5):
            assert (await m.wait_for_task(f"after-{i}", timeout=10)).result == i + 1
        await m.cleanup()


@needs_server
async def test_a_full_redis_refuses_submits_and_leaves_nothing_half_written() -> None:
    args = ("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    with RedisServer(extra_args=args) as server:
        async with TaskQueueManager(server.url, namespace="full") as m:
            await m.create_queue(QueueConfig("q", max_workers=1, max_size=10_000))
            await m.pause_queue("q")  # keep everything waiting, so memory only grows
            blob = b"x" * 200_000
            refused = None
            for i in range(200):
                try:
                    await m.submit_task(f"t{i}", "q", "add", add, P, blob, 0)
                except TaskQueueError as exc:
                    refused = (i, exc)
                    break
            assert refused is not None, "the Redis never filled up"
            i, exc = refused
            assert "OOM" in str(exc) or "memory" in str(exc).lower()
            with pytest.raises(TaskNotFoundError):
                await m.get_task_status(f"t{i}")  # nothing of the refused task was written
            client = create_client(server.url)
            try:  # not even the id key: the same id can be submitted once there is room
                assert await client.exists(f"full:{{}}:id:t{i}") == 0
            finally:
                await client.aclose()
            status = await m.get_queue_status("q")
            assert status["queued_tasks"] == i  # every accepted task is whole and waiting


@needs_server
async def test_a_redis_restarted_empty_is_noticed_and_the_queue_works_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import logging

    with RedisServer() as server:
        async with TaskQueueManager(server.url, namespace="empty") as m:
            await m.create_queue(QueueConfig("q", max_workers=1))
            await m.submit_task("slow", "q", "sleep", asyncio.sleep, P, 0.5)
            client = create_client(server.url)
            try:
                await client.flushall()  # as a restart without persistence would leave it
            finally:
                await client.aclose()
            with caplog.at_level(logging.WARNING, logger="kew"):
                await m.submit_task("after", "q", "add", add, P, 1, 2)
                assert (await m.wait_for_task("after", timeout=10)).result == 3
                await asyncio.sleep(0)  # let the running task's dropped result be logged
            messages = " ".join(r.getMessage() for r in caplog.records)
            assert "lost its data" in messages
            with pytest.raises(TaskNotFoundError):
                await m.get_task_status("slow")  # its result was not written into a void


@needs_server
async def test_waiters_of_tasks_lost_with_the_data_learn_it_at_once() -> None:
    import asyncio

    with RedisServer() as server:
        async with TaskQueueManager(server.url, namespace="lostwait") as m:
            await m.create_queue(QueueConfig("q", max_workers=1))
            await m.submit_task("later", "q", "add", add, P, 1, 1, _defer_by=3600)
            waiter = asyncio.ensure_future(m.wait_for_task("later", timeout=20))
            await asyncio.sleep(0)  # let the waiter read the record once
            client = create_client(server.url)
            try:
                await client.flushall()
            finally:
                await client.aclose()
            await m.submit_task("poke", "q", "add", add, P, 1, 1)  # the next claim notices
            with pytest.raises(TaskNotFoundError):
                await asyncio.wait_for(waiter, timeout=10)  # well before its own 20 s
