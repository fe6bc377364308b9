"""Hooks (design.md §4): ``on_task_start(info)``, ``on_task_complete(info)``,
``on_task_fail(info, exc)``; sync or async; an exception inside a hook is logged and never changes
the task's outcome. ``on_task_fail`` is called after every failed attempt; ``info.status`` says
whether the task will be retried (RETRY) or not (FAILED).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed, drain

Q = "hooked"
P = QueuePriority.MEDIUM


class Recorder:
    """Hooks that note (hook, task id, status, result or error) for each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def sync_hooks(self) -> dict[str, Any]:
        def start(info: Any) -> None:
            self.calls.append(("start", info.task_id, info.status))

        def complete(info: Any) -> None:
            self.calls.append(("complete", info.task_id, info.status, info.result))

        def fail(info: Any, exc: BaseException) -> None:
            self.calls.append(("fail", info.task_id, info.status, info.retry_count, str(exc)))

        return {"on_task_start": start, "on_task_complete": complete, "on_task_fail": fail}

    def async_hooks(self) -> dict[str, Any]:
        sync = self.sync_hooks()

        def wrap(hook: Any) -> Any:
            async def run(*args: Any) -> None:
                hook(*args)

            return run

        return {name: wrap(hook) for name, hook in sync.items()}


def _raising(kind: str) -> dict[str, Any]:
    def boom(*args: Any) -> None:
        raise RuntimeError("hook exploded")

    async def aboom(*args: Any) -> None:
        raise RuntimeError("hook exploded")

    hook = boom if kind == "sync" else aboom
    return {"on_task_start": hook, "on_task_complete": hook, "on_task_fail": hook}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_start_and_complete_hooks_see_the_task_and_its_result(
    kew_manager_factory: Any, probe: tasks.Probe, kind: str
) -> None:
    rec = Recorder()
    manager = await kew_manager_factory(
        **(rec.sync_hooks() if kind == "sync" else rec.async_hooks())
    )
    await manager.create_queue(QueueConfig(Q, max_workers=1))
    await manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t", {"v": 1})
    assert_task_completed(await manager.wait_for_task("t", timeout=10), {"v": 1})
    await drain(manager, Q, timeout=10)
    assert rec.calls == [
        ("start", "t", TaskStatus.PROCESSING),
        ("complete", "t", TaskStatus.COMPLETED, {"v": 1}),
    ]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_task_fail_runs_after_every_attempt_with_status_retry_then_failed(
    kew_manager_factory: Any, probe: tasks.Probe, kind: str
) -> None:
    rec = Recorder()
    manager = await kew_manager_factory(
        **(rec.sync_hooks() if kind == "sync" else rec.async_hooks())
    )
    await manager.create_queue(QueueConfig(Q, max_workers=1, max_retries=2, retry_delay=0.01))
    await manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    assert_task_failed(await manager.wait_for_task("t", timeout=10), retry_count=2)
    await drain(manager, Q, timeout=10)
    assert rec.calls == [
        ("start", "t", TaskStatus.PROCESSING),
        ("fail", "t", TaskStatus.RETRY, 1, "t attempt 1"),
        ("start", "t", TaskStatus.PROCESSING),
        ("fail", "t", TaskStatus.RETRY, 2, "t attempt 2"),
        ("start", "t", TaskStatus.PROCESSING),
        ("fail", "t", TaskStatus.FAILED, 2, "t attempt 3"),
    ]


async def test_on_task_fail_receives_the_exception_the_task_raised(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    seen: list[BaseException] = []
    manager = await kew_manager_factory(on_task_fail=lambda info, exc: seen.append(exc))
    await manager.create_queue(QueueConfig(Q, max_workers=1))
    await manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    assert_task_failed(await manager.wait_for_task("t", timeout=10))
    await drain(manager, Q, timeout=10)
    assert len(seen) == 1
    assert type(seen[0]) is RuntimeError
    assert str(seen[0]) == "t attempt 1"


async def test_a_retried_then_successful_task_calls_fail_then_complete(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    rec = Recorder()
    manager = await kew_manager_factory(**rec.async_hooks())
    await manager.create_queue(QueueConfig(Q, max_workers=1, max_retries=1, retry_delay=0.01))
    await manager.submit_task("t", Q, "flaky", tasks.flaky, P, probe.name, "t", 1, "ok")
    assert_task_completed(await manager.wait_for_task("t", timeout=10), "ok")
    await drain(manager, Q, timeout=10)
    assert [c[0] for c in rec.calls] == ["start", "fail", "start", "complete"]
    assert rec.calls[1][2] is TaskStatus.RETRY


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_raising_hooks_are_logged_and_change_nothing(
    kew_manager_factory: Any, probe: tasks.Probe, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    manager = await kew_manager_factory(**_raising(kind))
    await manager.create_queue(QueueConfig(Q, max_workers=2, max_retries=1, retry_delay=0.01))
    await manager.submit_task("ok", Q, "rec", tasks.record, P, probe.name, "ok", [1, 2])
    await manager.submit_task("flaky", Q, "flaky", tasks.flaky, P, probe.name, "flaky", 1, 7)
    await manager.submit_task("bad", Q, "fail", tasks.fail, P, probe.name, "bad")

    ok = await manager.wait_for_task("ok", timeout=10)
    assert_task_completed(ok, [1, 2])
    assert (ok.error, ok.retry_count) == (None, 0)
    flaky = await manager.wait_for_task("flaky", timeout=10)
    assert_task_completed(flaky, 7)
    assert flaky.retry_count == 1
    bad = await manager.wait_for_task("bad", timeout=10)
    assert_task_failed(bad, retry_count=1)
    assert bad.error == "bad attempt 2"
    await drain(manager, Q, timeout=10)
    assert sorted(probe.labels) == ["bad", "bad", "flaky", "flaky", "ok"]

    # the queue still works, and its breaker counted only the task failures
    await manager.submit_task("after", Q, "rec", tasks.record, P, probe.name, "after")
    assert_task_completed(await manager.wait_for_task("after", timeout=10))
    logged = [r for r in caplog.records if r.exc_info and "hook exploded" in str(r.exc_info[1])]
    assert logged, "a hook's exception must be logged"


async def test_hooks_of_one_manager_fire_only_for_tasks_it_runs(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    rec_a, rec_b = Recorder(), Recorder()
    a = await kew_manager_factory(**rec_a.sync_hooks())
    b = await kew_manager_factory(**rec_b.sync_hooks())
    await a.create_queue(QueueConfig(Q, max_workers=2))
    await b.create_queue(QueueConfig("other", max_workers=2))
    await b.submit_task("t", "other", "rec", tasks.record, P, probe.name, "t")  # only b consumes
    assert_task_completed(await a.wait_for_task("t", timeout=10))
    await drain(b, "other", timeout=10)
    assert rec_a.calls == []
    assert [c[0] for c in rec_b.calls] == ["start", "complete"]
