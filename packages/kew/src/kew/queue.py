"""Queue: the per-queue handle a manager keeps in ``manager.queues[name]``."""

from __future__ import annotations

from dataclasses import dataclass

from .breaker import RedisCircuitBreaker
from .keys import QueueKeys
from .models import QueueConfig
from .worker import QueueWorker

__all__ = ["Queue"]


@dataclass(eq=False)
class Queue:
    """One queue as seen by this process.

    Attributes:
        config: the QueueConfig it was created with.
        keys: its Redis keys.
        circuit_breaker: the queue's RedisCircuitBreaker (shared by every process).
        worker: this process's consumer of the queue.
    """

    config: QueueConfig
    keys: QueueKeys
    circuit_breaker: RedisCircuitBreaker
    worker: QueueWorker

    @property
    def name(self) -> str:
        """The queue's name."""
        return self.config.name

    @property
    def current_workers(self) -> int:
        """Tasks of this queue running in this process right now."""
        return self.worker.running
