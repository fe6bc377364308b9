"""The exception tree, the code -> exception mapping, and ScriptCode parity with codes.lua."""

from __future__ import annotations

import inspect
import re
from importlib import resources

import kew.exceptions as exc_mod
import pytest
from kew.exceptions import (
    InvalidArgumentError,
    KewConnectionError,
    LeaseLostError,
    QueueNotFoundError,
    QueueProcessorError,
    ScriptCode,
    SerializationError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    TaskQueueError,
    TaskTimeoutError,
    error_for_code,
)


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for name in exc_mod.__all__
        if inspect.isclass(obj := getattr(exc_mod, name)) and issubclass(obj, BaseException)
    ]


def test_every_exception_descends_from_task_queue_error() -> None:
    classes = _exception_classes()
    assert len(classes) == 12
    for cls in classes:
        assert issubclass(cls, TaskQueueError), cls
    assert issubclass(TaskQueueError, Exception)
    assert TaskQueueError.__bases__ == (Exception,)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (TaskNotFoundError, LookupError),
        (QueueNotFoundError, LookupError),
        (InvalidArgumentError, ValueError),
        (SerializationError, ValueError),
        (TaskTimeoutError, TimeoutError),
        (KewConnectionError, ConnectionError),
    ],
)
def test_builtin_parents(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)
    assert issubclass(cls, TaskQueueError)
    with pytest.raises(builtin):
        raise cls("x")


@pytest.mark.parametrize(
    "cls", [TaskAlreadyExistsError, QueueProcessorError, LeaseLostError, TaskQueueError]
)
def test_plain_kew_errors_are_not_builtin_lookups_or_values(cls: type[Exception]) -> None:
    assert not issubclass(cls, LookupError | ValueError | TimeoutError | ConnectionError)


def test_every_class_is_drawn_in_the_module_docstring() -> None:
    doc = exc_mod.__doc__ or ""
    for cls in _exception_classes():
        assert re.search(rf"\b{cls.__name__}\b", doc), cls.__name__


@pytest.mark.parametrize(
    ("code", "cls", "words"),
    [
        (ScriptCode.DUPLICATE, TaskAlreadyExistsError, ["'t-1'", "already exists"]),
        (ScriptCode.QUEUE_FULL, QueueProcessorError, ["'t-1'", "full"]),
        (ScriptCode.LEASE_LOST, LeaseLostError, ["'t-1'"]),
        (ScriptCode.NOT_FOUND, TaskNotFoundError, ["'t-1'", "not found"]),
    ],
)
def test_error_for_code(code: ScriptCode, cls: type[Exception], words: list[str]) -> None:
    err = error_for_code(code, "t-1")
    assert type(err) is cls
    for word in words:
        assert word in str(err)
    # plain ints (what a script returns) map the same way
    assert type(error_for_code(int(code), "t-1")) is cls


def test_ok_is_no_error() -> None:
    assert error_for_code(0, "x") is None
    assert error_for_code(ScriptCode.OK, "x") is None


def test_every_non_ok_code_maps_to_an_error() -> None:
    for code in ScriptCode:
        err = error_for_code(code, "s")
        assert (err is None) == (code is ScriptCode.OK)


@pytest.mark.parametrize("code", [-1, 6, 99])
def test_unknown_code_is_a_value_error(code: int) -> None:
    with pytest.raises(ValueError):
        error_for_code(code, "x")


def _lua_codes() -> dict[str, int]:
    text = resources.files("kew").joinpath("lua", "includes", "codes.lua").read_text("utf-8")
    return {m[0]: int(m[1]) for m in re.findall(r"^\s*local\s+(\w+)\s*=\s*(-?\d+)\s*$", text, re.M)}


def test_codes_lua_is_parsed() -> None:
    codes = _lua_codes()
    assert codes["OK"] == 0
    assert len(codes) >= 5


def test_codes_lua_numbers_equal_script_code() -> None:
    lua = _lua_codes()
    for name, value in lua.items():
        assert name in ScriptCode.__members__, f"codes.lua has {name}, ScriptCode does not"
        assert ScriptCode[name] == value, name


def test_script_code_members_are_all_in_codes_lua() -> None:
    lua = _lua_codes()
    py = {m.name: m.value for m in ScriptCode}
    assert py == lua


def test_script_code_values_are_unique() -> None:
    values = [m.value for m in ScriptCode]
    assert len(values) == len(set(values))
