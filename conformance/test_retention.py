"""Retention (design.md §4): a finished task's record and result expire after the retention period
(``TaskQueueManager(retention=...)``, default 24 h) counted from when it finished; a task that is
still waiting (even deferred for days) or running never expires.

Expiry is Redis's own (real time), so these tests use a retention of a fraction of a second and
wait, bounded, for the record to go.
"""

from __future__ import annotations

from typing import Any

import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskNotFoundError, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed, wait_for_status, wait_until

Q = "kept"
P = QueuePriority.MEDIUM
RETENTION = 0.3  # seconds


async def _gone(manager: Any, task_id: str) -> bool:
    try:
        await manager.get_task_status(task_id)
    except TaskNotFoundError:
        return True
    return False


async def test_finished_records_expire_after_the_retention_period(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    manager = await kew_manager_factory(retention=RETENTION)
    await manager.create_queue(QueueConfig(Q, max_workers=2))
    await manager.submit_task("ok", Q, "rec", tasks.record, P, probe.name, "ok")
    await manager.submit_task("bad", Q, "fail", tasks.fail, P, probe.name, "bad")
    assert_task_completed(await manager.wait_for_task("ok", timeout=10), "ok")
    assert_task_failed(await manager.wait_for_task("bad", timeout=10))
    for task_id in ("ok", "bad"):
        await wait_until(
            lambda t=task_id: _gone(manager, t), timeout=10, message=f"{task_id} was never expired"
        )
    with pytest.raises(TaskNotFoundError):
        await manager.wait_for_task("ok", timeout=1)


async def test_waiting_tasks_never_expire(kew_manager_factory: Any, probe: tasks.Probe) -> None:
    manager = await kew_manager_factory(retention=RETENTION)
    await manager.create_queue(QueueConfig(Q, max_workers=1, max_retries=1, retry_delay=3600))
    await manager.submit_task(
        "deferred", Q, "rec", tasks.record, P, probe.name, "d", _defer_by=3 * 86_400
    )
    await manager.submit_task("retrying", Q, "fail", tasks.fail, P, probe.name, "r")
    await wait_for_status(manager, "retrying", TaskStatus.RETRY, timeout=10)
    # a task finished after them expires first: by then the waiting ones are older than that
    await manager.submit_task("marker", Q, "rec", tasks.record, P, probe.name, "m")
    assert_task_completed(await manager.wait_for_task("marker", timeout=10))
    await wait_until(lambda: _gone(manager, "marker"), timeout=10, message="marker never expired")
    assert (await manager.get_task_status("deferred")).status is TaskStatus.QUEUED
    assert (await manager.get_task_status("retrying")).status is TaskStatus.RETRY
    assert (await manager.get_queue_status(Q))["queued_tasks"] == 2


async def test_retention_counts_from_when_the_task_finished(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    manager = await kew_manager_factory(retention=RETENTION)
    await manager.create_queue(QueueConfig(Q, max_workers=1))
    # waiting (deferred) and running longer than the retention period, then finishing
    await manager.submit_task(
        "slow", Q, "busy", tasks.busy, P, probe.name, "slow", 2 * RETENTION, _defer_by=2 * RETENTION
    )
    info = await manager.wait_for_task("slow", timeout=10)
    assert_task_completed(info, "slow")
    assert_task_completed(await manager.get_task_status("slow"), "slow")


async def test_a_queue_can_keep_its_records_for_its_own_retention(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """QueueConfig(retention=...) overrides the manager's retention for that queue's records."""
    manager = await kew_manager_factory()  # the manager keeps records for 24 h
    await manager.create_queue(QueueConfig(Q, max_workers=2, retention=RETENTION))
    await manager.create_queue(QueueConfig("long", max_workers=2))
    await manager.submit_task("short", Q, "rec", tasks.record, P, probe.name, "short")
    await manager.submit_task("long", "long", "rec", tasks.record, P, probe.name, "long")
    assert_task_completed(await manager.wait_for_task("short", timeout=10), "short")
    assert_task_completed(await manager.wait_for_task("long", timeout=10), "long")
    await wait_until(lambda: _gone(manager, "short"), timeout=10, message="short never expired")
    assert_task_completed(await manager.get_task_status("long"), "long")


def test_a_bad_queue_retention_is_rejected() -> None:
    for bad in (0, -1, float("nan"), "60", True):
        with pytest.raises(ValueError):
            QueueConfig(Q, retention=bad)
