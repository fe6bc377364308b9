"""Assertions on a task's TaskInfo that say what went wrong in one readable line.

This module owns :func:`assert_task_completed`, :func:`assert_task_failed` and
:func:`assert_task_status`. They raise ``AssertionError``, so pytest reports them as test failures.
"""

from __future__ import annotations

from typing import Any, Final

from kew.models import TaskInfo, TaskStatus

__all__ = ["assert_task_completed", "assert_task_failed", "assert_task_status", "describe_task"]

_UNSET: Final[Any] = object()


def describe_task(info: TaskInfo) -> str:
    """Return one line describing a task: id, type, queue, status, retries, error or result.

    Args:
        info: the task's TaskInfo.
    """
    parts = [
        f"task {info.task_id!r} (type {info.task_type!r}, queue {info.queue_name!r})",
        f"status {info.status.name}",
        f"retry_count={info.retry_count}",
    ]
    if info.error:
        parts.append(f"error={info.error!r}")
    if info.status is TaskStatus.COMPLETED:
        parts.append(f"result={info.result!r}")
    return ", ".join(parts)


def assert_task_status(info: TaskInfo, status: TaskStatus | str) -> None:
    """Assert that the task has ``status``.

    Args:
        info: the task's TaskInfo.
        status: the expected TaskStatus (or its value, e.g. ``"retry"``).

    Raises:
        AssertionError: naming the task, its actual status and its error.
    """
    expected = TaskStatus(status)
    if info.status is not expected:
        raise AssertionError(f"expected {expected.name}, got {describe_task(info)}")


def assert_task_completed(info: TaskInfo, result: Any = _UNSET) -> None:
    """Assert that the task COMPLETED (and, when given, that its result equals ``result``).

    Args:
        info: the task's TaskInfo.
        result: the expected result, compared with ``==``; not compared when omitted.

    Raises:
        AssertionError: e.g. ``expected COMPLETED, got task 'a' (...), status FAILED, error=...``.
    """
    assert_task_status(info, TaskStatus.COMPLETED)
    if result is not _UNSET and info.result != result:
        raise AssertionError(
            f"task {info.task_id!r} completed with result {info.result!r}, expected {result!r}"
        )


def assert_task_failed(
    info: TaskInfo, error_contains: str | None = None, *, retry_count: int | None = None
) -> None:
    """Assert that the task FAILED, optionally with a given error text and retry count.

    Args:
        info: the task's TaskInfo.
        error_contains: a substring the task's error must contain; not checked when None.
        retry_count: the expected number of retried attempts; not checked when None.

    Raises:
        AssertionError: naming the task, its status, error and retries.
    """
    assert_task_status(info, TaskStatus.FAILED)
    if error_contains is not None and error_contains not in (info.error or ""):
        raise AssertionError(
            f"task {info.task_id!r} failed with error {info.error!r}, "
            f"which does not contain {error_contains!r}"
        )
    if retry_count is not None and info.retry_count != retry_count:
        raise AssertionError(
            f"task {info.task_id!r} failed after {info.retry_count} retries, expected {retry_count}"
        )
