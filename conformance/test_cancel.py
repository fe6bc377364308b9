"""Cancel (issue 7): ``cancel_task(task_id)`` cancels a task wherever it is.

- A queued, deferred or retry-waiting task becomes CANCELLED at once and never runs.
- A running task is cancelled wherever it runs: the owning process notices at its next lease
  renewal (every ``lease_timeout / 3`` s; at once when it runs in the calling process) and cancels
  the coroutine, whose ``finally`` runs; the task ends CANCELLED and is not run again.
- Cancelling a finished task (COMPLETED, FAILED, CANCELLED) returns False and changes nothing.
- An unknown id raises TaskNotFoundError (a LookupError).

Every test uses two managers on one Redis and namespace, as two processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ops_tasks
import pytest
import tasks
from kew import (
    InvalidArgumentError,
    QueueConfig,
    QueuePriority,
    TaskNotFoundError,
    TaskStatus,
    TaskTimeoutError,
)
from kew_testkit import assert_task_completed, drain, wait_for_status, wait_until

Q = "cancel"
P = QueuePriority.MEDIUM
LEASE = 1.0  # lease renewal every LEASE / 3 s
BOUND = 5.0  # real seconds any wait below may take at most (far beyond one renewal)
EVENT_BOUND = 2.5  # real seconds: an event arrives in ms; a missed one waits for a re-read


def _config(**overrides: Any) -> QueueConfig:
    values: dict[str, Any] = {"max_workers": 1, "max_circuit_breaker_failures": 10**6}
    values.update(overrides)
    return QueueConfig(Q, **values)


async def test_a_task_cancelled_while_running_in_another_manager_stops_at_its_next_renewal(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner = await kew_manager_factory(lease_timeout=LEASE)
    caller = await kew_manager_factory(lease_timeout=LEASE)  # no queue here: it cannot run it
    await runner.create_queue(_config())
    await runner.submit_task("long", Q, "hold", ops_tasks.hold, P, probe.name, "long")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")
    assert (await caller.get_task_status("long")).status is TaskStatus.PROCESSING

    assert await caller.cancel_task("long") is True
    # the owner notices at its next lease renewal (every LEASE / 3 s) and cancels the coroutine
    await wait_until(lambda: "long" in probe.finished, timeout=BOUND, message="run not stopped")
    assert probe.cancelled == ["long"]
    info = await caller.wait_for_task("long", timeout=BOUND)
    assert info.status is TaskStatus.CANCELLED
    assert info.completed_time is not None
    assert info.result is None

    # the slot is free again and the task is never run a second time
    await runner.submit_task("next", Q, "stamp", ops_tasks.stamp, P, probe.name, "next")
    assert_task_completed(await caller.wait_for_task("next", timeout=BOUND), "next")
    assert probe.labels == ["long", "next"]
    assert (await runner.get_task_status("long")).status is TaskStatus.CANCELLED
    status = await runner.get_queue_status(Q)
    assert status["processing"] == 0
    assert status["current_workers"] == 0


async def test_a_task_running_in_the_calling_manager_is_cancelled_at_once(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a = await kew_manager_factory()  # default lease: a renewal would take 10 s
    b = await kew_manager_factory()
    await a.create_queue(_config())
    await a.submit_task("mine", Q, "hold", ops_tasks.hold, P, probe.name, "mine")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")

    waiter = asyncio.create_task(b.wait_for_task("mine", timeout=BOUND))
    assert await a.cancel_task("mine") is True
    await wait_until(lambda: "mine" in probe.finished, timeout=BOUND, message="run not stopped")
    assert probe.cancelled == ["mine"]
    assert (await waiter).status is TaskStatus.CANCELLED  # seen from the other manager too
    assert (await a.get_task_status("mine")).status is TaskStatus.CANCELLED


async def test_cancelling_queued_deferred_and_retry_waiting_tasks_ends_them_and_they_never_run(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    for m in (a, b):
        await m.create_queue(_config(max_retries=1, retry_delay=60))

    # a retry-waiting task: its first attempt fails, its retry is due in 60 s
    await a.submit_task(
        "retrying", Q, "fail_until", ops_tasks.fail_until, P, probe.name, "retrying", 1
    )
    await wait_for_status(b, "retrying", TaskStatus.RETRY, timeout=BOUND)
    # fill both managers' only slot, so that a ready task stays queued
    for label in ("busy-a", "busy-b"):
        await a.submit_task(label, Q, "hold", ops_tasks.hold, P, probe.name, label)
    await wait_until(lambda: probe.current == 2, timeout=BOUND, message="slots not filled")
    await a.submit_task("queued", Q, "stamp", ops_tasks.stamp, P, probe.name, "queued")
    await a.submit_task(
        "deferred", Q, "stamp", ops_tasks.stamp, P, probe.name, "deferred", _defer_by=30
    )
    assert (await b.get_task_status("queued")).status is TaskStatus.QUEUED
    assert (await b.get_task_status("deferred")).status is TaskStatus.QUEUED
    assert (await a.get_queue_status(Q))["queued_tasks"] == 3

    for task_id in ("queued", "deferred", "retrying"):
        assert await b.cancel_task(task_id) is True
        info = await a.get_task_status(task_id)
        assert info.status is TaskStatus.CANCELLED, task_id
        assert info.completed_time is not None
        assert (await a.wait_for_task(task_id, timeout=BOUND)).status is TaskStatus.CANCELLED
    status = await a.get_queue_status(Q)
    assert status["queued_tasks"] == 0
    assert status["processing"] == 2

    # free the slots and move past every due time: none of the cancelled tasks runs
    probe.open_gate()
    await fake_clock.advance(120)
    await a.submit_task("after", Q, "stamp", ops_tasks.stamp, P, probe.name, "after")
    assert_task_completed(await b.wait_for_task("after", timeout=BOUND), "after")
    await drain(a, Q, timeout=BOUND)
    await drain(b, Q, timeout=BOUND)
    assert sorted(probe.labels) == ["after", "busy-a", "busy-b", "retrying"]
    assert probe.attempts["retrying"] == 1
    for task_id in ("queued", "deferred", "retrying"):
        assert (await b.get_task_status(task_id)).status is TaskStatus.CANCELLED


async def test_cancelling_a_finished_task_returns_false_and_changes_nothing(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    for m in (a, b):
        await m.create_queue(_config())
    await a.submit_task("done", Q, "stamp", ops_tasks.stamp, P, probe.name, "done")
    await a.submit_task("broken", Q, "fail", ops_tasks.always_fail, P, probe.name, "broken")
    await a.submit_task(
        "stopped", Q, "stamp", ops_tasks.stamp, P, probe.name, "stopped", _defer_by=3600
    )
    assert await a.cancel_task("stopped") is True
    assert_task_completed(await b.wait_for_task("done", timeout=BOUND), "done")
    assert (await b.wait_for_task("broken", timeout=BOUND)).status is TaskStatus.FAILED
    before = {i: (await a.get_task_status(i)).to_dict() for i in ("done", "broken", "stopped")}
    dead_before = [d.task_id for d in await a.list_dead(Q)]
    assert dead_before == ["broken"]

    for task_id in ("done", "broken", "stopped"):
        assert await b.cancel_task(task_id) is False, task_id
        assert await a.cancel_task(task_id) is False, task_id

    after = {i: (await b.get_task_status(i)).to_dict() for i in ("done", "broken", "stopped")}
    assert after == before
    assert [d.task_id for d in await b.list_dead(Q)] == dead_before
    assert probe.attempts == {"done": 1, "broken": 1}


async def test_cancelling_an_unknown_task_raises_task_not_found_error(
    kew_manager_factory: Any,
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    with pytest.raises(TaskNotFoundError):
        await b.cancel_task("nobody")  # a namespace without queues
    await a.create_queue(_config())
    for m in (a, b):
        with pytest.raises(TaskNotFoundError) as caught:
            await m.cancel_task("nobody")
        assert isinstance(caught.value, LookupError)
    for bad in ("", None, 42):
        with pytest.raises(InvalidArgumentError):
            await a.cancel_task(bad)


async def _cancel_requested_then_runner_shuts_down(factory: Any, probe: tasks.Probe) -> Any:
    """A task runs in `runner` (default lease: no renewal within a test); `other` asks for its
    cancellation. Returns (runner, other); the runner has not noticed yet."""
    runner = await factory()
    other = await factory()
    await runner.create_queue(_config())
    await runner.submit_task("doomed", Q, "hold", ops_tasks.hold, P, probe.name, "doomed")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")
    await other.create_queue(_config())  # a free worker that would take a handed-back task
    assert await other.cancel_task("doomed") is True
    assert (await other.get_task_status("doomed")).status is TaskStatus.PROCESSING
    return runner, other


async def test_a_cancel_request_for_a_task_whose_manager_shuts_down_ends_it_cancelled(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """A running task whose cancellation was asked is not handed back to run again when its
    process shuts down before noticing: it ends CANCELLED."""
    runner, other = await _cancel_requested_then_runner_shuts_down(kew_manager_factory, probe)
    await runner.shutdown(wait=False)
    assert "doomed" in probe.finished
    info = await wait_for_status(other, "doomed", TaskStatus.CANCELLED, timeout=BOUND)
    assert info.completed_time is not None
    await other.submit_task("after", Q, "stamp", ops_tasks.stamp, P, probe.name, "after")
    assert_task_completed(await other.wait_for_task("after", timeout=BOUND))
    assert probe.labels == ["doomed", "after"]  # the other manager never ran it
    assert (await other.get_task_status("doomed")).status is TaskStatus.CANCELLED


async def test_a_waiter_elsewhere_is_woken_when_a_handed_back_task_ends_cancelled(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """wait_for_task works across managers without polling: it is woken by the event of the
    task's end, also when that end is a cancellation applied while handing the task back."""
    runner, other = await _cancel_requested_then_runner_shuts_down(kew_manager_factory, probe)
    with pytest.raises(TaskTimeoutError):  # still running; and `other` now listens for outcomes
        await other.wait_for_task("doomed", timeout=0.01)
    waiter = asyncio.create_task(other.wait_for_task("doomed", timeout=60))
    await asyncio.sleep(0)  # let the waiter read the record (PROCESSING) and start waiting
    assert (await other.get_task_status("doomed")).status is TaskStatus.PROCESSING

    await runner.shutdown(wait=False)
    assert (await other.get_task_status("doomed")).status is TaskStatus.CANCELLED
    # kew's fallback re-read of the record comes only every few seconds: a bound below that
    # tells an event from a re-read
    try:
        info = await asyncio.wait_for(waiter, timeout=EVENT_BOUND)
    except TimeoutError:
        pytest.fail(
            "the task is CANCELLED, but wait_for_task in another manager was not woken within "
            f"{EVENT_BOUND} s: no event was published when it ended"
        )
    assert info.status is TaskStatus.CANCELLED


