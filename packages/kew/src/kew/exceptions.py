"""Every exception kew raises, and the one mapping from Lua script codes to exceptions.

The tree::

    TaskQueueError                          root of everything kew raises
    ├── TaskAlreadyExistsError              a task with this id exists in the queue (duplicate)
    ├── TaskNotFoundError (LookupError)     no record for this task id (never existed or expired)
    ├── QueueNotFoundError (LookupError)    queue not created in this manager
    ├── QueueProcessorError                 queue full (backpressure) or queue not running
    ├── InvalidArgumentError (ValueError)   bad input caught at the call; nothing was written
    ├── SerializationError (ValueError)     an argument or result cannot be stored
    ├── TaskTimeoutError (TimeoutError)     wait_for_task ran out of time
    ├── AttemptTimeoutError (TimeoutError)  an attempt ran past task_timeout (given to on_task_fail)
    ├── LeaseLostError                      this run's lease was taken over (fencing token stale)
    ├── KewConnectionError (ConnectionError) Redis unreachable or not answering
    └── NotReplicatedError                  a submit reached the primary, but fewer replicas
                                            than ``wait_replicas`` confirmed it in time

Lua scripts return small integers (:class:`ScriptCode`); :func:`error_for_code` is the only place
that turns such a code into an exception. ``lua/includes/codes.lua`` holds the same numbers and a
unit test keeps the two in step.
"""

from __future__ import annotations

import enum

__all__ = [
    "AttemptTimeoutError",
    "InvalidArgumentError",
    "KewConnectionError",
    "LeaseLostError",
    "NotReplicatedError",
    "QueueNotFoundError",
    "QueueProcessorError",
    "ScriptCode",
    "SerializationError",
    "TaskAlreadyExistsError",
    "TaskNotFoundError",
    "TaskQueueError",
    "TaskTimeoutError",
    "error_for_code",
]


class TaskQueueError(Exception):
    """Base class of every exception kew raises."""


class TaskAlreadyExistsError(TaskQueueError):
    """A task with this id already has a record in the queue (duplicates are rejected)."""


class TaskNotFoundError(TaskQueueError, LookupError):
    """No record exists for the task id (never submitted, or expired after retention)."""


class QueueNotFoundError(TaskQueueError, LookupError):
    """The queue was not created with ``create_queue`` in this manager."""


class QueueProcessorError(TaskQueueError):
    """The queue cannot take the task: it is full (backpressure) or the manager is not running."""


class InvalidArgumentError(TaskQueueError, ValueError):
    """An argument is of the wrong type or out of range; raised before anything touches Redis."""


class SerializationError(TaskQueueError, ValueError):
    """A task argument or result cannot be serialized (the message names the type)."""


class TaskTimeoutError(TaskQueueError, TimeoutError):
    """``wait_for_task`` did not see a terminal state within its timeout."""


class AttemptTimeoutError(TaskQueueError, TimeoutError):
    """An attempt ran longer than its queue's ``task_timeout`` and was cancelled; the task's
    ``error`` reads "task timed out after N s". ``on_task_fail`` receives this exception."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"task timed out after {seconds:g} s")
        self.seconds = seconds


class LeaseLostError(TaskQueueError):
    """The lease of this run was taken over by another claim; its outcome was not written."""


class KewConnectionError(TaskQueueError, ConnectionError):
    """Redis could not be reached (the message carries the URL with the password masked)."""


class NotReplicatedError(TaskQueueError):
    """A submit was written on the primary, but fewer replicas than ``wait_replicas`` confirmed
    it within ``wait_timeout`` (Redis WAIT). The task is queued; it is lost only if the primary
    fails before it replicates. Raised by submits only; late confirmations of outcomes are
    logged instead. Attributes: ``confirmed`` and ``required`` replica counts."""

    def __init__(self, message: str, confirmed: int, required: int) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.required = required


class ScriptCode(enum.IntEnum):
    """Outcome codes returned by the Lua scripts (mirrored in ``lua/includes/codes.lua``)."""

    OK = 0
    DUPLICATE = 1
    QUEUE_FULL = 2
    LEASE_LOST = 3
    NOT_FOUND = 4


def error_for_code(code: int, subject: str) -> TaskQueueError | None:
    """Map a script code to the exception to raise, or None for OK.

    Args:
        code: the integer a script returned (a :class:`ScriptCode` value).
        subject: what the code is about (a task id or queue name), used in the message.

    Returns:
        The exception instance, or None when ``code`` is ``ScriptCode.OK``.

    Raises:
        ValueError: if ``code`` is not a known ScriptCode (a script/library mismatch).
    """
    c = ScriptCode(code)
    if c is ScriptCode.OK:
        return None
    if c is ScriptCode.DUPLICATE:
        return TaskAlreadyExistsError(f"task {subject!r} already exists")
    if c is ScriptCode.QUEUE_FULL:
        return QueueProcessorError(f"queue {subject!r} is full")
    if c is ScriptCode.LEASE_LOST:
        return LeaseLostError(f"lease of task {subject!r} was taken over")
    return TaskNotFoundError(f"task {subject!r} not found")
