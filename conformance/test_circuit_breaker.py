"""Circuit breaker (design.md §4): per queue, shared by all processes through Redis.
``max_circuit_breaker_failures`` consecutive failures open it; while open no process starts tasks
from that queue (they stay queued, nothing is dropped, submissions are still accepted); after
``circuit_breaker_reset_timeout`` s it lets one trial task through (half-open): success closes it,
failure opens it again; a success resets the count. ``manager.queues[name].circuit_breaker`` has
the async ``record_failure()``, ``reset()`` and ``check_state()`` (True when closed).

Reset timeouts run on the fake clock, so "still open 1 ms before" is exact.
"""

from __future__ import annotations

import inspect
from typing import Any

import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed, drain, wait_until

Q = "fragile"
P = QueuePriority.MEDIUM
RESET = 60.0


def _config(name: str = Q, **overrides: Any) -> QueueConfig:
    values: dict[str, Any] = {
        "max_workers": 1,
        "max_circuit_breaker_failures": 3,
        "circuit_breaker_reset_timeout": RESET,
    }
    values.update(overrides)
    return QueueConfig(name, **values)


async def _fail_tasks(manager: Any, probe: tasks.Probe, n: int, prefix: str = "bad") -> None:
    for i in range(n):
        await manager.submit_task(
            f"{prefix}{i}", Q, "fail", tasks.fail, P, probe.name, f"{prefix}{i}"
        )
        assert_task_failed(await manager.wait_for_task(f"{prefix}{i}", timeout=10))


async def _state(manager: Any, name: str = Q) -> tuple[str, bool]:
    status = await manager.get_queue_status(name)
    return status["circuit_breaker_status"], await manager.queues[
        name
    ].circuit_breaker.check_state()


