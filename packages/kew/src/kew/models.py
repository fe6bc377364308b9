"""Public value types: queue configuration, priorities, task status and the task record.

:class:`TaskInfo` also owns the codec of the task HASH in Redis (:meth:`TaskInfo.from_hash`): the
field names below are the data model of design.md §5.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .exceptions import InvalidArgumentError

__all__ = ["QueueConfig", "QueuePriority", "TaskInfo", "TaskStatus"]


class QueuePriority(enum.Enum):
    """Priority of a task (and nominally of a queue). Lower value runs first."""

    HIGH = 1
    MEDIUM = 2
    LOW = 3


class TaskStatus(enum.Enum):
    """Lifecycle of a task. QUEUED covers ready and deferred tasks; RETRY is a task waiting for
    its backoff after a failed attempt; COMPLETED, FAILED and CANCELLED are terminal."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRY = "retry"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


def _check_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{kind} must be a non-empty str, got {value!r}")
    if "{" in value or "}" in value:
        raise InvalidArgumentError(
            f"{kind} must not contain '{{' or '}}' (Redis hash tag): {value!r}"
        )
    return value


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_seconds(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(
            f"{name} must be a number of seconds, got {type(value).__name__}"
        )
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v < 0 or (positive and v == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidArgumentError(f"{name} must be finite and {bound} seconds, got {value!r}")
    return v


def coerce_priority(value: object) -> QueuePriority:
    """Return ``value`` as a QueuePriority.

    Args:
        value: a QueuePriority, or its int value (1 = HIGH, 2 = MEDIUM, 3 = LOW).

    Raises:
        InvalidArgumentError: for anything else (bool included).
    """
    if isinstance(value, QueuePriority):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return QueuePriority(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"priority must be a QueuePriority (or 1, 2, 3), got {value!r}")


@dataclass(frozen=True)
class QueueConfig:
    """Configuration of one queue, validated on construction.

    Args:
        name: queue name; non-empty, without ``{`` or ``}`` (they would break the hash tag).
        max_workers: hard limit of tasks of this queue running at once *in this process*
            (int >= 1, default 10).
        priority: nominal priority of the queue (QueuePriority; kept for compatibility, shown in
            ``get_queue_status``). Task order is decided by each task's own priority.
        max_size: maximum number of waiting tasks (ready + deferred + retry-waiting); a submit
            beyond it raises QueueProcessorError (int >= 1, default 1000).
        task_timeout: seconds a single attempt may run before it is cancelled and counted as a
            failure (float > 0, default 3600).
        max_circuit_breaker_failures: consecutive failures that open the circuit (int >= 1,
            default 3).
        circuit_breaker_reset_timeout: seconds the circuit stays open before one trial task is
            let through (half-open) (float > 0, default 60).
        max_retries: retries after the first failed attempt (int >= 0, default 0).
        retry_delay: base backoff in seconds; retry n waits ``retry_delay * 2**(n-1)``
            (float >= 0, default 1.0).
        global_max_workers: limit of tasks of this queue running at once in the whole fleet
            (all processes on the Redis), next to the per-process ``max_workers`` (int >= 1,
            default None: no fleet-wide limit).
        rate_limit: most tasks started per ``rate_period`` across all processes (token
            bucket enforced in the claim script; int >= 1, default None: no limit).
        rate_period: seconds of the rate limit's window (float > 0, default 1.0).
        rate_burst: tokens the bucket holds, i.e. tasks that may start at once after a quiet
            spell (int >= 1, default ``rate_limit``).
        retention: seconds this queue's finished records and results are kept, counted from
            when each finished (float > 0; default None: the manager's ``retention``).

    Raises:
        InvalidArgumentError: (a ValueError) for any value of the wrong type or out of range.
    """

    name: str
    max_workers: int = 10
    priority: QueuePriority = QueuePriority.MEDIUM
    max_size: int = 1000
    task_timeout: float = 3600
    max_circuit_breaker_failures: int = 3
    circuit_breaker_reset_timeout: float = 60
    max_retries: int = 0
    retry_delay: float = 1.0
    global_max_workers: int | None = None
    rate_limit: int | None = None
    rate_period: float = 1.0
    rate_burst: int | None = None
    retention: float | None = None

    def __post_init__(self) -> None:
        _check_name("queue name", self.name)
        _check_int("max_workers", self.max_workers, 1)
        object.__setattr__(self, "priority", coerce_priority(self.priority))
        _check_int("max_size", self.max_size, 1)
        _check_seconds("task_timeout", self.task_timeout, positive=True)
        _check_int("max_circuit_breaker_failures", self.max_circuit_breaker_failures, 1)
        _check_seconds(
            "circuit_breaker_reset_timeout", self.circuit_breaker_reset_timeout, positive=True
        )
        _check_int("max_retries", self.max_retries, 0)
        _check_seconds("retry_delay", self.retry_delay, positive=False)
        if self.global_max_workers is not None:
            _check_int("global_max_workers", self.global_max_workers, 1)
        if self.rate_limit is not None:
            _check_int("rate_limit", self.rate_limit, 1)
        if _check_seconds("rate_period", self.rate_period, positive=True) < 0.001:
            raise InvalidArgumentError(f"rate_period must be >= 0.001 s, got {self.rate_period}")
        if self.retention is not None:
            object.__setattr__(
                self, "retention", _check_seconds("retention", self.retention, positive=True)
            )
        if self.rate_burst is not None:
            _check_int("rate_burst", self.rate_burst, 1)
            if self.rate_limit is None:
                raise InvalidArgumentError("rate_burst needs rate_limit")

    def claim_limits(self) -> tuple[int, int, int, int]:
        """(fleet-wide max running, rate, period in ms, burst) for the claim script; 0: none."""
        rate = self.rate_limit or 0
        burst = self.rate_burst if self.rate_burst is not None else rate
        return (self.global_max_workers or 0, rate, max(1, round(self.rate_period * 1000)), burst)


def _ts(value: bytes | None) -> datetime | None:
    """Milliseconds since the epoch (as stored) -> naive local datetime, like the original."""
    try:
        ms = int(value) if value else 0
        return datetime.fromtimestamp(ms / 1000.0) if ms > 0 else None
    except (ValueError, OverflowError, OSError):  # a corrupt or out-of-range field
        return None


@dataclass
class TaskInfo:
    """The record of one task, as returned by ``submit_task`` and ``get_task_status``.

    Times are naive local ``datetime`` values (as in kew 0.2.x), None until they happen.
    ``priority`` is the int value of the task's QueuePriority. ``result`` is the decoded return
    value once COMPLETED; ``error`` the text of the last error (``str(exc)``, or the exception's
    type name when that is empty). ``retry_count`` counts failed attempts that were retried.
    ``due_time`` is when a QUEUED/RETRY task becomes ready (None when ready now).
    ``attempts`` counts runs started; ``errors`` holds the error of every failed attempt, oldest
    first; ``progress``/``progress_message`` are what the task last reported.
    """

    task_id: str
    task_type: str
    queue_name: str
    priority: int
    status: TaskStatus = TaskStatus.QUEUED
    queued_time: datetime | None = None
    started_time: datetime | None = None
    completed_time: datetime | None = None
    result: Any = None
    error: str | None = None
    retry_count: int = 0
    due_time: datetime | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    progress: float | None = None
    progress_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (times as ISO 8601 strings, status as its value)."""

        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "queue_name": self.queue_name,
            "priority": self.priority,
            "status": self.status.value,
            "queued_time": iso(self.queued_time),
            "started_time": iso(self.started_time),
            "completed_time": iso(self.completed_time),
            "result": self.result,
            "error": self.error,
            "retry_count": self.retry_count,
            "attempts": self.attempts,
            "errors": list(self.errors),
            "progress": self.progress,
            "progress_message": self.progress_message,
        }

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes], result: Any = None) -> TaskInfo:
        """Build a TaskInfo from the raw task HASH (HGETALL reply).

        Args:
            fields: the HASH with bytes keys and values, as stored by the Lua scripts.
            result: the already-decoded result (decoding needs the serializer and its key).
        """

        def s(name: bytes) -> str | None:
            v = fields.get(name)
            return v.decode() if v is not None else None

        due = fields.get(b"due")
        status = TaskStatus(s(b"status") or "queued")
        return cls(
            task_id=s(b"id") or "",
            task_type=s(b"type") or "",
            queue_name=s(b"queue") or "",
            priority=int(fields.get(b"priority") or 2),
            status=status,
            queued_time=_ts(fields.get(b"queued")),
            started_time=_ts(fields.get(b"started")),
            completed_time=_ts(fields.get(b"completed")),
            result=result,
            error=s(b"error"),
            retry_count=int(fields.get(b"retries") or 0),
            due_time=_ts(due) if status in (TaskStatus.QUEUED, TaskStatus.RETRY) else None,
            attempts=int(fields.get(b"attempts") or 0),
            errors=(s(b"errors") or "").split("\x1e") if fields.get(b"errors") else [],
            progress=float(fields[b"progress"]) if b"progress" in fields else None,
            progress_message=s(b"progress_message"),
        )
