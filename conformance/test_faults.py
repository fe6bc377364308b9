"""Delivery under faults (design.md §4 "Delivery"), with real processes and a real Redis.

A claimed task is leased, not removed: the lease is renewed while the task runs, a lease whose
process died is reclaimed by a live process and the task runs again; without crashes every task
runs exactly once; a dropped Redis connection loses and doubles nothing; a task that outlives its
lease in a live process is not run a second time; shutdown hands running tasks back at once.

Worker processes are ``conformance/workers/fault_worker.py``; the task functions are in
``conformance/workers/fault_tasks.py`` (stored by reference, so every process runs the same code).
Each run of a task is recorded (pid in a Redis key of the test's namespace, or a counter in the
test process), which is how "ran once" and "ran at most twice" are checked.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kew import QueueConfig, QueuePriority, TaskInfo, TaskQueueManager, TaskStatus
from kew_testkit import wait_until

_CONFORMANCE = str(Path(__file__).resolve().parent)
if _CONFORMANCE not in sys.path:  # the worker processes get it through PYTHONPATH
    sys.path.insert(0, _CONFORMANCE)

from admin import Admin  # noqa: E402
from workers import fault_tasks  # noqa: E402
from workers._common import (  # noqa: E402
    WorkerProcess,
    go_key,
    log_key,
    ready_key,
    runs_key,
)

pytestmark = pytest.mark.timeout(60)

LEASE = 1.0  # seconds: short, so that an expired lease is reclaimed quickly
QUEUE = "faults"


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def shared_redis_url(kew_redis_url: str) -> str:
    """The session's Redis, when several processes can share it."""
    if kew_redis_url.startswith("memory://"):
        pytest.skip(
            "delivery across processes needs a Redis shared between processes; "
            "memory:// is in-process"
        )
    return kew_redis_url


@pytest.fixture
async def admin(kew_redis_url: str) -> AsyncIterator[Admin]:
    """Reads the tests' records, lists and kills connections (on every node of a cluster)."""
    if kew_redis_url.startswith("memory://"):
        pytest.skip(
            "needs a real Redis server (a plain client, CLIENT LIST / CLIENT KILL); "
            "memory:// is in-process and has no connections to drop"
        )
    client = await Admin.connect(kew_redis_url)
    yield client
    await client.aclose()


