"""The timing rules of kew as small pure functions (no I/O, no clock reads).

Sources: deferral and retries follow kew 0.2.x (``_defer_by`` / ``_defer_until``; backoff
``retry_delay * 2**(n-1)``), restated in design.md §4. All times here are floats in seconds since
the epoch unless a name ends in ``_ms`` (integer milliseconds, the unit stored in Redis).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from .exceptions import InvalidArgumentError

__all__ = [
    "MAX_DUE",
    "backoff_delay",
    "breaker_state",
    "due_time",
    "should_retry",
    "to_ms",
    "wait_seconds",
]


MAX_DUE = 253_402_214_400.0  # 9999-12-31T00:00:00Z: the last time a datetime can show


def to_ms(seconds: float) -> int:
    """Seconds (float) -> whole milliseconds (int), rounding down."""
    return math.floor(seconds * 1000.0)


def _defer_seconds(defer_by: object) -> float:
    if isinstance(defer_by, timedelta):
        seconds = defer_by.total_seconds()
    elif isinstance(defer_by, int | float) and not isinstance(defer_by, bool):
        seconds = float(defer_by)
    else:
        raise InvalidArgumentError(
            f"_defer_by must be seconds (int/float) or a timedelta, got {type(defer_by).__name__}"
        )
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise InvalidArgumentError(f"_defer_by must be finite and >= 0, got {defer_by!r}")
    return seconds


def due_time(now: float, defer_by: object = None, defer_until: object = None) -> float | None:
    """When a submitted task becomes ready.

    Args:
        now: current time (seconds since the epoch, from the manager's clock).
        defer_by: delay in seconds (int/float >= 0) or a ``timedelta`` (>= 0), or None.
        defer_until: a ``datetime``: aware is exact; naive is local time as
            ``datetime.timestamp()`` reads it; or None.

    Returns:
        The due time in seconds since the epoch, or None when the task is ready now (no deferral,
        a zero delay, or a ``defer_until`` not in the future).

    Raises:
        InvalidArgumentError: both arguments given, a negative/NaN/infinite delay, wrong types,
            or a due time past the year 9999.
    """
    if defer_by is not None and defer_until is not None:
        raise InvalidArgumentError("give either _defer_by or _defer_until, not both")
    if defer_by is not None:
        seconds = _defer_seconds(defer_by)
        at = now + seconds
    elif defer_until is not None:
        if not isinstance(defer_until, datetime):
            raise InvalidArgumentError(
                f"_defer_until must be a datetime, got {type(defer_until).__name__}"
            )
        try:
            at = defer_until.timestamp()
        except (ValueError, OverflowError, OSError) as exc:
            raise InvalidArgumentError(f"_defer_until {defer_until!r} is out of range") from exc
    else:
        return None
    if at > MAX_DUE:
        raise InvalidArgumentError("a task cannot be deferred past the year 9999")
    return at if at > now else None


def backoff_delay(retry_delay: float, failure_number: int) -> float:
    """Seconds to wait after failed attempt ``failure_number`` (1-based) before the next one.

    ``retry_delay * 2**(failure_number - 1)``: 1 s, 2 s, 4 s... for ``retry_delay=1.0``.
    """
    if failure_number < 1:
        raise ValueError(f"failure_number is 1-based, got {failure_number}")
    return float(retry_delay) * 2.0 ** (failure_number - 1)


def should_retry(retry_count: int, max_retries: int) -> bool:
    """True when a task that has been retried ``retry_count`` times may be retried once more."""
    return retry_count < max_retries


def wait_seconds(now_ms: int, next_due_ms: int | None, cap: float) -> float:
    """How long an idle worker may block before something becomes due.

    Args:
        now_ms: current time in ms.
        next_due_ms: the earliest due time or lease expiry in the queue (ms), or None.
        cap: the longest wait in seconds when nothing is due.

    Returns:
        Seconds (float, >= 0.001 so a blocking call never means "forever").
    """
    if next_due_ms is None:
        return cap
    return min(cap, max(0.001, (next_due_ms - now_ms) / 1000.0))


def breaker_state(fields: dict[bytes, bytes], now_ms: int) -> str:
    """The circuit breaker's state as users see it: "closed", "open" or "half-open".

    Args:
        fields: the breaker HASH (``state``, ``failures``, ``opened_at``, ``probe_at``).
        now_ms: current time in ms.

    An open breaker whose ``probe_at`` time has passed lets one trial task through: half-open.
    """
    state = fields.get(b"state", b"closed").decode()
    if state == "closed":
        return "closed"
    probe_at = int(fields.get(b"probe_at", b"0"))
    return "half-open" if now_ms >= probe_at else "open"
