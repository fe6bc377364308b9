"""Pause and resume (issue 7): ``pause_queue(name)`` stops claiming from a queue in every process
within one wake-up, ``resume_queue(name)`` restarts it in every process; running tasks go on,
submissions keep being accepted, and ``get_queue_status`` shows ``paused``.

Every test uses two or more managers on one Redis and namespace, as processes would. "No task
starts while paused" is observed over a short window after the workers have had their wake-ups
(a freed slot, submits, a deferred task falling due): it is the absence of an event, so it is
watched for a bounded time, not waited for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import ops_tasks
import pytest
import tasks
from kew import QueueConfig, QueueNotFoundError, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, drain, wait_until

Q = "pausable"
OTHER = "unpaused"
P = QueuePriority.MEDIUM
BOUND = 10.0  # real seconds any wait may take at most
QUIET = 0.5  # real seconds watched for a task that must not start


@pytest.fixture
def later(kew_manager_factory: Any) -> Iterator[tasks.Probe]:
    """A second probe with its own gate (for tasks that must hold after the first gate opened);
    like ``probe``, its gate opens before the managers are shut down."""
    p = tasks.Probe(f"probe-{uuid.uuid4().hex[:10]}")
    tasks.PROBES[p.name] = p
    yield p
    p.open_gate()
    tasks.PROBES.pop(p.name, None)


async def _nothing_starts(probe: tasks.Probe, what: str) -> None:
    with pytest.raises(TimeoutError):
        await wait_until(lambda: bool(probe.runs), timeout=QUIET)
    assert probe.labels == [], f"{what}: tasks started while the queue was paused"


async def _status(manager: Any, name: str = Q) -> dict[str, Any]:
    return dict(await manager.get_queue_status(name))


async def test_pause_in_one_manager_stops_claiming_in_both_and_resume_restarts_both(
    kew_manager_factory: Any, probe: tasks.Probe, later: tasks.Probe
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    for m in (a, b):
        await m.create_queue(QueueConfig(Q, max_workers=1))
        await m.create_queue(QueueConfig(OTHER, max_workers=1))
    for label in ("run-1", "run-2"):  # one running task in each manager
        await a.submit_task(label, Q, "hold", ops_tasks.hold, P, probe.name, label)
    await wait_until(lambda: probe.current == 2, timeout=BOUND, message="slots not filled")
    assert [(await _status(m))["current_workers"] for m in (a, b)] == [1, 1]

    await a.pause_queue(Q)
    for m in (a, b):
        status = await _status(m)
        assert status["paused"] is True
        assert (await _status(m, OTHER))["paused"] is False

    ids = [f"p-{i}" for i in range(6)]
    for i, task_id in enumerate(ids):  # submissions are accepted, through either manager
        m = (a, b)[i % 2]
        info = await m.submit_task(task_id, Q, "hold", ops_tasks.hold, P, later.name, task_id)
        assert info.status is TaskStatus.QUEUED
    probe.open_gate()  # the running tasks go on and complete; both workers get a free slot
    for label in ("run-1", "run-2"):
        assert_task_completed(await b.wait_for_task(label, timeout=BOUND), label)
    # another queue of the same managers is not held back
    await b.submit_task("elsewhere", OTHER, "stamp", ops_tasks.stamp, P, probe.name, "elsewhere")
    assert_task_completed(await a.wait_for_task("elsewhere", timeout=BOUND))

    await _nothing_starts(later, "after slots were freed and tasks submitted")
    for m in (a, b):
        status = await _status(m)
        assert status["paused"] is True
        assert status["ready"] == len(ids)
        assert status["processing"] == 0
        assert status["current_workers"] == 0
    for task_id in ids:
        assert (await a.get_task_status(task_id)).status is TaskStatus.QUEUED

    await b.resume_queue(Q)  # resumed by the other manager: both claim again
    await wait_until(lambda: later.current == 2, timeout=BOUND, message="claiming not resumed")
    assert [(await _status(m))["current_workers"] for m in (a, b)] == [1, 1]
    for m in (a, b):
        assert (await _status(m))["paused"] is False
    later.open_gate()
    for task_id in ids:
        assert_task_completed(await a.wait_for_task(task_id, timeout=BOUND), task_id)
    assert sorted(later.labels) == sorted(ids)


async def test_a_manager_joining_a_paused_queue_does_not_claim_from_it(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a = await kew_manager_factory()
    await a.create_queue(QueueConfig(Q))
    await a.pause_queue(Q)
    for i in range(3):
        await a.submit_task(f"t-{i}", Q, "stamp", ops_tasks.stamp, P, probe.name, f"t-{i}")
    b = await kew_manager_factory()
    await b.create_queue(QueueConfig(Q))
    assert (await _status(b))["paused"] is True
    await _nothing_starts(probe, "with a manager that joined after the pause")

    await a.resume_queue(Q)
    for i in range(3):
        assert_task_completed(await b.wait_for_task(f"t-{i}", timeout=BOUND))
    assert (await _status(b))["paused"] is False


async def test_deferred_and_retry_waiting_tasks_that_fall_due_wait_while_paused(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    for m in (a, b):
        await m.create_queue(
            QueueConfig(Q, max_retries=1, retry_delay=0.3, max_circuit_breaker_failures=10**6)
        )
    await a.submit_task("flaky", Q, "fail_until", ops_tasks.fail_until, P, probe.name, "flaky", 1)
    await wait_until(
        lambda: probe.attempts["flaky"] == 1, timeout=BOUND, message="first attempt never ran"
    )
    await a.pause_queue(Q)
    await a.submit_task("soon", Q, "stamp", ops_tasks.stamp, P, probe.name, "soon", _defer_by=0.3)
    # both fall due during the watched window; nobody may claim them
    with pytest.raises(TimeoutError):
        await wait_until(lambda: len(probe.runs) > 1, timeout=QUIET + 0.4)
    assert probe.labels == ["flaky"]
    assert (await b.get_task_status("flaky")).status in (TaskStatus.RETRY, TaskStatus.QUEUED)
    assert (await b.get_task_status("soon")).status is TaskStatus.QUEUED

    await b.resume_queue(Q)
    assert_task_completed(await b.wait_for_task("flaky", timeout=BOUND), "flaky")
    assert_task_completed(await a.wait_for_task("soon", timeout=BOUND), "soon")
    assert probe.attempts == {"flaky": 2, "soon": 1}


async def test_pause_and_resume_are_idempotent_and_need_a_known_queue(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    for m in (a, b):
        await m.create_queue(QueueConfig(Q))
    assert (await _status(a))["paused"] is False
    await a.resume_queue(Q)  # resuming a running queue changes nothing
    assert (await _status(b))["paused"] is False
    await a.pause_queue(Q)
    await b.pause_queue(Q)
    assert (await _status(a))["paused"] is True
    await b.resume_queue(Q)
    for m in (a, b):
        assert (await _status(m))["paused"] is False
    await a.submit_task("t", Q, "stamp", ops_tasks.stamp, P, probe.name, "t")
    assert_task_completed(await b.wait_for_task("t", timeout=BOUND))
    for call in (a.pause_queue, a.resume_queue):
        with pytest.raises(QueueNotFoundError):
            await call("no-such-queue")
    await drain(a, Q, timeout=BOUND)


async def test_an_admin_process_sees_and_pauses_a_queue_it_never_created(
    kew_manager_factory: Any,
) -> None:
    worker = await kew_manager_factory()
    admin = await kew_manager_factory()
    await worker.create_queue(QueueConfig(Q, max_workers=1))
    await admin.pause_queue(Q)
    status = await admin.get_queue_status(Q)
    assert status["paused"] is True
    assert status["name"] == Q and status["max_workers"] is None  # not configured here
    await admin.resume_queue(Q)
    assert (await worker.get_queue_status(Q))["paused"] is False


@pytest.mark.parametrize("bad", [None, 3, "", "a{b}"])
async def test_pause_and_status_reject_a_bad_queue_name(kew_manager: Any, bad: object) -> None:
    from kew import InvalidArgumentError

    for call in (kew_manager.pause_queue, kew_manager.resume_queue, kew_manager.get_queue_status):
        with pytest.raises(InvalidArgumentError):
            await call(bad)
