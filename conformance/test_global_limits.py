"""Fleet-wide concurrency (issue 7): ``QueueConfig(global_max_workers=N)`` caps the tasks of a
queue running at once over every process on the Redis, next to the per-process ``max_workers``.

Measured, not inferred: each task enters and leaves a counter while it runs
(:attr:`tasks.Probe.peak` is the most runs ever inside at once). The managers of a test share
this process, so one counter sees the runs of all of them.
"""

from __future__ import annotations

from typing import Any

import ops_tasks
import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed, drain, wait_until

Q = "fleet"
P = QueuePriority.MEDIUM
BOUND = 15.0  # real seconds any wait may take at most


async def _managers(factory: Any, n: int, config: QueueConfig, **settings: Any) -> list[Any]:
    managers = [await factory(**settings) for _ in range(n)]
    for m in managers:
        await m.create_queue(config)
    return managers


async def _drain_all(managers: list[Any]) -> None:
    for m in managers:
        await drain(m, Q, timeout=BOUND)


async def test_a_global_limit_of_3_holds_across_3_managers_of_5_workers_over_300_tasks(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    managers = await _managers(
        kew_manager_factory, 3, QueueConfig(Q, max_workers=5, global_max_workers=3)
    )
    ids = [f"t-{i:03}" for i in range(300)]
    await managers[0].submit_tasks(
        Q,
        [
            {"task_id": i, "task_func": ops_tasks.counted, "args": (probe.name, i, 0.002)}
            for i in ids
        ],
    )
    await _drain_all(managers)
    assert probe.peak <= 3, f"{probe.peak} tasks ran at once with global_max_workers=3"
    assert probe.peak == 3  # and the limit is reached, not just respected
    assert sorted(probe.labels) == ids
    assert set(probe.attempts.values()) == {1}
    for i in ids[::10]:
        assert_task_completed(await managers[1].get_task_status(i), i)


async def test_the_global_limit_is_reached_and_the_rest_wait_in_every_manager(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    managers = await _managers(
        kew_manager_factory, 3, QueueConfig(Q, max_workers=5, global_max_workers=3)
    )
    for i in range(9):
        await managers[i % 3].submit_task(
            f"h-{i}", Q, "hold", ops_tasks.hold, P, probe.name, f"h-{i}"
        )
    await wait_until(lambda: probe.current == 3, timeout=BOUND, message="limit not reached")
    status = await managers[2].get_queue_status(Q)
    assert status["processing"] == 3
    assert status["ready"] == 6
    assert sum([(await m.get_queue_status(Q))["current_workers"] for m in managers]) == 3
    assert len(await managers[0].get_ongoing_tasks()) == 3
    probe.open_gate()
    for i in range(9):
        assert_task_completed(await managers[0].wait_for_task(f"h-{i}", timeout=BOUND))
    await _drain_all(managers)
    assert probe.peak == 3
    assert len(probe.runs) == 9


async def test_the_per_process_max_workers_still_holds_under_a_larger_global_limit(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    managers = await _managers(
        kew_manager_factory, 2, QueueConfig(Q, max_workers=2, global_max_workers=10)
    )
    for i in range(8):
        await managers[0].submit_task(f"h-{i}", Q, "hold", ops_tasks.hold, P, probe.name, f"h-{i}")
    await wait_until(lambda: probe.current == 4, timeout=BOUND, message="slots not filled")
    for m in managers:
        assert (await m.get_queue_status(Q))["current_workers"] == 2
    assert (await managers[0].get_queue_status(Q))["ready"] == 4
    probe.open_gate()
    await _drain_all(managers)
    assert probe.peak == 4
    assert len(probe.runs) == 8


async def test_failed_and_cancelled_runs_free_their_fleet_wide_slot(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    config = QueueConfig(Q, max_workers=3, global_max_workers=1, max_circuit_breaker_failures=10**6)
    a, b = await _managers(kew_manager_factory, 2, config, lease_timeout=1.0)
    await a.submit_task("first", Q, "hold", ops_tasks.hold, P, probe.name, "first")
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="first never started")
    await b.submit_task("bad", Q, "always_fail", ops_tasks.always_fail, P, probe.name, "bad")
    await b.submit_task("last", Q, "stamp", ops_tasks.stamp, P, probe.name, "last")
    assert (await b.get_queue_status(Q))["ready"] == 2  # held back by the fleet-wide limit

    # cancelled from the other manager (its owner notices at its next lease renewal): this
    # frees the only slot of the fleet
    assert await b.cancel_task("first") is True
    assert_task_failed(await b.wait_for_task("bad", timeout=BOUND), "bad attempt 1")
    assert_task_completed(await a.wait_for_task("last", timeout=BOUND), "last")
    assert (await a.get_task_status("first")).status is TaskStatus.CANCELLED
    assert probe.labels == ["first", "bad", "last"]
    assert probe.peak == 1
    await _drain_all([a, b])
