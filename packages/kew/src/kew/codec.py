"""Codec: what a manager writes to and reads from task records, under its trust settings.

It combines the encoders of ``serialization.py`` with signing (``signing.py``) and the
"by reference only" mode (``TaskQueueManager(allow_pickled_functions=False)``): only importable
functions can be tasks, arguments and results are JSON values plus the types listed below
(stored as tagged JSON), and nothing read from Redis is ever unpickled.

Types allowed besides JSON values in that mode: ``tuple`` (kept as a tuple), ``bytes``,
``datetime.datetime``, ``datetime.date``, ``datetime.time``, ``decimal.Decimal``, ``uuid.UUID``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

from .exceptions import SerializationError
from .serialization import (
    decode_args,
    decode_function,
    decode_result,
    encode_args,
    encode_function,
    encode_result,
    importable_ref,
)
from .signing import NO_SIGNING, Signer

__all__ = ["DEFAULT_CODEC", "Codec"]

_TYPE = "__kew_type__"
_JSON_TAG = b"J"

_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    bytes: ("bytes", lambda v: base64.b64encode(v).decode()),
    dt.datetime: ("datetime", lambda v: v.isoformat()),
    dt.date: ("date", lambda v: v.isoformat()),
    dt.time: ("time", lambda v: v.isoformat()),
    uuid.UUID: ("uuid", str),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "bytes": base64.b64decode,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": lambda v: _decimal().Decimal(v),
    "uuid": uuid.UUID,
    "tuple": lambda v: tuple(v),
}


def _decimal() -> types.ModuleType:
    # decimal is imported when a Decimal is read, not with kew (it costs ~350 KiB of RSS)
    import decimal

    return decimal


def _decimal_encoder(t: type) -> tuple[str, Callable[[Any], Any]] | None:
    """The encoder of ``decimal.Decimal`` when ``t`` is it (no Decimal exists before the
    decimal module is imported, so its absence from ``sys.modules`` answers without importing)."""
    module = sys.modules.get("decimal")
    return ("decimal", str) if module is not None and t is module.Decimal else None


def _to_json(value: Any, depth: int = 0) -> Any:
    t = type(value)
    if value is None or t in (str, int, bool, float):
        return value
    if depth > 100:
        raise SerializationError("value nested too deeply")
    if t is list:
        return [_to_json(v, depth + 1) for v in value]
    if t is tuple:
        return {_TYPE: "tuple", "v": [_to_json(v, depth + 1) for v in value]}
    if t is dict:
        if not all(type(k) is str for k in value):
            raise SerializationError("dict keys must be str when pickling is not allowed")
        if _TYPE in value:
            raise SerializationError(f"dict key {_TYPE!r} is reserved")
        return {k: _to_json(v, depth + 1) for k, v in value.items()}
    enc = _ENCODERS.get(t) or _decimal_encoder(t)
    if enc is None:
        raise SerializationError(
            f"values of type {t.__name__} cannot be stored when pickling is not allowed "
            "(allow_pickled_functions=False): use JSON values, tuple, bytes, datetime, date, "
            "time, Decimal or UUID"
        )
    return {_TYPE: enc[0], "v": enc[1](value)}


def _from_json(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TYPE)
    if kind is None:
        return obj
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise SerializationError(f"unknown tagged type {kind!r}")
    return decoder(obj["v"])


def _dump_json(value: Any) -> bytes:
    try:
        return (
            _JSON_TAG + json.dumps(_to_json(value), separators=(",", ":"), allow_nan=False).encode()
        )
    except (ValueError, UnicodeEncodeError) as exc:
        raise SerializationError(f"cannot store value as JSON: {exc}") from exc


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data[1:], object_hook=_from_json)
    except (ValueError, KeyError) as exc:
        raise SerializationError(f"cannot load stored JSON: {exc}") from exc


def _ctx(field: str, task_id: str) -> bytes:
    """The signing context of a blob: which field of which task it was written for."""
    return f"{field}:{task_id}".encode()


def reference_allowed(ref: str, func: Any) -> bool:
    """In by-reference-only mode, whether ``module:qualname`` may run as a task: a Python
    function (or async function) of the application, not a builtin (``builtins:exec``, C
    functions such as ``os:system``) nor a standard-library function (``subprocess:run``)."""
    module = ref.partition(":")[0]
    root = module.partition(".")[0]
    if root in sys.stdlib_module_names or root == "builtins":
        return False
    return isinstance(func, types.FunctionType)


class Codec:
    """Encodes and decodes task functions, arguments and results for one manager.

    Args:
        signer: signs what is written and verifies what is read.
        allow_pickle: False for "by reference only": no function by value, no pickled
            arguments or results, and nothing from Redis is unpickled.
    """

    def __init__(self, signer: Signer = NO_SIGNING, allow_pickle: bool = True) -> None:
        self.signer = signer
        self.allow_pickle = allow_pickle

    def _sign(self, data: bytes, field: str, task_id: str) -> bytes:
        """Sign ``data`` for ``field`` of ``task_id``; the context is built only when signing
        is on (submits pay nothing for it otherwise)."""
        return self.signer.sign(data, _ctx(field, task_id)) if self.signer.enabled else data

    def encode_function(self, func: Callable[..., Any], task_id: str = "") -> bytes:
        """Encode (and sign) a task function.

        Raises:
            SerializationError: not importable by reference while pickling is not allowed, or
                not picklable at all.
        """
        if not self.allow_pickle:
            ref = importable_ref(func)
            if ref is None or not reference_allowed(ref, func):
                raise SerializationError(
                    f"task function {func!r} is not an importable application function; "
                    "allow_pickled_functions=False refuses lambdas, closures, __main__ functions, "
                    "builtins and standard-library functions"
                )
        return self._sign(encode_function(func), "func", task_id)

    def encode_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], task_id: str = ""
    ) -> bytes:
        """Encode (and sign) task arguments."""
        if self.allow_pickle:
            data = encode_args(args, kwargs)
        else:
            data = _dump_json([list(args), kwargs]) if args or kwargs else b""
        return self._sign(data, "args", task_id)

    def encode_result(self, value: Any, task_id: str = "") -> bytes:
        """Encode (and sign) a task's return value."""
        data = encode_result(value) if self.allow_pickle else _dump_json(value)
        return self._sign(data, "result", task_id)

    def decode_function(self, data: bytes, task_id: str = "") -> Callable[..., Any]:
        """Verify and load a task function (by-value functions, builtins and standard-library
        functions refused without pickling)."""
        blob = self.signer.verify(data, "function", _ctx("func", task_id))
        if not self.allow_pickle and blob[:1] != b"r":
            raise SerializationError("task function stored by value: refused (no pickling)")
        if not self.allow_pickle:
            ref = blob[1:].decode(errors="replace")
            module = ref.partition(":")[0].partition(".")[0]
            if module in sys.stdlib_module_names or module == "builtins":
                raise SerializationError(f"task function {ref!r} is not an application function")
        func = decode_function(blob)
        if not self.allow_pickle and not reference_allowed(blob[1:].decode(), func):
            raise SerializationError(
                f"task function {blob[1:].decode()!r} is not an application function"
            )
        return func

    def decode_args(self, data: bytes, task_id: str = "") -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Verify and load task arguments."""
        blob = self.signer.verify(data, "arguments", _ctx("args", task_id))
        if blob[:1] == _JSON_TAG:
            args, kwargs = _load_json(blob)
            return tuple(args), dict(kwargs)
        if not self.allow_pickle and blob:
            raise SerializationError("task arguments are pickled: refused (pickling not allowed)")
        return decode_args(blob)

    def decode_result(self, data: bytes | None, task_id: str = "") -> Any:
        """Verify and load a stored result (None when there is none)."""
        if not data:
            return None
        blob = self.signer.verify(data, "result", _ctx("result", task_id))
        if blob[:1] == _JSON_TAG:
            return _load_json(blob)
        if not self.allow_pickle and blob[:1] != b"j":
            raise SerializationError("task result is pickled: refused (pickling not allowed)")
        return decode_result(blob)


DEFAULT_CODEC = Codec()
