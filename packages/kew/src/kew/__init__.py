"""kew: an async task queue backed by Redis; tasks run inside your own asyncio process.

The public surface is re-exported here; see the README for the API.
"""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("kew")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
