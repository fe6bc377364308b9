"""kew.context: current_task() outside and inside a run, and report_progress's input checks."""

from __future__ import annotations

import asyncio
import contextvars
import math

import kew
import pytest
from kew.context import TaskContext, current_task, set_current
from kew.exceptions import InvalidArgumentError, TaskQueueError


class _Recorder:
    """A stand-in for the store's progress call: records its arguments, answers ``code``."""

    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, value: float, message: str) -> int:
        self.calls.append((value, message))
        return self.code


def _ctx(code: int = 0) -> tuple[TaskContext, _Recorder]:
    """A context bound to the running event loop (call from a coroutine)."""
    rec = _Recorder(code)
    return TaskContext("t1", "orders", 2, rec, asyncio.get_running_loop()), rec


def test_exported_from_kew() -> None:
    assert kew.current_task is current_task
    assert kew.TaskContext is TaskContext
    assert {"current_task", "TaskContext"} <= set(kew.__all__)


def test_current_task_outside_a_task_raises() -> None:
    with pytest.raises(TaskQueueError, match="only available inside a task"):
        current_task()


async def test_current_task_outside_a_task_raises_in_a_coroutine() -> None:
    with pytest.raises(TaskQueueError):
        current_task()


async def test_current_task_returns_the_bound_context() -> None:
    ctx, _ = _ctx()

    def inside() -> TaskContext:
        set_current(ctx)
        return current_task()

    assert contextvars.copy_context().run(inside) is ctx
    # binding happened in a copy of the context: this one still has no task
    with pytest.raises(TaskQueueError):
        current_task()


async def test_each_asyncio_task_sees_its_own_context() -> None:
    a, _ = _ctx()
    b = TaskContext("t2", "mail", 1, _Recorder(), asyncio.get_running_loop())

    async def run(ctx: TaskContext) -> str:
        set_current(ctx)
        await asyncio.sleep(0)
        return current_task().task_id

    assert list(await asyncio.gather(run(a), run(b))) == ["t1", "t2"]
    with pytest.raises(TaskQueueError):
        current_task()


async def test_context_fields_and_frozen() -> None:
    ctx, _ = _ctx()
    assert (ctx.task_id, ctx.queue_name, ctx.attempt) == ("t1", "orders", 2)
    with pytest.raises(AttributeError):
        ctx.attempt = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "message", "stored"),
    [
        (0.5, "half", (0.5, "half")),
        (0, "", (0.0, "")),
        (7, "rows", (7.0, "rows")),  # an int is stored as a float
        (-2.5, "back", (-2.5, "back")),
        (1e300, "big", (1e300, "big")),
    ],
)
async def test_report_progress_passes_a_float_and_the_message(
    value: float, message: str, stored: tuple[float, str]
) -> None:
    ctx, rec = _ctx()
    assert await ctx.report_progress(value, message) is True
    assert rec.calls == [stored]
    assert type(rec.calls[0][0]) is float


async def test_report_progress_message_defaults_to_empty() -> None:
    ctx, rec = _ctx()
    assert await ctx.report_progress(0.1) is True
    assert rec.calls == [(0.1, "")]


async def test_report_progress_is_false_when_the_lease_is_lost() -> None:
    ctx, rec = _ctx(code=3)  # LEASE_LOST
    assert await ctx.report_progress(0.9, "late") is False
    assert rec.calls == [(0.9, "late")]


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, True, False, None, "0.5", b"1", [0.5], 1j]
)
async def test_report_progress_rejects_bad_values(value: object) -> None:
    ctx, rec = _ctx()
    with pytest.raises(InvalidArgumentError) as info:
        await ctx.report_progress(value)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert rec.calls == []  # nothing was written


@pytest.mark.parametrize("message", [None, 1, b"bytes", ["m"]])
async def test_report_progress_rejects_bad_messages(message: object) -> None:
    ctx, rec = _ctx()
    with pytest.raises(InvalidArgumentError):
        await ctx.report_progress(0.5, message)  # type: ignore[arg-type]
    assert rec.calls == []


# -- report_progress_sync (sync task functions run in a worker thread) -------------------------


async def test_report_progress_sync_from_a_thread() -> None:
    ctx, rec = _ctx()
    assert await asyncio.to_thread(ctx.report_progress_sync, 3, "from a thread") is True
    assert rec.calls == [(3.0, "from a thread")]
    lost, lost_rec = _ctx(code=3)
    assert await asyncio.to_thread(lost.report_progress_sync, 0.5) is False
    assert lost_rec.calls == [(0.5, "")]


async def test_report_progress_sync_sees_the_context_in_a_copied_thread_context() -> None:
    ctx, rec = _ctx()

    def sync_task() -> bool:
        return current_task().report_progress_sync(0.75, "sync")

    async def run() -> bool:
        set_current(ctx)  # in this asyncio task's own context; to_thread copies it
        return await asyncio.to_thread(sync_task)

    assert await asyncio.create_task(run()) is True
    assert rec.calls == [(0.75, "sync")]
    with pytest.raises(TaskQueueError):  # bound only inside that task
        current_task()


async def test_report_progress_sync_checks_its_input_in_the_thread() -> None:
    ctx, rec = _ctx()
    with pytest.raises(InvalidArgumentError):
        await asyncio.to_thread(ctx.report_progress_sync, math.nan)
    with pytest.raises(InvalidArgumentError):
        await asyncio.to_thread(ctx.report_progress_sync, 0.5, None)  # type: ignore[arg-type]
    assert rec.calls == []


async def test_report_progress_sync_on_the_event_loop_raises() -> None:
    ctx, rec = _ctx()
    with pytest.raises(TaskQueueError, match="await report_progress"):
        ctx.report_progress_sync(0.5)
    assert rec.calls == []
