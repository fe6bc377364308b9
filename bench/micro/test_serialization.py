"""Payload encoding and decoding: what every submit and every run pays in Python."""

from __future__ import annotations

from typing import Any

import pytest
from kew.serialization import (
    decode_args,
    decode_function,
    decode_result,
    encode_args,
    encode_function,
    encode_result,
)
from kew.submission import build_row


async def noop_task(key: str) -> None:
    return None


ARGS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("one-str", ("task-123",), {}),
    ("mixed", (1, "two", 3.0, [4, 5]), {"user": "alice", "n": 10}),
    ("1KiB", ("x" * 1024,), {}),
]
RESULTS: list[tuple[str, Any]] = [
    ("none", None),
    ("json-dict", {"ok": True, "items": [1, 2, 3], "name": "report"}),
    ("pickled-tuple", (1, 2, b"bytes")),
]


def test_encode_function_by_reference(benchmark: Any) -> None:
    data = benchmark(encode_function, noop_task)
    assert data.startswith(b"r")


def test_decode_function_by_reference(benchmark: Any) -> None:
    data = encode_function(noop_task)
    assert benchmark(decode_function, data) is noop_task


@pytest.mark.parametrize(
    ("args", "kwargs"), [(a, k) for _, a, k in ARGS], ids=[n for n, _, _ in ARGS]
)
def test_encode_args(benchmark: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert benchmark(encode_args, args, kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"), [(a, k) for _, a, k in ARGS], ids=[n for n, _, _ in ARGS]
)
def test_decode_args(benchmark: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    data = encode_args(args, kwargs)
    assert benchmark(decode_args, data) == (args, kwargs)


@pytest.mark.parametrize("value", [v for _, v in RESULTS], ids=[n for n, _ in RESULTS])
def test_encode_result(benchmark: Any, value: Any) -> None:
    assert benchmark(encode_result, value)


@pytest.mark.parametrize("value", [v for _, v in RESULTS], ids=[n for n, _ in RESULTS])
def test_decode_result(benchmark: Any, value: Any) -> None:
    data = encode_result(value)
    assert benchmark(decode_result, data) == value


def test_build_row(benchmark: Any) -> None:
    """Validation + serialization of one submit_task call, before any I/O."""
    row = benchmark(build_row, 1_700_000_000.0, "task-1", "noop", noop_task, 2, ("task-1",), {})
    assert row.task_id == "task-1"
