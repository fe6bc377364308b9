"""Hostile and odd input, property-based (issue 8): whatever comes in, kew either stores it
exactly and gives it back, or raises a kew exception at the call and writes nothing.

Each example runs on its own embedded Redis (``memory://``) in its own event loop, so
hypothesis can run many quickly and shrink failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kew import (
    InvalidArgumentError,
    QueueConfig,
    QueuePriority,
    SerializationError,
    TaskQueueError,
    TaskQueueManager,
    TaskStatus,
)

P = QueuePriority.MEDIUM
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


async def echo(*args: Any, **kwargs: Any) -> Any:
    return (args, kwargs)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _manager(**kw: Any) -> TaskQueueManager:
    m = TaskQueueManager(f"memory://hyp-{uuid.uuid4().hex}", namespace="hyp", **kw)
    await m.create_queue(QueueConfig("q", max_workers=2))
    return m


@SETTINGS
@given(task_id=st.text(min_size=0, max_size=300))
def test_any_task_id_is_stored_exactly_or_refused_at_the_call(task_id: str) -> None:
    async def body() -> None:
        m = await _manager()
        try:
            try:
                await m.submit_task(task_id, "q", "echo", echo, P, 1)
            except InvalidArgumentError:
                assert (await m.get_queue_status("q"))["queued_tasks"] == 0  # nothing written
                return
            info = await m.wait_for_task(task_id, timeout=10)
            assert info.task_id == task_id
            assert info.status is TaskStatus.COMPLETED and info.result == ((1,), {})
        finally:
            await m.shutdown()

    _run(body())


_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50)
)
_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(
    args=st.lists(_values, max_size=3),
    kwargs=st.dictionaries(st.from_regex(r"\A[a-z]{1,8}\Z"), _values, max_size=3),
)
def test_any_argument_structure_round_trips_exactly(
    args: list[Any], kwargs: dict[str, Any]
) -> None:
    async def body() -> None:
        m = await _manager()
        try:
            await m.submit_task("t", "q", "echo", echo, P, *args, **kwargs)
            info = await m.wait_for_task("t", timeout=10)
            assert info.status is TaskStatus.COMPLETED, info.error
            assert info.result == (tuple(args), kwargs)
        finally:
            await m.shutdown()

    _run(body())


@SETTINGS
@given(
    max_workers=st.one_of(st.integers(-5, 5), st.floats(), st.text(max_size=3), st.none()),
    max_size=st.one_of(st.integers(-5, 5), st.floats(), st.none()),
    retry_delay=st.one_of(st.floats(), st.integers(-5, 5), st.text(max_size=3)),
    priority=st.one_of(
        st.integers(-2, 5), st.sampled_from(list(QueuePriority)), st.text(max_size=3)
    ),
)
def test_config_values_are_accepted_or_refused_with_a_kew_error(
    max_workers: Any, max_size: Any, retry_delay: Any, priority: Any
) -> None:
    # a kew error (InvalidArgumentError, also a ValueError) is fine; anything else escapes
    with contextlib.suppress(InvalidArgumentError):
        QueueConfig(
            "q",
            max_workers=max_workers,
            max_size=max_size,
            retry_delay=retry_delay,
            priority=priority,
        )


def test_payloads_over_max_payload_bytes_are_refused_at_the_call_and_write_nothing() -> None:
    async def body() -> None:
        m = await _manager(max_payload_bytes=10_000)
        try:
            try:
                await m.submit_task("big", "q", "echo", echo, P, b"x" * 20_000)
            except SerializationError as exc:
                assert "max_payload_bytes" in str(exc)
            else:
                raise AssertionError("a 20 kB payload passed a 10 kB limit")
            try:
                await m.get_task_status("big")
            except TaskQueueError:
                pass
            else:
                raise AssertionError("the refused task was written")
            await m.submit_task("small", "q", "echo", echo, P, b"x" * 1_000)
            assert (await m.wait_for_task("small", timeout=10)).status is TaskStatus.COMPLETED
        finally:
            await m.shutdown()

    _run(body())
