"""Key and score building: pure work done per task."""

from __future__ import annotations

from typing import Any

from kew.keys import QueueKeys
from kew.scheduling import due_time, to_ms


def test_task_key(benchmark: Any) -> None:
    qk = QueueKeys("kew", "orders")
    assert benchmark(qk.task, "task-123") == "kew:{orders}:task:task-123"


def test_queue_keys_all(benchmark: Any) -> None:
    """A fresh QueueKeys and every key of the queue (what a script call's KEYS list needs)."""

    def build() -> list[str]:
        qk = QueueKeys("kew", "orders")
        return [qk.ready, qk.scheduled, qk.leased, qk.wake, qk.meta, qk.breaker, qk.task_prefix]

    assert len(benchmark(build)) == 7


def test_due_time_ready_now(benchmark: Any) -> None:
    assert benchmark(due_time, 1_700_000_000.0) is None


def test_due_time_deferred(benchmark: Any) -> None:
    assert benchmark(due_time, 1_700_000_000.0, 30.0) == 1_700_000_030.0


def test_to_ms(benchmark: Any) -> None:
    assert benchmark(to_ms, 1_700_000_000.123) == 1_700_000_000_123
