"""kew: an async task queue backed by Redis; tasks run inside your own asyncio process.

The public surface is re-exported here; see the README for the API.
"""

from typing import Any

from .breaker import RedisCircuitBreaker
from .clock import Clock, SystemClock
from .context import TaskContext, current_task
from .exceptions import (
    AttemptTimeoutError,
    InvalidArgumentError,
    KewConnectionError,
    LeaseLostError,
    NotReplicatedError,
    QueueNotFoundError,
    QueueProcessorError,
    SerializationError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    TaskQueueError,
    TaskTimeoutError,
)
from .manager import TaskQueueManager
from .models import QueueConfig, QueuePriority, TaskInfo, TaskStatus
from .queue import Queue
from .signing import SignatureError


def __getattr__(name: str) -> Any:
    """``kew.__version__``, read from the installed metadata on first use (pyproject.toml is
    the one place it is written; importlib.metadata costs start-up time and memory)."""
    if name != "__version__":
        raise AttributeError(f"module 'kew' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("kew")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        value = "0.0.0"
    globals()["__version__"] = value
    return value


__all__ = [
    "AttemptTimeoutError",
    "Clock",
    "InvalidArgumentError",
    "KewConnectionError",
    "LeaseLostError",
    "NotReplicatedError",
    "Queue",
    "QueueConfig",
    "QueueNotFoundError",
    "QueuePriority",
    "QueueProcessorError",
    "RedisCircuitBreaker",
    "SerializationError",
    "SignatureError",
    "SystemClock",
    "TaskAlreadyExistsError",
    "TaskContext",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskQueueError",
    "TaskQueueManager",
    "TaskStatus",
    "TaskTimeoutError",
    "__version__",
    "current_task",
]
