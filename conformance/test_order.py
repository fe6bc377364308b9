"""Order (design.md §4): lower priority value first (HIGH=1); FIFO within a priority; a deferred
or retry-waiting task sits in a schedule and never blocks ready tasks of any priority.

Order is observed with ``max_workers=1``: a first task holds the only worker slot while the
others are submitted, then the gate opens and the tasks run one by one in claim order.
"""

from __future__ import annotations

import random
from typing import Any

import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, drain, wait_until

Q = "orders"
PRIORITIES = [QueuePriority.HIGH, QueuePriority.MEDIUM, QueuePriority.LOW]


async def _hold_the_only_slot(manager: Any, probe: tasks.Probe) -> None:
    await manager.submit_task("blocker", Q, "hold", tasks.hold, QueuePriority.LOW, probe.name, "b")
    await wait_until(lambda: probe.current == 1, timeout=10, message="blocker never started")


async def test_100_tasks_run_by_priority_then_fifo_within_each_priority(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await _hold_the_only_slot(kew_manager, probe)
    rng = random.Random(4)
    submitted: list[tuple[QueuePriority, str]] = []
    for i in range(100):
        prio = rng.choice(PRIORITIES)
        label = f"{prio.name}-{i:03d}"
        await kew_manager.submit_task(label, Q, "rec", tasks.record, prio, probe.name, label)
        submitted.append((prio, label))
    assert {p for p, _ in submitted} == set(PRIORITIES)

    probe.open_gate()
    await drain(kew_manager, Q, timeout=30)

    expected = [label for _, label in sorted(submitted, key=lambda s: s[0].value)]  # stable
    assert probe.labels == ["b", *expected]


async def test_a_batch_runs_by_priority_then_in_batch_order(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await _hold_the_only_slot(kew_manager, probe)
    specs = []
    for i in range(30):
        prio = PRIORITIES[(i * 7) % 3]
        label = f"{prio.name}-{i:02d}"
        specs.append(
            {
                "task_id": label,
                "task_type": "rec",
                "task_func": tasks.record,
                "priority": prio,
                "args": (probe.name, label),
            }
        )
    await kew_manager.submit_tasks(Q, specs)
    probe.open_gate()
    await drain(kew_manager, Q, timeout=30)
    expected = [s["task_id"] for s in sorted(specs, key=lambda s: s["priority"].value)]
    assert probe.labels == ["b", *expected]


async def test_priority_given_as_int_orders_like_the_enum(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await _hold_the_only_slot(kew_manager, probe)
    for label, prio in [("low", 3), ("medium", 2), ("high", 1)]:
        await kew_manager.submit_task(label, Q, "rec", tasks.record, prio, probe.name, label)
    probe.open_gate()
    await drain(kew_manager, Q, timeout=10)
    assert probe.labels == ["b", "high", "medium", "low"]
    assert (await kew_manager.get_task_status("high")).priority == QueuePriority.HIGH.value


async def test_a_deferred_high_task_never_delays_ready_low_tasks(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task(
        "later-high", Q, "rec", tasks.record, QueuePriority.HIGH, probe.name, "H", _defer_by=3600
    )
    for i in range(5):
        await kew_manager.submit_task(
            f"low-{i}", Q, "rec", tasks.record, QueuePriority.LOW, probe.name, f"L{i}"
        )
    for i in range(5):
        assert_task_completed(await kew_manager.wait_for_task(f"low-{i}", timeout=10))
    assert probe.labels == [f"L{i}" for i in range(5)]
    info = await kew_manager.get_task_status("later-high")
    assert info.status is TaskStatus.QUEUED
    assert (await kew_manager.get_queue_status(Q))["queued_tasks"] == 1


async def test_a_deferred_high_task_runs_before_ready_low_tasks_once_due(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task(
        "due-high", Q, "rec", tasks.record, QueuePriority.HIGH, probe.name, "H", _defer_by=10
    )
    await _hold_the_only_slot(kew_manager, probe)
    for i in range(3):
        await kew_manager.submit_task(
            f"low-{i}", Q, "rec", tasks.record, QueuePriority.LOW, probe.name, f"L{i}"
        )
    await fake_clock.advance(10)  # H is due now, while the blocker still holds the slot
    probe.open_gate()
    await drain(kew_manager, Q, timeout=10)
    assert probe.labels == ["b", "H", "L0", "L1", "L2"]


async def test_a_retry_waiting_high_task_never_delays_ready_low_tasks(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    manager = await kew_manager_factory()
    await manager.create_queue(QueueConfig(Q, max_workers=1, max_retries=1, retry_delay=60))
    await manager.submit_task("high", Q, "fail", tasks.fail, QueuePriority.HIGH, probe.name, "H")
    await wait_until(lambda: probe.labels == ["H"], timeout=10, message="the HIGH task never ran")
    for i in range(3):
        await manager.submit_task(
            f"low-{i}", Q, "rec", tasks.record, QueuePriority.LOW, probe.name, f"L{i}"
        )
    for i in range(3):
        assert_task_completed(await manager.wait_for_task(f"low-{i}", timeout=10))
    assert (await manager.get_task_status("high")).status is TaskStatus.RETRY
    assert probe.labels == ["H", "L0", "L1", "L2"]
    await fake_clock.advance(60)
    final = await manager.wait_for_task("high", timeout=10)
    assert final.status is TaskStatus.FAILED
    assert probe.labels == ["H", "L0", "L1", "L2", "H"]


async def test_deferred_tasks_of_one_priority_run_in_the_order_they_fall_due(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    for label, delay in [("c", 30), ("a", 10), ("b", 20)]:
        await kew_manager.submit_task(
            label, Q, "rec", tasks.record, QueuePriority.MEDIUM, probe.name, label, _defer_by=delay
        )
    await fake_clock.advance(30)
    await drain(kew_manager, Q, timeout=10)
    start = fake_clock.now() - 30
    assert probe.runs == [("a", start + 10), ("b", start + 20), ("c", start + 30)]
