"""Turning submit calls into rows for the ``submit`` script, and coalescing concurrent submits.

Validation happens here, before anything touches Redis, so bad input raises at the call and
nothing is half-written (design.md §4). Submits of one queue made in the same event-loop tick
(e.g. ``asyncio.gather`` of many ``submit_task`` calls) share one script call, each with its own
outcome.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .background import spawn
from .codec import DEFAULT_CODEC, Codec
from .exceptions import (
    InvalidArgumentError,
    QueueProcessorError,
    ScriptCode,
    SerializationError,
    TaskAlreadyExistsError,
    TaskQueueError,
    error_for_code,
)
from .keys import QueueKeys
from .models import QueuePriority, coerce_priority
from .scheduling import due_time, to_ms
from .settings import STAGING_TTL
from .store import ID_CLAIM_MS, RedisStore

__all__ = [
    "BATCH_KEYS",
    "SubmitCoalescer",
    "TaskRow",
    "build_row",
    "check_size",
    "rows_from_dicts",
    "submit_batch",
]

BATCH_KEYS = frozenset(
    {"task_id", "task_type", "task_func", "priority", "args", "kwargs", "_defer_by", "_defer_until"}
)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A validated, serialized task, ready for the submit script."""

    task_id: str
    task_type: str
    priority: QueuePriority
    due: float | None
    func: bytes
    args: bytes

    def script_args(self) -> tuple[str, str, int, int, bytes, bytes]:
        """The 6 ARGV values of this task in ``submit.lua``."""
        due_ms = to_ms(self.due) if self.due is not None else 0
        return (self.task_id, self.task_type, self.priority.value, due_ms, self.func, self.args)


def build_row(
    now: float,
    task_id: object,
    task_type: object,
    task_func: object,
    priority: object,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    defer_by: object = None,
    defer_until: object = None,
    codec: Codec = DEFAULT_CODEC,
) -> TaskRow:
    """Validate and serialize one task.

    Raises:
        InvalidArgumentError: empty or non-str task_id, non-str task_type, non-callable
            task_func, bad priority, bad or conflicting defer arguments.
        SerializationError: an argument cannot be serialized (names the argument and type).
    """
    if not isinstance(task_id, str) or not task_id:
        raise InvalidArgumentError(f"task_id must be a non-empty str, got {task_id!r}")
    if not isinstance(task_type, str):
        raise InvalidArgumentError(f"task_type must be a str, got {type(task_type).__name__}")
    if not (task_id.isascii() and task_type.isascii()):  # ASCII is valid UTF-8: the fast path
        for name, text in (("task_id", task_id), ("task_type", task_type)):
            try:
                text.encode()
            except UnicodeEncodeError as exc:
                raise InvalidArgumentError(f"{name} is not valid text (UTF-8): {text!r}") from exc
    if not callable(task_func):
        raise InvalidArgumentError(f"task_func must be callable, got {type(task_func).__name__}")
    bad = [k for k in kwargs if type(k) is not str]  # a call takes str keywords only
    if bad:
        raise InvalidArgumentError(f"kwargs keys must be str, got {bad[0]!r}")
    prio = coerce_priority(priority)
    due = due_time(now, defer_by, defer_until)
    func_data = codec.encode_function(task_func, task_id)
    args_data = codec.encode_args(
        args if type(args) is tuple else tuple(args),
        kwargs if type(kwargs) is dict else dict(kwargs),
        task_id,
    )
    return TaskRow(task_id, task_type, prio, due, func_data, args_data)


def check_size(row: TaskRow, max_bytes: int) -> TaskRow:
    """Return ``row`` when its stored function and arguments fit in ``max_bytes``.

    Raises:
        SerializationError: the payload is larger (the message gives both sizes).
    """
    size = len(row.func) + len(row.args)
    if size > max_bytes:
        raise SerializationError(
            f"task {row.task_id!r}: payload of {size} bytes exceeds max_payload_bytes ({max_bytes})"
        )
    return row