class Fleet:
    """The worker subprocesses of one test; every one is gone when the test ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[WorkerProcess] = []

    def spawn(self, name: str, *args: str) -> WorkerProcess:
        proc = WorkerProcess(self.log_dir, name, list(args))
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        return "\n".join(p.output() for p in self.procs)

    async def wait(
        self, condition: Callable[[], Awaitable[bool]], timeout: float, what: str
    ) -> None:
        """Wait for ``condition``; on timeout fail with ``what`` and the workers' output."""
        await wait_until(condition, timeout=timeout, message=lambda: f"{what}\n{self.output()}")

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.procs))
        await fault_tasks.close_clients()  # the test process may have run a task too


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
def tracker_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh in-process Tracker for this test (see fault_tasks.Tracker)."""
    name = request.node.nodeid
    fault_tasks.new_tracker(name)
    yield name
    fault_tasks.TRACKERS.pop(name, None)


async def wait_all(
    manager: TaskQueueManager, task_ids: Sequence[str], timeout: float
) -> list[TaskInfo]:
    """The final TaskInfo of every task (bounded by ``timeout`` real seconds in all).

    At most 50 waits at a time: many more concurrent calls on one manager is a test of its own
    (test_hundreds_of_concurrent_waits_on_one_manager_all_return).
    """
    infos: list[TaskInfo] = []
    async with asyncio.timeout(timeout):
        for start in range(0, len(task_ids), 50):
            chunk = task_ids[start : start + 50]
            infos += await asyncio.gather(*(manager.wait_for_task(t) for t in chunk))
    return infos


# -- crashes -----------------------------------------------------------------------------------


async def test_task_of_a_sigkilled_worker_is_completed_by_another_process(
    kew_manager_factory: Any, shared_redis_url: str, admin: Admin, fleet: Fleet
) -> None:
    ns = kew_manager_factory.namespace
    survivor = await kew_manager_factory(lease_timeout=LEASE)  # joins the queue after the kill
    victim = fleet.spawn(
        "victim",
        shared_redis_url,
        ns,
        QUEUE,
        *("--max-workers", "1", "--lease", str(LEASE), "--slow-task", "job-1", "--hold", "60"),
    )
    runs = runs_key(ns, "job-1")

    async def started() -> bool:
        return int(await admin.llen(runs)) >= 1

    await fleet.wait(started, 30.0, "the task never started in the worker process")
    assert [int(p) for p in await admin.lrange(runs, 0, -1)] == [victim.pid]

    victim.kill()
    assert await victim.wait_exit(10.0) == -signal.SIGKILL
    # nobody consumes the queue now: the task is still leased to the dead process, not lost
    assert (await survivor.get_task_status("job-1")).status is TaskStatus.PROCESSING

    await survivor.create_queue(QueueConfig(QUEUE, max_workers=2))
    info = await survivor.wait_for_task("job-1", timeout=15.0)

    assert info.status is TaskStatus.COMPLETED, info
    assert info.result == {"value": 42, "pid": os.getpid(), "run": 2}
    assert info.error is None
    # it ran twice (the killed run and the one that completed it), not more
    assert [int(p) for p in await admin.lrange(runs, 0, -1)] == [victim.pid, os.getpid()]


# -- no faults, many processes -----------------------------------------------------------------


async def test_three_processes_sharing_a_queue_run_each_of_3000_tasks_exactly_once(
    kew_manager_factory: Any, shared_redis_url: str, admin: Admin, fleet: Fleet
) -> None:
    n_tasks = 3000
    ns = kew_manager_factory.namespace
    reader = await kew_manager_factory()  # reads statuses; consumes nothing
    common = (shared_redis_url, ns, QUEUE, "--max-workers", "20", "--lease", "2.0")
    procs = [
        fleet.spawn("w0", *common, "--quick-tasks", str(n_tasks), "--batch", "500"),
        fleet.spawn("w1", *common),
        fleet.spawn("w2", *common),
    ]

    async def all_ready() -> bool:
        return int(await admin.scard(ready_key(ns))) == len(procs)

    await fleet.wait(all_ready, 30.0, "the three workers did not all start")
    await admin.rpush(go_key(ns), "go")  # w0 submits the tasks in batches of 500

    async def all_ran() -> bool:
        return int(await admin.llen(log_key(ns))) >= n_tasks

    await fleet.wait(all_ran, 40.0, f"{n_tasks} tasks did not all run")
    ids = [f"t{i:05d}" for i in range(n_tasks)]
    infos = await wait_all(reader, ids, 20.0)
    not_done = [i for i in infos if i.status is not TaskStatus.COMPLETED]
    assert not not_done, not_done[:5]
    assert [i.result for i in infos] == ids

    codes = await asyncio.gather(*(p.stop(15.0) for p in procs))
    assert codes == [0, 0, 0], fleet.output()

    # read after every worker has exited: a late duplicate run would be in the log too
    log = [str(entry).split() for entry in await admin.lrange(log_key(ns), 0, -1)]
    runs_per_task = Counter(task_id for task_id, _ in log)
    assert set(runs_per_task) == set(ids)
    doubled = {t: n for t, n in runs_per_task.items() if n != 1}
    assert not doubled, f"{len(doubled)} tasks ran more than once: {list(doubled.items())[:5]}"
    per_process = Counter(int(pid) for _, pid in log)
    assert set(per_process) == {p.pid for p in procs}, per_process


# -- connection faults -------------------------------------------------------------------------


def tracked_batch(tracker_name: str, prefix: str, n: int, hold: float) -> list[dict[str, Any]]:
    return [
        {
            "task_id": f"{prefix}{i:04d}",
            "task_func": fault_tasks.tracked,
            "args": (tracker_name, f"{prefix}{i:04d}", hold),
        }
        for i in range(n)
    ]


async def test_connections_killed_mid_run_lose_and_double_no_task(
    kew_manager_factory: Any, admin: Admin, tracker_name: str
) -> None:
    tracker = fault_tasks.TRACKERS[tracker_name]
    before = await admin.mark()  # every connection of the manager comes after this one
    runner = await kew_manager_factory(lease_timeout=LEASE)
    await runner.create_queue(QueueConfig(QUEUE, max_workers=10, max_size=10_000))
    tasks = tracked_batch(tracker_name, "k", 300, 0.02)
    await runner.submit_tasks(QUEUE, tasks)

    killed = 0
    for step in range(1, 5):  # at 20 %, 40 %, 60 % and 80 % of the tasks done

        def progressed(goal: int = step * len(tasks) // 5) -> bool:
            return tracker.total_finished >= goal

        await wait_until(progressed, timeout=20.0, message=f"stuck before kill {step}")
        killed += await admin.kill_after(before)
    assert killed >= 4

    # read the outcome through a manager whose connections were never killed
    reader = await kew_manager_factory()
    ids = [t["task_id"] for t in tasks]
    infos = await wait_all(reader, ids, 30.0)

    assert [i.status for i in infos] == [TaskStatus.COMPLETED] * len(ids)
    assert [i.result for i in infos] == [{"task_id": t, "run": 1} for t in ids]
    assert {t: n for t, n in tracker.runs.items() if n != 1} == {}
    assert set(tracker.runs) == set(ids)
    assert sum(tracker.cancelled.values()) == 0


async def test_a_manager_whose_connections_were_killed_serves_the_next_calls(
    kew_manager_factory: Any, admin: Admin, tracker_name: str
) -> None:
    """Redis is up; only the connections dropped (CLIENT KILL, a failover, a proxy's idle cut).

    The manager's next calls reconnect instead of failing with "Redis is unreachable".
    """
    tracker = fault_tasks.TRACKERS[tracker_name]
    before = await admin.mark()
    manager = await kew_manager_factory(lease_timeout=LEASE)
    await manager.create_queue(QueueConfig(QUEUE, max_workers=4))
    await manager.submit_tasks(QUEUE, tracked_batch(tracker_name, "a", 20, 0.0))
    await wait_all(manager, [f"a{i:04d}" for i in range(20)], 10.0)  # the pool is warm now

    assert await admin.kill_after(before) >= 2

    assert (await manager.get_task_status("a0000")).status is TaskStatus.COMPLETED
    await manager.submit_task(
        "b", QUEUE, "b", fault_tasks.tracked, QueuePriority.MEDIUM, tracker_name, "b"
    )
    await manager.submit_tasks(QUEUE, tracked_batch(tracker_name, "c", 20, 0.0))
    infos = await wait_all(manager, ["b", *(f"c{i:04d}" for i in range(20))], 15.0)
    assert [i.status for i in infos] == [TaskStatus.COMPLETED] * 21
    assert {t: n for t, n in tracker.runs.items() if n != 1} == {}


async def test_hundreds_of_concurrent_waits_on_one_manager_all_return(
    kew_manager_factory: Any, tracker_name: str
) -> None:
    """An application awaiting many results at once (asyncio.gather) gets them all."""
    manager = await kew_manager_factory()
    await manager.create_queue(QueueConfig(QUEUE, max_workers=50))
    tasks = tracked_batch(tracker_name, "w", 300, 0.05)
    await manager.submit_tasks(QUEUE, tasks)
    ids = [t["task_id"] for t in tasks]

    async with asyncio.timeout(30.0):
        infos = await asyncio.gather(*(manager.wait_for_task(t) for t in ids))

    assert [i.status for i in infos] == [TaskStatus.COMPLETED] * len(ids)


# -- a live process that outlives its lease ----------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_task_running_past_its_lease_in_a_live_process_is_not_run_twice(
    kew_manager_factory: Any, tracker_name: str, kind: str
) -> None:
    tracker = fault_tasks.TRACKERS[tracker_name]
    func = fault_tasks.tracked if kind == "async" else fault_tasks.tracked_sync
    hold = 3 * LEASE
    owner = await kew_manager_factory(lease_timeout=LEASE)
    rival = await kew_manager_factory(lease_timeout=LEASE)
    await owner.create_queue(QueueConfig(QUEUE, max_workers=2))
    await owner.submit_task(
        "hang", QUEUE, "hang", func, QueuePriority.MEDIUM, tracker_name, "hang", hold
    )
    await wait_until(lambda: tracker.runs["hang"] == 1, timeout=10.0, message="never started")
    # a live rival that would reclaim the task (and run it) the moment its lease expired
    await rival.create_queue(QueueConfig(QUEUE, max_workers=2))

    info = await rival.wait_for_task("hang", timeout=hold + 10.0)

    assert info.status is TaskStatus.COMPLETED, info
    assert info.result == {"task_id": "hang", "run": 1}
    assert tracker.runs["hang"] == 1
    assert tracker.max_overlap["hang"] == 1


# -- shutdown ----------------------------------------------------------------------------------


async def test_shutdown_hands_a_running_task_back_at_once_and_another_manager_completes_it(
    kew_manager_factory: Any, tracker_name: str
) -> None:
    tracker = fault_tasks.TRACKERS[tracker_name]
    # long leases: only the hand-back, not a lease expiry, can bring the task back quickly
    a = await kew_manager_factory(lease_timeout=30.0)
    b = await kew_manager_factory(lease_timeout=30.0)
    await a.create_queue(QueueConfig(QUEUE, max_workers=1))
    await a.submit_task(
        "long",
        QUEUE,
        "long",
        fault_tasks.tracked,
        QueuePriority.MEDIUM,
        tracker_name,
        "long",
        0.0,
        first_hold=60.0,
    )
    await wait_until(lambda: tracker.runs["long"] == 1, timeout=10.0, message="never started")

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await a.shutdown(timeout=0.2)
    took = loop.time() - t0

    info = await b.get_task_status("long")  # read at once, no waiting
    assert info.status is TaskStatus.QUEUED, info
    assert info.error is None and info.retry_count == 0
    assert tracker.cancelled["long"] == 1  # the running coroutine was cancelled (finally ran)
    assert took < 5.0, f"shutdown(timeout=0.2) took {took:.2f} s"

    await b.create_queue(QueueConfig(QUEUE, max_workers=1))
    info = await b.wait_for_task("long", timeout=10.0)  # far less than the 30 s lease

    assert info.status is TaskStatus.COMPLETED, info
    assert info.result == {"task_id": "long", "run": 2}
    assert info.retry_count == 0 and info.error is None
    assert tracker.runs["long"] == 2 and tracker.finished["long"] == 1
