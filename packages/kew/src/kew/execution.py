"""Running one task function: async in the host loop, sync in the queue's threads, with a timeout.

Kept apart from the consumer loop so the rules of one attempt (what counts as a timeout, how a
sync function's thread holds its worker slot until it really ends) are readable on their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .exceptions import AttemptTimeoutError

__all__ = ["AttemptTimeout", "is_async_callable", "run_attempt"]


AttemptTimeout = AttemptTimeoutError  # the name used inside kew


def is_async_callable(func: Callable[..., Any]) -> bool:
    """True for coroutine functions, partials of them and objects with an async ``__call__``."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an object's async __call__
    )


async def run_attempt(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
    executor: Callable[[], ThreadPoolExecutor],
    abandon: Callable[[asyncio.Future[Any]], None],
) -> Any:
    """Run one attempt and return its value.

    Async callables run as part of the calling task (so cancelling it cancels them and their
    ``finally`` runs). Sync callables run in ``executor()`` with the caller's context (so
    ``kew.current_task()`` works there too). Python cannot stop a thread: when a sync attempt
    times out or is cancelled, its still-running thread is handed to ``abandon(future)`` (the
    worker keeps the slot taken until it ends, so ``max_workers`` holds for threads too) and
    the attempt ends at once. A sync callable that returns an awaitable has it awaited.

    Raises:
        AttemptTimeout: the attempt exceeded ``timeout`` seconds.
        asyncio.CancelledError: the attempt was cancelled.
        Exception: whatever the task raised.
    """
    if is_async_callable(func):
        try:
            async with asyncio.timeout(timeout) as cm:
                value = await func(*args, **kwargs)
        except TimeoutError:
            if cm.expired():
                raise AttemptTimeout(timeout) from None
            raise
        if cm.expired():  # the task swallowed the cancellation and returned anyway
            raise AttemptTimeout(timeout)
        return value
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    future = loop.run_in_executor(executor(), call)
    try:
        value = await asyncio.wait_for(asyncio.shield(future), timeout)
    except asyncio.CancelledError:
        if not future.done():
            abandon(future)
        raise
    except TimeoutError:
        if not future.done():
            abandon(future)
            raise AttemptTimeout(timeout) from None
        raise
    if inspect.isawaitable(value):
        async with asyncio.timeout(timeout):
            value = await value
    return value