async def test_the_breaker_opens_after_n_consecutive_failures(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(_config())
    assert await _state(kew_manager) == ("closed", True)
    await _fail_tasks(kew_manager, probe, 2)
    assert await _state(kew_manager) == ("closed", True)
    await _fail_tasks(kew_manager, probe, 1, prefix="third")
    assert await _state(kew_manager) == ("open", False)


async def test_while_open_tasks_stay_queued_submissions_are_accepted_and_nothing_is_dropped(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(_config(max_workers=4))
    await _fail_tasks(kew_manager, probe, 3)
    ids = [f"good{i}" for i in range(10)]
    for i in ids:
        info = await kew_manager.submit_task(i, Q, "rec", tasks.record, P, probe.name, i)
        assert info.status is TaskStatus.QUEUED
    await fake_clock.advance(RESET - 0.001)
    # one more submit 1 ms before the reset timeout: workers claim now, and must take nothing
    ids.append("late")
    await kew_manager.submit_task("late", Q, "rec", tasks.record, P, probe.name, "late")
    await fake_clock.advance(0)
    assert await _state(kew_manager) == ("open", False)
    for i in ids:
        assert (await kew_manager.get_task_status(i)).status is TaskStatus.QUEUED
    status = await kew_manager.get_queue_status(Q)
    assert status["queued_tasks"] == 11
    assert status["current_workers"] == 0
    assert [x for x in probe.labels if not x.startswith("bad")] == []

    await fake_clock.advance(0.001)  # half-open: a trial runs, succeeds, and closes the breaker
    for i in ids:
        assert_task_completed(await kew_manager.wait_for_task(i, timeout=10))
    assert await _state(kew_manager) == ("closed", True)
    assert sorted(x for x in probe.labels if not x.startswith("bad")) == sorted(ids)


async def test_half_open_lets_exactly_one_trial_and_a_failed_trial_opens_it_again(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(_config(max_workers=3))
    await _fail_tasks(kew_manager, probe, 3)
    await kew_manager.submit_task("trial", Q, "fail", tasks.fail, P, probe.name, "trial")
    for i in range(3):
        await kew_manager.submit_task(f"ok{i}", Q, "rec", tasks.record, P, probe.name, f"ok{i}")

    await fake_clock.advance(RESET)  # one trial (the oldest task) runs, fails: open again
    assert_task_failed(await kew_manager.wait_for_task("trial", timeout=10))
    await fake_clock.advance(0)
    assert probe.labels[3:] == ["trial"]
    assert await _state(kew_manager) == ("open", False)
    for i in range(3):
        assert (await kew_manager.get_task_status(f"ok{i}")).status is TaskStatus.QUEUED

    await fake_clock.advance(RESET - 0.001)
    await kew_manager.submit_task("ok3", Q, "rec", tasks.record, P, probe.name, "ok3")  # a claim
    await fake_clock.advance(0)
    assert probe.labels[3:] == ["trial"]
    await fake_clock.advance(0.001)  # second trial: ok0 succeeds and closes the breaker
    for i in range(4):
        assert_task_completed(await kew_manager.wait_for_task(f"ok{i}", timeout=10))
    assert probe.labels[3:] == ["trial", "ok0", "ok1", "ok2", "ok3"]
    assert await _state(kew_manager) == ("closed", True)


async def test_a_success_resets_the_consecutive_failure_count(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(_config())
    plan = [
        ("f1", tasks.fail),
        ("f2", tasks.fail),
        ("ok", tasks.record),
        ("f3", tasks.fail),
        ("f4", tasks.fail),
    ]
    await kew_manager.submit_tasks(
        Q,
        [
            {"task_id": i, "task_type": "t", "task_func": f, "priority": P, "args": (probe.name, i)}
            for i, f in plan
        ],
    )
    await drain(kew_manager, Q, timeout=10)
    assert probe.labels == ["f1", "f2", "ok", "f3", "f4"]
    assert await _state(kew_manager) == ("closed", True)
    await _fail_tasks(kew_manager, probe, 1, prefix="f5-")
    assert await _state(kew_manager) == ("open", False)


async def test_the_breaker_is_shared_by_two_managers(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    await a.create_queue(_config())
    await b.create_queue(_config())
    for _ in range(3):
        await a.queues[Q].circuit_breaker.record_failure()
    assert await _state(b) == ("open", False)

    await b.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t")
    await fake_clock.advance(1)
    assert (await a.get_task_status("t")).status is TaskStatus.QUEUED  # neither manager runs it
    assert probe.runs == []

    await b.queues[Q].circuit_breaker.reset()
    assert await _state(a) == ("closed", True)
    assert_task_completed(await a.wait_for_task("t", timeout=10))


async def test_failures_counted_in_two_managers_add_up(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    a = await kew_manager_factory()
    await a.create_queue(_config())
    await _fail_tasks(a, probe, 2)  # run by a
    await a.shutdown()
    b = await kew_manager_factory()
    await b.create_queue(_config())
    assert await _state(b) == ("closed", True)
    await _fail_tasks(b, probe, 1, prefix="in-b")  # run by b: the third consecutive failure
    assert await _state(b) == ("open", False)


async def test_the_manual_breaker_api_is_async_and_opens_resets_and_reports(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(_config())
    breaker = kew_manager.queues[Q].circuit_breaker
    for method in (breaker.record_failure, breaker.reset, breaker.check_state):
        assert inspect.iscoroutinefunction(method), method
    await breaker.record_failure()
    await breaker.record_failure()
    assert await breaker.check_state() is True
    await breaker.record_failure()
    assert await breaker.check_state() is False
    assert (await kew_manager.get_queue_status(Q))["circuit_breaker_status"] == "open"

    await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t")
    await fake_clock.advance(1)
    assert (await kew_manager.get_task_status("t")).status is TaskStatus.QUEUED

    await breaker.reset()
    assert await breaker.check_state() is True
    assert (await kew_manager.get_queue_status(Q))["circuit_breaker_status"] == "closed"
    assert_task_completed(await kew_manager.wait_for_task("t", timeout=10))


async def test_an_open_breaker_holds_back_only_its_own_queue(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(_config())
    await kew_manager.create_queue(_config("healthy"))
    for _ in range(3):
        await kew_manager.queues[Q].circuit_breaker.record_failure()
    await kew_manager.submit_task("h", "healthy", "rec", tasks.record, P, probe.name, "h")
    assert_task_completed(await kew_manager.wait_for_task("h", timeout=10))
    assert await _state(kew_manager, "healthy") == ("closed", True)
    assert await _state(kew_manager) == ("open", False)


async def test_half_open_lets_one_trial_in_the_whole_fleet(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    await a.create_queue(_config(max_workers=3))
    await b.create_queue(_config(max_workers=3))
    for _ in range(3):
        await a.queues[Q].circuit_breaker.record_failure()
    ids = [f"t{i}" for i in range(4)]
    for i in ids:
        await a.submit_task(i, Q, "hold", tasks.hold, P, probe.name, i)
    await fake_clock.advance(RESET)
    await wait_until(lambda: probe.current == 1, timeout=10, message="no trial started")
    await fake_clock.advance(0)
    assert (probe.current, probe.labels) == (1, ["t0"])  # one trial, in one of the managers
    probe.open_gate()  # the trial succeeds: the breaker closes and the rest run
    for i in ids:
        assert_task_completed(await b.wait_for_task(i, timeout=10))
    assert await _state(a) == ("closed", True)
