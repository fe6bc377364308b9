"""Round trips (design.md §4, §6): arguments reach the task and results come back as they went in:
JSON values exactly (same types, not just equal), and also datetimes, Decimal, bytes, dataclasses,
tuples (still tuples), sets, non-str dict keys; 10 MB payloads; unicode and emoji in ids, names and
arguments. A result that cannot be stored fails the task with an error naming its type; an
argument that cannot be serialized raises SerializationError at submit and writes nothing.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import tasks
from kew import (
    QueueConfig,
    QueuePriority,
    SerializationError,
    TaskNotFoundError,
    TaskQueueError,
)
from kew_testkit import assert_task_completed, assert_task_failed

Q = "values"
P = QueuePriority.MEDIUM


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, a tuple is not a list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            _same(k1, k2) and _same(a[k1], b[k1]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    return bool(a == b)


JSON_VALUES = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -17,
    "big-int": 2**100,
    "float": 1.5,
    "whole-float": 1.0,
    "tiny-float": 5e-324,
    "empty-str": "",
    "unicode-str": "ünïcødé ✓ 日本語 🎉👩‍👩‍👧",
    "empty-list": [],
    "empty-dict": {},
    "nested": {"a": [1, "b", None, [2.5, {"c": [True, False]}]], "é 🚀": {"d": {}}},
}

OTHER_VALUES = {
    "tuple": (1, "two", (3.0, None)),
    "list-of-tuples": [(1, 2), (3, 4)],
    "dict-of-tuple": {"t": (1, 2)},
    "int-keys": {1: "one", 2: "two"},
    "tuple-keys": {(1, 2): "pair"},
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "naive-datetime": datetime(2024, 2, 29, 23, 59, 59, 999_999),
    "utc-datetime": datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
    "offset-datetime": datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "date": date(1999, 12, 31),
    "time": time(8, 30, 15, 250),
    "timedelta": timedelta(days=2, microseconds=1),
    "decimal": Decimal("1.10"),
    "decimal-exp": Decimal("-1.2345E+30"),
    "bytes": bytes(range(256)),
    "empty-bytes": b"",
    "bytearray": bytearray(b"\x00\xffabc"),
    "dataclass": tasks.Point(1, 2.5, ("x", "y")),
    "nested-dataclass": tasks.Order("o-1", Decimal("9.99"), [tasks.Point(0, 0.0)]),
    "int-enum": Color.GREEN,
    "inf": float("inf"),
    "complex": complex(1, -2),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}

ALL_VALUES = {**JSON_VALUES, **OTHER_VALUES}


async def _run(manager: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    await manager.submit_task(task_id, Q, "rt", func, P, *args, **kwargs)
    info = await manager.wait_for_task(task_id, timeout=20)
    assert_task_completed(info)
    return info.result


@pytest.mark.parametrize("value", list(ALL_VALUES.values()), ids=list(ALL_VALUES))
async def test_a_result_comes_back_exactly(kew_manager: Any, value: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task("t", Q, "rt", tasks.identity, P, value)
    waited = await kew_manager.wait_for_task("t", timeout=20)
    assert_task_completed(waited)
    assert _same(waited.result, value), (waited.result, value)
    read = await kew_manager.get_task_status("t")  # the stored record, read again
    assert _same(read.result, value), (read.result, value)


@pytest.mark.parametrize("value", list(ALL_VALUES.values()), ids=list(ALL_VALUES))
async def test_arguments_reach_the_task_exactly(kew_manager: Any, value: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    result = await _run(kew_manager, tasks.echo, value, 7, key=value)
    assert _same(result, ((value, 7), {"key": value})), result


async def test_a_10_mb_argument_and_a_10_mb_result_round_trip(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    blob = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    assert await _run(kew_manager, tasks.digest, blob) == (
        len(blob),
        hashlib.sha256(blob).hexdigest(),
    )
    text = await _run(kew_manager, tasks.big_text, 10 * 1024 * 1024)
    assert type(text) is str and len(text) == 10 * 1024 * 1024 and set(text) == {"x"}


async def test_unicode_and_emoji_in_ids_names_and_arguments_round_trip(
    kew_manager: Any,
) -> None:
    queue = "очередь-🎯-キュー"
    task_id = "задача ✓ 🚀 日本語 a:b *?[x] \\ end"
    task_type = "тип-🎉"
    await kew_manager.create_queue(QueueConfig(queue, max_workers=1))
    submitted = await kew_manager.submit_task(
        task_id, queue, task_type, tasks.echo, P, "héllo wörld 🎉", ключ="值 🐍"
    )
    assert (submitted.task_id, submitted.queue_name, submitted.task_type) == (
        task_id,
        queue,
        task_type,
    )
    info = await kew_manager.wait_for_task(task_id, timeout=10)
    assert_task_completed(info)
    assert (info.task_id, info.queue_name, info.task_type) == (task_id, queue, task_type)
    assert _same(info.result, (("héllo wörld 🎉",), {"ключ": "值 🐍"}))
    assert (await kew_manager.get_queue_status(queue))["name"] == queue


async def test_a_task_returning_nothing_completes_with_result_none(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    assert await _run(kew_manager, tasks.noop) is None


async def test_functions_that_cannot_be_imported_by_name_still_run(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    factor = 3

    async def closure(x: int) -> int:
        return x * factor

    assert await _run(kew_manager, closure, 2) == 6
    assert await _run(kew_manager, lambda x: x + 1, 41) == 42
    assert await _run(kew_manager, functools.partial(tasks.add, 10), 5) == 15


@pytest.mark.parametrize(
    ("func", "type_name"),
    [(tasks.make_unpicklable, "Unpicklable"), (tasks.make_lock, "lock")],
    ids=["unpicklable-class", "thread-lock"],
)
async def test_a_result_that_cannot_be_stored_fails_the_task_naming_its_type(
    kew_manager: Any, func: Any, type_name: str
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task("t", Q, "bad-result", func, P)
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_failed(info, type_name)
    assert info.result is None


@pytest.mark.parametrize(
    ("args", "kwargs", "type_name"),
    [
        ((threading.Lock(),), {}, "lock"),
        ((), {"handle": tasks.Unpicklable()}, "Unpicklable"),
        ((1, (x for x in range(3))), {}, "generator"),
    ],
    ids=["lock-arg", "unpicklable-kwarg", "generator-arg"],
)
async def test_an_argument_that_cannot_be_serialized_raises_at_submit_and_writes_nothing(
    kew_manager: Any, args: tuple[Any, ...], kwargs: dict[str, Any], type_name: str
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(SerializationError) as caught:
        await kew_manager.submit_task("t", Q, "bad-arg", tasks.echo, P, *args, **kwargs)
    assert isinstance(caught.value, TaskQueueError)
    assert isinstance(caught.value, ValueError)
    assert type_name in str(caught.value)
    with pytest.raises(TaskNotFoundError):
        await kew_manager.get_task_status("t")
    assert await kew_manager.get_queue_status(Q) == before


async def test_a_batch_with_one_unserializable_argument_writes_nothing(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    before = await kew_manager.get_queue_status(Q)
    batch = [{"task_id": f"b{i}", "task_func": tasks.identity, "args": (i,)} for i in range(5)]
    batch[3]["args"] = (threading.Lock(),)
    with pytest.raises(SerializationError):
        await kew_manager.submit_tasks(Q, batch)
    for i in range(5):
        with pytest.raises(TaskNotFoundError):
            await kew_manager.get_task_status(f"b{i}")
    assert await kew_manager.get_queue_status(Q) == before
