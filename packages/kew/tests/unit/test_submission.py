"""rows_from_dicts: a bad entry of a long batch is named in the error (review finding)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kew.exceptions import InvalidArgumentError, SerializationError
from kew.submission import rows_from_dicts


def noop() -> None:
    return None


GOOD = [{"task_id": f"t{i}", "task_func": noop} for i in range(3)]


@pytest.mark.parametrize(
    ("bad", "error", "text"),
    [
        ({"task_id": "b", "task_func": noop, "priority": 4}, InvalidArgumentError, "priority"),
        ({"task_id": "b", "task_func": None}, InvalidArgumentError, "task_func must be callable"),
        ({"task_id": "", "task_func": noop}, InvalidArgumentError, "task_id"),
        ({"task_id": "b", "task_func": noop, "kwargs": {1: "a"}}, InvalidArgumentError, "kwargs"),
        ({"task_id": "b", "task_func": noop, "_defer_by": -1}, InvalidArgumentError, "defer"),
        (
            {
                "task_id": "b",
                "task_func": noop,
                "args": (threading.Lock(),),
            },
            SerializationError,
            "argument 0",
        ),
    ],
)
def test_the_error_names_the_entry(bad: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=r"^tasks\[3\]: ") as info:
        rows_from_dicts(1.7e9, [*GOOD, bad], 1 << 20)
    assert text in str(info.value)
