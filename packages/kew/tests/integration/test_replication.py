"""wait_replicas: a submit returns only once a replica has it (Redis WAIT, same round trip).

A primary and a replica are started for these tests; the replica is read directly, right after
the call returns, so "the replica has it" is what is checked, not a timing.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kew import (
    InvalidArgumentError,
    NotReplicatedError,
    QueueConfig,
    QueuePriority,
    TaskQueueManager,
    TaskStatus,
)
from kew.connection import create_client
from kew.exceptions import ScriptCode
from kew.keys import QueueKeys
from kew.store import ClaimedTask, RedisStore
from kew_testkit import wait_until
from kew_testkit.redis_server import RedisServer

P = QueuePriority.MEDIUM
LEASE_LOST = int(ScriptCode.LEASE_LOST)

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs a redis-server binary for a replica"
)


async def double(x: int) -> int:
    return 2 * x


@pytest.fixture(scope="module")
def primary_and_replica() -> Iterator[tuple[RedisServer, RedisServer]]:
    with RedisServer(extra_args=("--repl-diskless-sync-delay", "0")) as primary:
        host, port = primary.address
        with RedisServer(extra_args=("--replicaof", host, str(port))) as replica:
            yield primary, replica


async def _link_up(replica: RedisServer) -> bool:
    client = create_client(replica.url)
    try:
        info = await client.info("replication")
    finally:
        await client.aclose()
    return info.get("master_link_status") == "up"


async def test_a_submit_returns_only_once_the_replica_has_the_task(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = primary_and_replica
    await wait_until(lambda: _link_up(replica), timeout=20, message="replica never synced")
    reader = create_client(replica.url)
    async with TaskQueueManager(primary.url, namespace="repl", wait_replicas=1) as m:
        await m.create_queue(QueueConfig("q", max_workers=2))
        for i in range(20):
            info = await m.submit_task(f"t{i}", "q", "double", double, P, i)
            stored = await reader.hgetall(f"repl:{{q}}:task:{info.task_id}")
            assert stored.get(b"id") == info.task_id.encode(), f"t{i} not on the replica yet"
        await m.submit_tasks(
            "q", [{"task_id": f"b{i}", "task_func": double, "args": (i,)} for i in range(50)]
        )
        assert await reader.exists(*[f"repl:{{q}}:task:b{i}" for i in range(50)]) == 50
        for i in range(20):
            assert (await m.wait_for_task(f"t{i}", timeout=20)).result == 2 * i
        await m.cleanup()
    await reader.aclose()


async def test_with_no_replica_a_submit_raises_but_the_task_is_queued_and_runs(
    kew_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as lonely:
        async with TaskQueueManager(
            lonely.url, namespace="repl", wait_replicas=1, wait_timeout=0.05
        ) as m:
            await m.create_queue(QueueConfig("q", max_workers=1))
            caplog.set_level(logging.WARNING, logger="kew")
            with pytest.raises(NotReplicatedError) as info:
                await m.submit_task("t", "q", "double", double, P, 21)
            assert (info.value.confirmed, info.value.required) == (0, 1)
            assert "written on the primary" in str(info.value)
            done = await m.wait_for_task("t", timeout=20)
            assert done.status is TaskStatus.COMPLETED and done.result == 42
            # the outcome was written too (waiters see it at once); its missing confirmation
            # is only logged, when WAIT gives up
            await wait_until(
                lambda: any("'complete'" in r.getMessage() for r in caplog.records), timeout=10
            )


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", 101])
def test_a_bad_wait_replicas_is_refused_at_the_call(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        TaskQueueManager("redis://127.0.0.1:1", wait_replicas=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1"])
def test_a_bad_wait_timeout_is_refused_at_the_call(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        TaskQueueManager("redis://127.0.0.1:1", wait_replicas=1, wait_timeout=bad)  # type: ignore[arg-type]


def test_waiting_for_replicas_of_the_embedded_backend_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="replicas"):
        TaskQueueManager("memory://", wait_replicas=1)


async def test_a_batch_larger_than_a_chunk_is_published_even_when_replicas_lag() -> None:
    """Staged chunks are not WAITed (the commit's WAIT covers them): a missing replica makes
    the batch raise NotReplicatedError at its commit, with every task queued and run."""
    with RedisServer() as lonely:
        async with TaskQueueManager(
            lonely.url, namespace="repl", wait_replicas=1, wait_timeout=0.05, submit_chunk=100
        ) as m:
            await m.create_queue(QueueConfig("q", max_workers=10, max_size=10_000))
            batch = [{"task_id": f"b{i}", "task_func": double, "args": (i,)} for i in range(250)]
            with pytest.raises(NotReplicatedError):
                await m.submit_tasks("q", batch)
            for i in range(250):
                assert (await m.wait_for_task(f"b{i}", timeout=30)).result == 2 * i


async def test_an_unconfirmed_outcome_is_sent_again_and_a_lost_one_reports_the_new_run() -> None:
    """An outcome WAIT did not confirm is written again (for up to 20 x wait_timeout): when a
    failover
    dropped it meanwhile and the task was leased to another run, the repeat answers LEASE_LOST,
    so this run's hooks do not fire (the other run's will). Simulated on a primary without a
    replica: after the first write, the task record is put back as it was (the write "lost")
    and the task is claimed anew."""
    with RedisServer() as lonely:
        client = create_client(lonely.url)
        store = RedisStore(client, lonely.url, wait_replicas=1, wait_timeout_ms=200)
        qk = QueueKeys("repl", "q")
        try:
            with pytest.raises(NotReplicatedError):  # queued all the same
                await store.submit(qk, 1_000, 10, [("a", "t", 2, 0, b"m:f", b"")])
            (run,) = (await store.claim(qk, 1_000, 1, 60_000, "w1", 60_000, 100)).tasks
            # the state the replica kept: the task leased to this run, not yet completed
            leased = {k: await client.dump(k) async for k in _scan(client, "repl:*")}

            async def lose_the_outcome_and_reclaim() -> ClaimedTask:
                task = qk.task("a")
                await wait_until(lambda: _status_is(client, task, b"completed"), timeout=5)
                for k, dumped in leased.items():
                    await client.restore(k, 0, dumped, replace=True)
                await client.zadd(qk.leased, {"a": 1_000})  # its lease ran out
                (other,) = (await store.claim(qk, 2_000, 1, 60_000, "w2", 60_000, 100)).tasks
                return other

            helper = asyncio.create_task(lose_the_outcome_and_reclaim())
            codes = await store.complete(qk, 1_500, 60_000, [("a", run.fence, b"j1")])
            other = await helper
            assert codes == [LEASE_LOST]
            assert other.fence != run.fence
            assert (await client.hget(qk.task("a"), "status")) == b"processing"
        finally:
            await store.close()


async def _scan(client: Any, pattern: str) -> AsyncIterator[bytes]:
    async for k in client.scan_iter(match=pattern):
        yield k


async def _status_is(client: Any, key: str, status: bytes) -> bool:
    return bool(await client.hget(key, "status") == status)


_FLAKY_CALLS: dict[str, int] = {}


async def fails_once(key: str) -> str:
    _FLAKY_CALLS[key] = _FLAKY_CALLS.get(key, 0) + 1
    if _FLAKY_CALLS[key] == 1:
        raise RuntimeError("first attempt fails")
    return key


async def test_a_retried_failure_fires_its_hook_even_when_no_replica_confirms_it() -> None:
    """The retry of an unconfirmed failure may be claimed before any replica answers: the
    failed attempt's on_task_fail (status RETRY) must still fire, then on_task_complete once."""
    fired: list[str] = []
    with RedisServer() as lonely:
        async with TaskQueueManager(
            lonely.url,
            namespace="repl",
            wait_replicas=1,
            wait_timeout=0.2,
            on_task_fail=lambda info, exc: fired.append(f"fail:{info.status.value}"),
            on_task_complete=lambda info: fired.append("complete"),
        ) as m:
            await m.create_queue(QueueConfig("q", max_workers=2, max_retries=1, retry_delay=0.1))
            with pytest.raises(NotReplicatedError):  # queued all the same
                await m.submit_task("a", "q", "flaky", fails_once, P, "a")
            done = await m.wait_for_task("a", timeout=30)
            assert done.status is TaskStatus.COMPLETED
            await wait_until(lambda: "complete" in fired, timeout=30)
    assert fired == ["fail:retry", "complete"]


async def test_a_shutdown_while_an_outcome_awaits_confirmation_still_fires_its_hook() -> None:
    """Confirming an outcome may take 20 x wait_timeout; shutting down meanwhile ends the
    confirmation (the outcome is written) and the hook fires within the shutdown grace."""
    fired: list[str] = []
    with RedisServer() as lonely:
        m = TaskQueueManager(
            lonely.url,
            namespace="repl",
            wait_replicas=1,
            wait_timeout=0.5,
            on_task_complete=lambda info: fired.append(info.task_id),
        )
        await m.initialize()
        try:
            await m.create_queue(QueueConfig("q", max_workers=1))
            with pytest.raises(NotReplicatedError):
                await m.submit_task("a", "q", "double", double, P, 1)
            reader = create_client(lonely.url)
            try:
                await wait_until(
                    lambda: _status_is(reader, "repl:{q}:task:a", b"completed"), timeout=10
                )
            finally:
                await reader.aclose()
            assert fired == []  # written, not yet confirmed
        finally:
            await m.shutdown(wait=True, timeout=3.0)
    assert fired == ["a"]