async def test_a_running_sync_task_is_cancelled_and_its_late_result_is_not_stored(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner = await kew_manager_factory(lease_timeout=LEASE)
    caller = await kew_manager_factory(lease_timeout=LEASE)
    await runner.create_queue(_config())
    await runner.submit_task("thread", Q, "hold_sync", ops_tasks.hold_sync, P, probe.name, "thread")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")

    assert await caller.cancel_task("thread") is True
    # the owner notices at its next lease renewal and ends the task, though its thread runs on
    info = await wait_for_status(caller, "thread", TaskStatus.CANCELLED, timeout=BOUND)
    assert "thread" not in probe.finished
    probe.open_gate()  # a thread cannot be interrupted: it runs to its end (and returns)
    await wait_until(lambda: "thread" in probe.finished, timeout=BOUND, message="thread stuck")
    await drain(runner, Q, timeout=BOUND)
    info = await caller.get_task_status("thread")
    assert info.status is TaskStatus.CANCELLED
    assert info.result is None
    assert probe.attempts["thread"] == 1


async def test_a_cancelled_sync_task_keeps_its_worker_slot_until_its_thread_ends(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """max_workers is a hard per-process limit: a cancelled sync task whose thread still runs
    still takes its slot (as a timed-out one does), so no other task starts beside it."""
    runner = await kew_manager_factory(lease_timeout=LEASE)
    caller = await kew_manager_factory(lease_timeout=LEASE)
    await runner.create_queue(_config(max_workers=1))
    await runner.submit_task("thread", Q, "hold_sync", ops_tasks.hold_sync, P, probe.name, "thread")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")
    assert await caller.cancel_task("thread") is True
    await runner.submit_task("next", Q, "counted", ops_tasks.counted, P, probe.name, "next", 0.01)

    # watched for three lease renewals (the runner notices the cancel at the first one):
    # "next" must not start while the thread runs
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: "next" in probe.labels, timeout=LEASE)
    started_beside_thread = "next" in probe.labels and "thread" not in probe.finished
    probe.open_gate()
    assert_task_completed(await caller.wait_for_task("next", timeout=BOUND), "next")
    await wait_for_status(caller, "thread", TaskStatus.CANCELLED, timeout=BOUND)
    assert not started_beside_thread, "a task started while the cancelled task's thread ran"
    assert probe.peak == 1