def _entry_row(i: int, *fields: Any) -> TaskRow:
    """:func:`build_row` for ``tasks[i]`` of a batch; its errors name the entry."""
    try:
        return build_row(*fields)
    except (InvalidArgumentError, SerializationError) as exc:
        raise type(exc)(f"tasks[{i}]: {exc}") from exc


def rows_from_dicts(
    now: float, tasks: Sequence[Mapping[str, Any]], max_bytes: int, codec: Codec = DEFAULT_CODEC
) -> list[TaskRow]:
    """Validate a ``submit_tasks`` batch: every dict, its size, duplicate ids within the batch.

    Raises:
        InvalidArgumentError: not a list of dicts, unknown keys, bad values.
        TaskAlreadyExistsError: the same task_id twice in the batch.
        SerializationError: an argument cannot be serialized.
    """
    if isinstance(tasks, str | bytes) or not isinstance(tasks, Sequence):
        raise InvalidArgumentError("tasks must be a list of dicts")
    rows: list[TaskRow] = []
    seen: set[str] = set()
    # exact-type checks first: the ABC isinstance checks cost more than the rest of a row
    for i, spec in enumerate(tasks):
        if type(spec) is not dict and not isinstance(spec, Mapping):
            raise InvalidArgumentError(f"tasks[{i}] must be a dict, got {type(spec).__name__}")
        if not BATCH_KEYS.issuperset(spec):
            unknown = sorted(set(spec) - BATCH_KEYS, key=repr)
            raise InvalidArgumentError(f"tasks[{i}] has unknown keys {unknown}")
        args, kwargs = spec.get("args", ()), spec.get("kwargs", {})
        if type(args) not in (tuple, list) and (
            isinstance(args, str | bytes) or not isinstance(args, Sequence)
        ):
            raise InvalidArgumentError(f"tasks[{i}]['args'] must be a tuple or list")
        if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
            raise InvalidArgumentError(f"tasks[{i}]['kwargs'] must be a dict")
        row = _entry_row(
            i,
            now,
            spec.get("task_id"),
            spec.get("task_type", ""),
            spec.get("task_func"),
            spec.get("priority", QueuePriority.MEDIUM),
            args,
            kwargs,
            spec.get("_defer_by"),
            spec.get("_defer_until"),
            codec,
        )
        check_size(row, max_bytes)
        if row.task_id in seen:
            raise TaskAlreadyExistsError(
                f"task {row.task_id!r} appears more than once in the batch"
            )
        seen.add(row.task_id)
        rows.append(row)
    return rows


async def submit_batch(
    store: RedisStore,
    keys: QueueKeys,
    max_size: int,
    rows: Sequence[TaskRow],
    now_ms: int,
    chunk: int,
) -> None:
    """Enqueue ``rows`` all-or-nothing, one round trip per ``chunk`` tasks.

    Chunks before the last are staged (their rows kept aside in Redis, invisible to workers,
    expiring after STAGING_TTL); the last one checks every id and the capacity for the whole
    batch and writes every task, or none.

    Raises:
        QueueProcessorError: the batch does not fit under ``max_size`` (or a staged chunk
            expired before the commit).
        TaskAlreadyExistsError: a task id already exists in the queue.
    """
    if len(rows) > max_size:
        raise QueueProcessorError(f"queue {keys.queue!r} is full: batch of {len(rows)} > max_size")
    claimed: list[str] = []
    if store.cluster:  # other queues live in other slots: checked before anything is written
        ids = [r.task_id for r in rows]
        # the claims must last until the commit: a chunked batch may stage for STAGING_TTL
        claim_ms = ID_CLAIM_MS if len(rows) <= chunk else to_ms(STAGING_TTL)
        claims = await store.claim_ids(keys, ids, claim_ms)
        claimed = claims.fresh
        if claims.taken:
            await store.release_id_claims(keys, claimed)
            first = next(t for t in ids if t in claims.taken)
            err = error_for_code(ScriptCode.DUPLICATE, first)
            assert err is not None
            raise err
    try:
        await _submit_chunks(store, keys, max_size, rows, now_ms, chunk)
    except BaseException:
        await store.release_id_claims(keys, claimed)  # a published batch is still found by
        # the per-queue check (its id keys exist), so dropping the claims is safe either way
        raise


