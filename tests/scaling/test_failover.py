"""Failover (issue 9): the primary of a busy queue is SIGKILLed while tasks run.

With ``wait_replicas=1``, a submit that returned is on a replica, so it survives the primary's
death: after the replica is promoted, every acknowledged submission completes, and no task's
completion is recorded twice: the ``on_task_complete`` hook fires exactly once per task, also
for a task whose outcome was written just as the primary died. Tasks running at the moment of
failover may run again (at-least-once): those are counted and printed, not failed on.

Run on Redis Cluster (3 masters with 2 replicas each, kill the master of the queue's slot), on
Sentinel (a primary, 2 replicas, 3 sentinels, kill the primary), and on Sentinel with a second,
forced failover right after the first: the replaced primary stays up and takes writes until the
sentinels turn it into a replica, the new one has no replica for seconds, and outcomes written
meanwhile are lost unless kew confirms them before it reports them. Two replicas, because the
promoted one must have a replica of its own for ``wait_replicas=1`` to be met after the
failover (with one, every later WAIT times out: kew still works, at one timeout per write).
Each test starts its own servers.
The figures are printed: ``uv run pytest tests/scaling/test_failover.py -s``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kew import QueueConfig, QueuePriority, TaskInfo, TaskQueueError, TaskQueueManager
from kew_testkit import RedisClusterServer, RedisSentinelServer, find_redis_cli

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("redis-server") is None or find_redis_cli() is None,
        reason="needs redis-server and redis-cli to start a cluster or a sentinel setup",
    ),
]

QUEUE = "busy"
N_TASKS = 1500
KILL_AFTER = 500  # acknowledged submits before the primary is killed


@dataclass
class Ledger:
    """What the test process saw: submits acknowledged, bodies started and finished, hooks."""

    acknowledged: set[str] = field(default_factory=set)
    refused: int = 0
    stored: dict[str, str] = field(default_factory=dict)  # final status of each acknowledged
    started: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)

    def figures(self) -> dict[str, int]:
        return {
            "submitted": len(self.acknowledged) + self.refused,
            "acknowledged": len(self.acknowledged),
            "refused during failover": self.refused,
            "completed": sum(1 for t in self.acknowledged if self.stored.get(t) == "completed"),
            "lost": sum(1 for t in self.acknowledged if self.stored.get(t) != "completed"),
            "run twice": sum(1 for n in self.started.values() if n > 1),
            "completed twice": sum(1 for n in self.completed.values() if n > 1),
            "hook not fired": sum(1 for t in self.acknowledged if not self.completed[t]),
        }


LEDGERS: dict[str, Ledger] = {}


async def work(ledger_name: str, task_id: str) -> str:
    """The busy queue's task: 5 ms of (non-blocking) work, recorded in the ledger."""
    ledger = LEDGERS[ledger_name]
    ledger.started[task_id] += 1
    await asyncio.sleep(0.005)
    ledger.finished[task_id] += 1
    return task_id


async def run_through_failover(url: str, queue_key: str, kill: Callable[[], Any]) -> Ledger:
    """Submit N_TASKS to a busy queue on ``url``; after KILL_AFTER, ``kill()`` the primary of
    the queue (blocking, in a thread: it waits for the failover); wait for every acknowledged
    submit to complete."""
    name = uuid.uuid4().hex[:8]
    ledger = LEDGERS[name] = Ledger()

    def completed(info: TaskInfo) -> None:
        ledger.completed[info.task_id] += 1

    manager = TaskQueueManager(
        url,
        namespace=f"failover-{name}",
        on_task_complete=completed,
        lease_timeout=3.0,
        wait_replicas=1,
        wait_timeout=1.0,
    )
    await manager.initialize()
    try:
        await manager.create_queue(QueueConfig(QUEUE, max_workers=20, max_size=100_000))
        killer: asyncio.Task[Any] | None = None
        for i in range(N_TASKS):
            task_id = f"t{i:05d}"
            try:
                await manager.submit_task(
                    task_id, QUEUE, "work", work, QueuePriority.MEDIUM, name, task_id
                )
            except TaskQueueError:
                ledger.refused += 1  # not acknowledged: the caller knows it may not run
                continue
            ledger.acknowledged.add(task_id)
            if len(ledger.acknowledged) == KILL_AFTER:
                killer = asyncio.create_task(asyncio.to_thread(kill))
        assert killer is not None
        await killer

        deadline = time.monotonic() + 90
        for task_id in sorted(ledger.acknowledged):
            try:
                info = await manager.wait_for_task(task_id, max(0.1, deadline - time.monotonic()))
                ledger.stored[task_id] = info.status.value
            except TaskQueueError as exc:
                ledger.stored[task_id] = type(exc).__name__
        await asyncio.sleep(2 * 3.0)  # two leases more: a late second completion would show
    finally:
        await manager.shutdown(wait=True, timeout=5.0)
    return ledger


def _report(label: str, ledger: Ledger, seconds: float) -> None:
    figures = ", ".join(f"{k} {v}" for k, v in ledger.figures().items())
    print(f"\nfailover on {label}: {figures} ({seconds:.1f} s)")


def _assert_nothing_lost_or_completed_twice(ledger: Ledger) -> None:
    figures = ledger.figures()
    assert figures["acknowledged"] >= KILL_AFTER
    assert figures["lost"] == 0, figures
    assert figures["completed twice"] == 0, figures
    assert figures["hook not fired"] == 0, figures


async def test_a_cluster_master_killed_under_load_loses_no_acknowledged_task() -> None:
    with RedisClusterServer(masters=3, replicas=2) as cluster:
        queue_key = f"failover:{{{QUEUE}}}:ready"

        def kill() -> None:
            cluster.kill_master_of(queue_key)
            cluster.wait_for_failover(timeout=60)

        t0 = time.monotonic()
        ledger = await run_through_failover(cluster.url, queue_key, kill)
        _report(cluster.describe(), ledger, time.monotonic() - t0)
        _assert_nothing_lost_or_completed_twice(ledger)


async def test_a_sentinel_primary_killed_under_load_loses_no_acknowledged_task() -> None:
    with RedisSentinelServer(replicas=2) as sentinel:

        def kill() -> None:
            sentinel.kill_primary()
            sentinel.wait_for_failover(timeout=60)

        t0 = time.monotonic()
        ledger = await run_through_failover(sentinel.url, "", kill)
        _report(sentinel.describe(), ledger, time.monotonic() - t0)
        _assert_nothing_lost_or_completed_twice(ledger)


async def test_a_second_sentinel_failover_just_after_the_first_loses_no_acknowledged_task() -> None:
    with RedisSentinelServer(replicas=2) as sentinel:

        def kill_then_fail_over_again() -> None:
            sentinel.kill_primary()
            sentinel.wait_for_failover(timeout=60)
            sentinel.force_failover(timeout=60)

        t0 = time.monotonic()
        ledger = await run_through_failover(sentinel.url, "", kill_then_fail_over_again)
        _report(sentinel.describe() + ", failed over twice", ledger, time.monotonic() - t0)
        _assert_nothing_lost_or_completed_twice(ledger)
