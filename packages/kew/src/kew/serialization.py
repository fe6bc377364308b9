"""How functions, arguments and results are stored in Redis (design.md §6).

Every stored blob starts with a one-byte tag:

- functions: ``r`` + ``module:qualname`` when the function can be imported back by that name (so
  every process loads its own code), ``c`` + cloudpickle otherwise (lambdas, closures, locals,
  ``__main__``);
- arguments: empty for no arguments, ``p`` + pickle of ``(args, kwargs)``, ``c`` + cloudpickle
  when plain pickle cannot;
- results: ``j`` + JSON when the value survives a JSON round trip unchanged, ``p`` + pickle
  otherwise.

Whoever can write to the Redis can make a pickle run code in the workers; see SECURITY notes in
the README. Encoding errors raise :class:`~kew.exceptions.SerializationError` naming the type.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import pickle
import types
import weakref
from collections.abc import Callable
from typing import Any

from .exceptions import SerializationError

__all__ = [
    "decode_args",
    "decode_function",
    "decode_result",
    "encode_args",
    "encode_function",
    "encode_result",
    "importable_ref",
    "is_json_exact",
]

_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
_fn_cache: weakref.WeakKeyDictionary[Callable[..., Any], bytes] = weakref.WeakKeyDictionary()
_ref_cache: dict[bytes, Callable[..., Any]] = {}
# Functions pickled by value, by their bytes: a task submitted and run in the same process calls
# the very object that was submitted (so a function in __main__ sees its module's globals), while
# other processes load the cloudpickle copy.
_local_functions: weakref.WeakValueDictionary[bytes, Callable[..., Any]] = (
    weakref.WeakValueDictionary()
)


def importable_ref(func: Callable[..., Any]) -> str | None:
    """``module:qualname`` when importing that name gives back ``func`` itself, else None."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if obj is func else None


def _cloudpickle(value: Any) -> bytes:
    """Pickle ``value`` with cloudpickle, imported on first use: most processes never need it.

    Loading needs no import here: a cloudpickle stream names the cloudpickle functions it
    calls, and ``pickle.loads`` imports them.
    """
    import cloudpickle

    data: bytes = cloudpickle.dumps(value, protocol=_PICKLE_PROTOCOL)
    return data


def encode_function(func: Callable[..., Any]) -> bytes:
    """Encode a task function: by reference when importable, by cloudpickle otherwise.

    Raises:
        SerializationError: the function cannot be pickled either.
    """
    try:
        return _fn_cache[func]
    except (KeyError, TypeError):
        pass
    ref = importable_ref(func)
    if ref is not None:
        data = b"r" + ref.encode()
    else:
        try:
            data = b"c" + _cloudpickle(func)
        except Exception as exc:
            raise SerializationError(
                f"task function {func!r} ({type(func).__name__}) cannot be serialized: {exc}"
            ) from exc
    if isinstance(func, types.FunctionType):
        _fn_cache[func] = data
    if data[:1] == b"c":
        with contextlib.suppress(TypeError):
            _local_functions[data] = func
    return data


def decode_function(data: bytes) -> Callable[..., Any]:
    """Load a task function stored by :func:`encode_function`.

    Raises:
        SerializationError: unknown tag, module or attribute not importable, bad pickle.
    """
    cached = _ref_cache.get(data)
    if cached is not None:
        return cached
    tag, body = data[:1], data[1:]
    try:
        if tag == b"r":
            module, _, qualname = body.decode().partition(":")
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if len(_ref_cache) < 10_000:
                _ref_cache[data] = obj
            return obj  # type: ignore[no-any-return]
        if tag == b"c":
            local = _local_functions.get(data)
            return local if local is not None else pickle.loads(body)
    except Exception as exc:
        raise SerializationError(f"cannot load task function: {exc}") from exc
    raise SerializationError(f"unknown function encoding tag {tag!r}")


def _first_unpicklable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    for name, value in [*((f"argument {i}", a) for i, a in enumerate(args)), *kwargs.items()]:
        try:
            _cloudpickle(value)
        except Exception:
            return f"{name} of type {type(value).__name__}"
    return "the arguments"


def encode_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Encode positional and keyword arguments (empty bytes when there are none).

    Raises:
        SerializationError: an argument cannot be pickled even by cloudpickle; the message names
            the argument and its type.
    """
    if not args and not kwargs:
        return b""
    try:
        return b"p" + pickle.dumps((args, kwargs), protocol=_PICKLE_PROTOCOL)
    except Exception:
        pass
    try:
        data: bytes = _cloudpickle((args, kwargs))
        return b"c" + data
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize {_first_unpicklable(args, kwargs)}: {exc}"
        ) from exc


def decode_args(data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Decode what :func:`encode_args` produced.

    Raises:
        SerializationError: corrupt or unknown data.
    """
    if not data:
        return (), {}
    try:
        value = pickle.loads(data[1:]) if data[:1] in (b"p", b"c") else None
    except Exception as exc:
        raise SerializationError(f"cannot load task arguments: {exc}") from exc
    if not (isinstance(value, tuple) and len(value) == 2):
        raise SerializationError("task arguments are corrupt")
    return value[0], value[1]


def is_json_exact(value: Any, depth: int = 0) -> bool:
    """True when ``json.loads(json.dumps(value)) == value`` with the same types throughout.

    Only dicts with str keys, lists, str, int, finite float, bool and None qualify; tuples, sets,
    NaN and subclasses (e.g. IntEnum) do not, so they are stored as pickles and come back as
    they went in.
    """
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is float:
        return math.isfinite(value)
    if depth > 100:
        return False
    if t is list:
        return all(is_json_exact(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and is_json_exact(v, depth + 1) for k, v in value.items())
    return False


def encode_result(value: Any) -> bytes:
    """Encode a task's return value (JSON when exact, tagged pickle otherwise).

    Raises:
        SerializationError: the value cannot be pickled; the message names its type.
    """
    if is_json_exact(value):
        try:
            return b"j" + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        except (ValueError, UnicodeEncodeError):
            pass  # ints past the str-conversion limit, lone surrogates: pickle keeps them exact
    try:
        return b"p" + pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
    except Exception:
        pass
    try:
        data: bytes = _cloudpickle(value)
        return b"p" + data
    except Exception as exc:
        raise SerializationError(
            f"task result of type {type(value).__name__} cannot be stored: {exc}"
        ) from exc


def decode_result(data: bytes | None) -> Any:
    """Decode a stored result; None when nothing is stored.

    Raises:
        SerializationError: corrupt data or an unknown tag.
    """
    if not data:
        return None
    tag, body = data[:1], data[1:]
    try:
        if tag == b"j":
            return json.loads(body)
        if tag == b"p":
            return pickle.loads(body)
    except Exception as exc:
        raise SerializationError(f"cannot load task result: {exc}") from exc
    raise SerializationError(f"unknown result encoding tag {tag!r}")
