"""Bad input (design.md §4): a wrong call gets a clear exception at the call, never a stuck or
half-written task. Every case below must raise a documented exception, a subclass of
``kew.TaskQueueError`` (and of ``ValueError`` for a bad value, ``LookupError`` for an unknown
queue or task), and leave Redis unchanged: the queue's status is the same before and after, and
no record exists for the task ids the call named.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
import tasks
from kew import (
    QueueConfig,
    QueueNotFoundError,
    QueuePriority,
    SerializationError,
    TaskNotFoundError,
    TaskQueueError,
    TaskQueueManager,
)

Q = "strict"
P = QueuePriority.MEDIUM
SOON = datetime.now(UTC) + timedelta(hours=1)


@dataclass(frozen=True)
class Case:
    """One wrong call: ``call(manager)`` must raise ``expected`` (also a ``builtin``)."""

    name: str
    call: Callable[[Any], Any]
    builtin: type[BaseException] | tuple[type[BaseException], ...] = ValueError
    expected: type[BaseException] = TaskQueueError
    task_ids: tuple[str, ...] = ("bad",)
    extra: dict[str, Any] = field(default_factory=dict)


def submit(
    *args: Any,
    task_id: Any = "bad",
    queue: Any = Q,
    func: Any = tasks.noop,
    priority: Any = P,
    **kwargs: Any,
) -> Callable[[Any], Any]:
    return lambda m: m.submit_task(task_id, queue, "t", func, priority, *args, **kwargs)


def submit_typed(task_type: Any) -> Callable[[Any], Any]:
    return lambda m: m.submit_task("bad", Q, task_type, tasks.noop, P)


def batch(tasks_: Any, queue: str = Q) -> Callable[[Any], Any]:
    return lambda m: m.submit_tasks(queue, tasks_)


def entry(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"task_id": "bad", "task_func": tasks.noop, "priority": P}
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not _DROP}


_DROP = object()


def config(**kwargs: Any) -> Callable[[Any], Any]:
    values: dict[str, Any] = {"name": "new-queue", "max_workers": 1}
    values.update(kwargs)
    return lambda m: m.create_queue(QueueConfig(**values))


def manager_kwargs(**kwargs: Any) -> Callable[[Any], Any]:
    return lambda m: TaskQueueManager(**{"redis_url": m.redis_url, **kwargs})


LOOKUP = {"builtin": LookupError}
GOOD = [entry(task_id="ok1"), entry(task_id="ok2")]

CASES = [
    # -- submit_task: queue, id, function, priority, type
    Case(
        "submit-unknown-queue", submit(queue="no-such-queue"), expected=QueueNotFoundError, **LOOKUP
    ),
    Case("submit-queue-name-none", submit(queue=None), builtin=(LookupError, ValueError)),
    Case("submit-empty-task-id", submit(task_id=""), task_ids=()),
    Case("submit-task-id-none", submit(task_id=None), task_ids=()),
    Case("submit-task-id-int", submit(task_id=123), task_ids=("123",)),
    Case("submit-task-func-none", submit(func=None)),
    Case("submit-task-func-str", submit(func="tasks.noop")),
    Case("submit-task-func-int", submit(func=42)),
    Case("submit-priority-str", submit(priority="high")),
    Case("submit-priority-zero", submit(priority=0)),
    Case("submit-priority-four", submit(priority=4)),
    Case("submit-priority-none", submit(priority=None)),
    Case("submit-priority-bool", submit(priority=True)),
    Case("submit-priority-float", submit(priority=1.5)),
    Case("submit-task-type-int", submit_typed(7)),
    Case("submit-task-type-none", submit_typed(None)),
    # -- submit_task: deferral
    Case("submit-both-defer-args", submit(_defer_by=5, _defer_until=SOON)),
    Case("submit-negative-defer-by", submit(_defer_by=-1)),
    Case("submit-negative-timedelta", submit(_defer_by=timedelta(seconds=-0.5))),
    Case("submit-nan-defer-by", submit(_defer_by=float("nan"))),
    Case("submit-infinite-defer-by", submit(_defer_by=float("inf"))),
    Case("submit-defer-by-str", submit(_defer_by="10")),
    Case("submit-defer-until-str", submit(_defer_until="2030-01-01T00:00:00")),
    Case("submit-defer-until-number", submit(_defer_until=1_900_000_000)),
    # -- submit_task: arguments that cannot be stored
    Case("submit-unpicklable-arg", submit(threading.Lock()), expected=SerializationError),
    Case("submit-unpicklable-kwarg", submit(h=tasks.Unpicklable()), expected=SerializationError),
    # -- submit_tasks
    Case(
        "batch-unknown-queue",
        batch([entry()], queue="no-such-queue"),
        expected=QueueNotFoundError,
        **LOOKUP,
    ),
    Case("batch-not-a-list", batch(entry())),
    Case("batch-a-string", batch("bad")),
    Case("batch-none", batch(None)),
    Case("batch-entry-not-a-dict", batch([("bad", tasks.noop)])),
    Case("batch-entry-without-task-func", batch([entry(task_func=_DROP)])),
    Case("batch-entry-without-task-id", batch([entry(task_id=_DROP)]), task_ids=()),
    Case("batch-entry-unknown-key", batch([entry(taskid="typo")])),
    Case("batch-entry-unknown-keys-of-mixed-types", batch([{**entry(), 1: "x", "y": 2}])),
    Case("batch-entry-a-mapping-not-a-dict", batch([MappingProxyType(entry(args="abc"))])),
    Case("batch-entry-args-a-string", batch([entry(args="abc")])),
    Case("batch-entry-kwargs-a-list", batch([entry(kwargs=[1, 2])])),
    Case("batch-entry-kwargs-non-str-key", batch([entry(kwargs={1: "a"})])),
    Case("batch-entry-bad-priority", batch([entry(priority="urgent")])),
    Case("batch-entry-both-defer-args", batch([entry(_defer_by=1, _defer_until=SOON)])),
    Case("batch-entry-negative-defer", batch([entry(_defer_by=-3)])),
    Case("batch-entry-non-callable", batch([entry(task_func=object())])),
    Case(
        "batch-good-entries-then-a-bad-one",
        batch([*GOOD, entry(priority=9)]),
        task_ids=("ok1", "ok2", "bad"),
    ),
    Case(
        "batch-unpicklable-arg-after-good-ones",
        batch([*GOOD, entry(args=(threading.Lock(),))]),
        expected=SerializationError,
        task_ids=("ok1", "ok2", "bad"),
    ),
    # -- QueueConfig / create_queue
    Case("queue-max-workers-zero", config(max_workers=0)),
    Case("queue-max-workers-negative", config(max_workers=-1)),
    Case("queue-max-workers-float", config(max_workers=1.5)),
    Case("queue-max-workers-str", config(max_workers="4")),
    Case("queue-max-workers-bool", config(max_workers=True)),
    Case("queue-max-size-zero", config(max_size=0)),
    Case("queue-max-size-negative", config(max_size=-5)),
    Case("queue-empty-name", config(name="")),
    Case("queue-name-none", config(name=None)),
    Case("queue-name-with-braces", config(name="a{b}")),
    Case("queue-task-timeout-zero", config(task_timeout=0)),
    Case("queue-task-timeout-negative", config(task_timeout=-1)),
    Case("queue-retry-delay-negative", config(retry_delay=-0.5)),
    Case("queue-max-retries-negative", config(max_retries=-1)),
    Case("queue-breaker-failures-zero", config(max_circuit_breaker_failures=0)),
    Case("queue-breaker-reset-zero", config(circuit_breaker_reset_timeout=0)),
    Case("queue-priority-str", config(priority="HIGH")),
    Case("create-queue-with-a-dict", lambda m: m.create_queue({"name": "d", "max_workers": 1})),
    Case("create-queue-twice", lambda m: m.create_queue(QueueConfig(Q, max_workers=1))),
    # -- reads
    Case("status-empty-task-id", lambda m: m.get_task_status(""), task_ids=()),
    Case(
        "status-unknown-task",
        lambda m: m.get_task_status("nope"),
        expected=TaskNotFoundError,
        task_ids=("nope",),
        **LOOKUP,
    ),
    Case(
        "wait-unknown-task",
        lambda m: m.wait_for_task("nope", timeout=1),
        expected=TaskNotFoundError,
        task_ids=("nope",),
        **LOOKUP,
    ),
    Case(
        "queue-status-unknown-queue",
        lambda m: m.get_queue_status("nope"),
        expected=QueueNotFoundError,
        task_ids=(),
        **LOOKUP,
    ),
    # -- TaskQueueManager settings
    Case("manager-hook-not-callable", manager_kwargs(on_task_start=42), task_ids=()),
    Case("manager-fail-hook-not-callable", manager_kwargs(on_task_fail="log"), task_ids=()),
    Case("manager-url-not-a-str", lambda m: TaskQueueManager(redis_url=6379), task_ids=()),
    Case(
        "manager-url-bad-scheme",
        lambda m: TaskQueueManager(redis_url="http://localhost:6379").initialize(),
        task_ids=(),
    ),
    Case("manager-lease-timeout-zero", manager_kwargs(lease_timeout=0), task_ids=()),
    Case("manager-retention-negative", manager_kwargs(retention=-1), task_ids=()),
    Case("manager-submit-chunk-zero", manager_kwargs(submit_chunk=0), task_ids=()),
    Case("manager-empty-namespace", manager_kwargs(namespace=""), task_ids=()),
]


def test_the_table_has_at_least_30_distinct_wrong_calls() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_wrong_call_raises_a_documented_error_and_changes_nothing(
    kew_manager: Any, probe: tasks.Probe, case: Case
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    # something in the queue, so that "unchanged" compares more than zeros
    await kew_manager.submit_task(
        "existing", Q, "rec", tasks.record, P, probe.name, "x", _defer_by=3600
    )
    before = await kew_manager.get_queue_status(Q)
    queues_before = set(kew_manager.queues)

    with pytest.raises(case.expected) as caught:
        outcome = case.call(kew_manager)
        if inspect.isawaitable(outcome):
            await outcome

    error = caught.value
    assert isinstance(error, TaskQueueError), f"{type(error).__mro__} is not a TaskQueueError"
    assert isinstance(error, case.builtin), f"{type(error).__name__} is not a {case.builtin}"
    assert str(error), "the error must say what is wrong"
    assert await kew_manager.get_queue_status(Q) == before
    assert set(kew_manager.queues) == queues_before
    for task_id in case.task_ids:
        with pytest.raises(TaskNotFoundError):
            await kew_manager.get_task_status(task_id)
    assert (await kew_manager.get_task_status("existing")).task_type == "rec"
    assert probe.runs == []