async def _submit_chunks(
    store: RedisStore,
    keys: QueueKeys,
    max_size: int,
    rows: Sequence[TaskRow],
    now_ms: int,
    chunk: int,
) -> None:
    batch_id = uuid.uuid4().hex
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        code, index = await store.submit_atomic(
            keys,
            now_ms,
            max_size,
            [r.script_args() for r in part],
            batch_id=batch_id,
            staged=start,
            final=start + chunk >= len(rows),
            staging_ttl_ms=to_ms(STAGING_TTL),
        )
        if code == ScriptCode.NOT_FOUND:
            raise QueueProcessorError("batch aborted: a staged chunk expired before commit")
        err = error_for_code(code, rows[index - 1].task_id if index > 0 else keys.queue)
        if err is not None:
            raise err


_MAX_COALESCED = 1000  # most tasks in one coalesced submit call


class SubmitCoalescer:
    """Sends the submits of one queue with as few round trips as possible.

    A submit made while no call is on the wire goes out at once (sequential submits pay one
    round trip each and nothing more). Submits made while a call is on the wire (e.g.
    ``asyncio.gather`` of many ``submit_task``) wait for it and then go out together, up to
    1000 per script call, each with its own outcome.

    Args:
        store: the manager's store.
        keys: the queue's keys.
        max_size: the queue's backpressure bound.
        now_ms: returns the clock's time in ms when a call is sent.
    """

    def __init__(
        self, store: RedisStore, keys: QueueKeys, max_size: int, now_ms: Callable[[], int]
    ) -> None:
        self._store = store
        self._keys = keys
        self._max_size = max_size
        self._now_ms = now_ms
        self._busy = False
        self._waiting: list[tuple[TaskRow, asyncio.Future[None]]] = []

    async def submit(self, row: TaskRow) -> None:
        """Enqueue one task.

        Raises:
            TaskAlreadyExistsError: duplicate id. QueueProcessorError: queue full.
            KewConnectionError: Redis unreachable.
        """
        if self._busy:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((row, fut))
            await fut
            return
        self._busy = True
        try:
            (code,) = await self._store.submit(
                self._keys, self._now_ms(), self._max_size, [row.script_args()]
            )
        finally:
            self._after_send()
        err = self._error(code, row)
        if err is not None:
            raise err

    def _error(self, code: int, row: TaskRow) -> TaskQueueError | None:
        if code == 0:  # ScriptCode.OK, the common case, without building the enum
            return None
        subject = self._keys.queue if code == ScriptCode.QUEUE_FULL else row.task_id
        return error_for_code(code, subject)

    def _after_send(self) -> None:
        if self._waiting:
            spawn(self._send_waiting())
        else:
            self._busy = False

    async def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting[:_MAX_COALESCED], self._waiting[_MAX_COALESCED:]
        batch = [(row, fut) for row, fut in batch if not fut.done()]  # cancelled callers: drop
        if not batch:
            self._after_send()
            return
        try:
            codes = await self._store.submit(
                self._keys, self._now_ms(), self._max_size, [r.script_args() for r, _ in batch]
            )
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException:
            for _, fut in batch:
                fut.cancel()
            raise
        finally:
            self._after_send()
        for (row, fut), code in zip(batch, codes, strict=True):
            if fut.done():
                continue
            err = self._error(code, row)
            if err is None:
                fut.set_result(None)
            else:
                fut.set_exception(err)
