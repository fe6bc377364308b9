"""Functions by reference or cloudpickle; arguments; results as exact JSON or tagged pickle."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import os.path
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from kew.exceptions import SerializationError, TaskQueueError
from kew.serialization import (
    decode_args,
    decode_function,
    decode_result,
    encode_args,
    encode_function,
    encode_result,
    is_json_exact,
)


def module_level_task(x: int, y: int = 1) -> int:
    return x * 10 + y


async def module_level_async_task(x: int) -> int:
    return x + 1


class Holder:
    @staticmethod
    def static_task(x: int) -> int:
        return x - 1

    def method(self, x: int) -> int:
        return x * 3


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    label: str = "p"


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


class Tag(enum.StrEnum):
    A = "a"


# -- functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "ref"),
    [
        (module_level_task, f"{__name__}:module_level_task"),
        (module_level_async_task, f"{__name__}:module_level_async_task"),
        (Holder.static_task, f"{__name__}:Holder.static_task"),
        (Holder.method, f"{__name__}:Holder.method"),
        (os.path.join, f"{os.path.join.__module__}:join"),
        (json.dumps, "json:dumps"),
    ],
)
def test_importable_function_is_stored_by_reference(func: Any, ref: str) -> None:
    data = encode_function(func)
    assert data == b"r" + ref.encode()
    assert decode_function(data) is func


def test_reference_is_small() -> None:
    assert len(encode_function(module_level_task)) < 100


def _roundtrip_by_value(func: Any) -> Any:
    data = encode_function(func)
    assert data[:1] == b"c"
    return data


def test_lambda_is_cloudpickled() -> None:
    f = lambda a, b=2: a - b  # noqa: E731
    data = _roundtrip_by_value(f)
    assert decode_function(data)(10) == 8


def test_closure_is_cloudpickled_with_its_cell() -> None:
    factor = 7

    def closure(x: int) -> int:
        return x * factor

    data = _roundtrip_by_value(closure)
    assert decode_function(data)(3) == 21


def test_local_function_is_cloudpickled() -> None:
    def local(x: int) -> str:
        return f"local {x}"

    assert decode_function(_roundtrip_by_value(local))(5) == "local 5"


def test_cloudpickled_function_loads_in_another_process_image() -> None:
    """Another process has no live object: the bytes alone must give a working function."""
    import cloudpickle

    offset = 100
    data = encode_function(lambda x: x + offset)
    fn = cloudpickle.loads(data[1:])
    assert fn(1) == 101


def test_bound_method_and_partial_are_not_stored_by_reference() -> None:
    bound = Holder().method
    data = encode_function(bound)
    assert data[:1] == b"c"
    assert decode_function(data)(2) == 6
    part = functools.partial(module_level_task, y=5)
    data = encode_function(part)
    assert data[:1] == b"c"
    assert decode_function(data)(1) == 15


def test_shadowed_name_is_not_stored_by_reference() -> None:
    """A function whose module attribute now points elsewhere must not resolve to the wrong one."""

    def impostor(x: int) -> int:
        return -x

    impostor.__module__ = __name__
    impostor.__qualname__ = "module_level_task"
    data = encode_function(impostor)
    assert data[:1] == b"c"
    assert decode_function(data)(4) == -4


def test_unpicklable_function_raises_serialization_error() -> None:
    lock = threading.Lock()

    def uses_lock() -> None:
        with lock:
            pass

    with pytest.raises(SerializationError):
        encode_function(uses_lock)


@pytest.mark.parametrize(
    "data",
    [
        b"rno_such_module_kew_xyz:f",
        f"r{__name__}:does_not_exist".encode(),
        b"c\x00garbage",
        b"xabc",
    ],
)
def test_decode_function_errors(data: bytes) -> None:
    with pytest.raises(SerializationError):
        decode_function(data)


# -- arguments ------------------------------------------------------------------------------------


def test_no_arguments_is_empty() -> None:
    assert encode_args((), {}) == b""
    assert decode_args(b"") == ((), {})


ARG_CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1, 2.5, "s", None, True), {}),
    ((), {"only": "kwargs"}),
    ((datetime(2030, 1, 2, 3, 4, 5, 6789, tzinfo=UTC), datetime(2030, 1, 1), date(2030, 1, 1)), {}),
    ((timedelta(days=1, microseconds=3),), {"when": datetime(1999, 12, 31, 23, 59)}),
    ((Decimal("1.10"), Decimal("-0"), Fraction(1, 3)), {}),
    ((b"\x00\xffbytes", bytearray(b"ba")), {}),
    ((Point(1, 2.5),), {"p": Point(0, -0.0, "ü")}),
    (("unicode ✓ ünïcödé 🚀 中文", "\x00nul"), {"clé": "välue"}),
    (((1, 2), [3, [4]], {5, 6}, frozenset({7}), {1: "int key"}), {}),
    ((float("nan"), float("inf"), 10**100, Color.GREEN, Tag.A), {}),
    (("",), {"empty": {}, "empty_list": [], "empty_tuple": ()}),
]


@pytest.mark.parametrize(("args", "kwargs"), ARG_CASES)
def test_args_round_trip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    data = encode_args(args, kwargs)
    assert data[:1] == b"p"
    got_args, got_kwargs = decode_args(data)
    assert type(got_args) is tuple
    assert repr(got_args) == repr(args)
    assert repr(got_kwargs) == repr(kwargs)
    for a, b in zip(got_args, args, strict=True):
        assert type(a) is type(b)


def test_args_keep_decimal_precision_and_tz() -> None:
    when = datetime(2030, 1, 1, 12, tzinfo=UTC)
    (d, w), _ = decode_args(
        encode_args((Decimal("0.1000000000000000055511151231257827"), when), {})
    )
    assert str(d) == "0.1000000000000000055511151231257827"
    assert w == when and w.tzinfo is not None


def test_local_class_argument_falls_back_to_cloudpickle() -> None:
    @dataclasses.dataclass
    class LocalPoint:
        x: int

    data = encode_args((LocalPoint(3),), {"f": lambda: 42})
    assert data[:1] == b"c"
    (p,), kwargs = decode_args(data)
    assert p.x == 3
    assert kwargs["f"]() == 42


def test_unpicklable_argument_names_the_type() -> None:
    with socket.socket() as sock:
        cases: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
            ((1, threading.Lock()), {}, "lock"),
            ((), {"gen": (i for i in range(3))}, "generator"),
            ((sock,), {}, "socket"),
        ]
        for args, kwargs, type_name in cases:
            with pytest.raises(SerializationError) as info:
                encode_args(args, kwargs)
            assert isinstance(info.value, ValueError)
            assert isinstance(info.value, TaskQueueError)
            assert f"of type {type_name}" in str(info.value)


def test_unpicklable_argument_names_which_argument() -> None:
    with pytest.raises(SerializationError) as info:
        encode_args((1, 2), {"ok": 3, "bad": threading.Lock()})
    assert "bad" in str(info.value)
    with pytest.raises(SerializationError) as info:
        encode_args((1, threading.Lock()), {})
    assert "argument 1" in str(info.value)


@pytest.mark.parametrize(
    "data", [b"p\x80garbage", b"pnot a pickle", b"zzz", b"p" + b"\x80\x05K\x01."]
)
def test_decode_args_corrupt(data: bytes) -> None:
    with pytest.raises(SerializationError):
        decode_args(data)


# -- results --------------------------------------------------------------------------------------


JSON_EXACT = [
    None,
    True,
    False,
    0,
    -1,
    10**30,
    1.5,
    -0.0,
    1e308,
    "",
    "text ✓ 🚀",
    [],
    {},
    [1, "a", None, [2.5, {"k": [True]}]],
    {"a": {"b": {"c": []}}, "ü": 1},
]


@pytest.mark.parametrize("value", JSON_EXACT)
def test_json_exact_results_are_stored_as_json(value: Any) -> None:
    assert is_json_exact(value)
    data = encode_result(value)
    assert data[:1] == b"j"
    assert json.loads(data[1:]) == value
    back = decode_result(data)
    assert back == value
    assert type(back) is type(value)


def test_json_result_is_compact_utf8() -> None:
    assert encode_result({"a": [1, 2], "é": "✓"}) == b"j" + '{"a":[1,2],"é":"✓"}'.encode()


NOT_JSON_EXACT = [
    (1, 2),
    {1: "int key"},
    {(1, 2): "tuple key"},
    {"a": (1,)},
    [(1,)],
    {1, 2},
    math.nan,
    math.inf,
    -math.inf,
    Color.RED,
    Tag.A,
    Decimal("1.5"),
    b"bytes",
    datetime(2030, 1, 1),
    Point(1, 2.0),
    {"k": {2: "nested int key"}},
    {"t": [1, 2, (3,)]},
]


@pytest.mark.parametrize("value", NOT_JSON_EXACT, ids=repr)
def test_other_results_are_pickled_and_come_back_exact(value: Any) -> None:
    assert not is_json_exact(value)
    data = encode_result(value)
    assert data[:1] == b"p"
    back = decode_result(data)
    assert type(back) is type(value)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value
        assert repr(back) == repr(value)


def test_tuple_stays_tuple_and_int_keys_stay_int() -> None:
    assert decode_result(encode_result((1, (2, 3)))) == (1, (2, 3))
    back = decode_result(encode_result({1: "a", 2: {3: "b"}}))
    assert list(back) == [1, 2]
    assert list(back[2]) == [3]


def test_int_enum_result_keeps_its_type() -> None:
    back = decode_result(encode_result(Color.GREEN))
    assert back is Color.GREEN


def test_deep_nesting_is_stored() -> None:
    value: Any = "leaf"
    for _ in range(150):
        value = [value]
    back = decode_result(encode_result(value))
    assert back == value


def test_large_result_round_trips() -> None:
    value = {"rows": [{"i": i, "s": "x" * 10} for i in range(50_000)]}
    data = encode_result(value)
    assert data[:1] == b"j"
    assert decode_result(data) == value
    blob = bytes(range(256)) * 40_000
    assert decode_result(encode_result(blob)) == blob


def test_huge_int_result_round_trips() -> None:
    # 10**5000 has more digits than int -> str allows by default (sys.get_int_max_str_digits(),
    # 4300): JSON cannot encode it, yet the value must still be stored (e.g. as a pickle).
    value = 10**5000
    assert decode_result(encode_result(value)) == value


def test_lone_surrogate_string_result_round_trips() -> None:
    # e.g. os.fsdecode() of a non-UTF-8 file name: a valid str that UTF-8 cannot encode
    value = "name-\udcff"
    assert decode_result(encode_result(value)) == value


def test_unpicklable_result_names_the_type() -> None:
    with pytest.raises(SerializationError) as info:
        encode_result(threading.Lock())
    assert "lock" in str(info.value)
    with pytest.raises(SerializationError) as info:
        encode_result({"gen": (i for i in range(2))})
    assert "dict" in str(info.value)


def test_lambda_result_uses_cloudpickle() -> None:
    data = encode_result(lambda: 5)
    assert data[:1] == b"p"
    assert decode_result(data)() == 5


def test_no_result() -> None:
    assert decode_result(None) is None
    assert decode_result(b"") is None


@pytest.mark.parametrize("data", [b"j{not json", b"p\x80\x05garbage", b"?abc"])
def test_decode_result_corrupt(data: bytes) -> None:
    with pytest.raises(SerializationError):
        decode_result(data)


def test_is_json_exact_rejects_subclasses() -> None:
    class MyStr(str):
        pass

    class MyDict(dict):  # type: ignore[type-arg]
        pass

    assert not is_json_exact(MyStr("x"))
    assert not is_json_exact(MyDict(a=1))
    assert not is_json_exact(Color.RED)
    assert is_json_exact(True)
