"""Waiting for tasks to finish without polling.

Every script that ends an attempt publishes ``"<status> <task id>"`` on the queue's events
channel. :class:`TaskEvents` holds one pattern subscription for the whole namespace and wakes the
local waiters of that task id; runs that finish in this process wake their waiters directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .clock import real_sleep
from .exceptions import QueueProcessorError, TaskQueueError
from .store import RedisStore

__all__ = ["TaskEvents"]

logger = logging.getLogger("kew")


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class TaskEvents:
    """Per-manager registry of futures waiting for task events.

    Args:
        store: the manager's store (its client opens the pub/sub connection).
        namespace: the manager's namespace; the subscription is ``<namespace>:{*}:events``.
    """

    def __init__(self, store: RedisStore, namespace: str) -> None:
        self._store = store
        self._pattern = f"{_escape_glob(namespace)}:{{*}}:events"
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    def notify(self, task_id: str) -> None:
        """Wake every waiter of ``task_id`` (they re-read the task's record)."""
        for fut in self._waiters.get(task_id, ()):
            if not fut.done():
                fut.set_result(None)

    def notify_all(self) -> None:
        """Wake every waiter (records may have vanished: they re-read and find out)."""
        for task_id in list(self._waiters):
            self.notify(task_id)

    def register(self, task_id: str) -> asyncio.Future[None]:
        """Return a future that is set at the next event of ``task_id``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, set()).add(fut)
        return fut

    def discard(self, task_id: str, fut: asyncio.Future[None]) -> None:
        """Forget a waiter (call when done waiting)."""
        waiters = self._waiters.get(task_id)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiters[task_id]

    async def start(self) -> None:
        """Subscribe (once) and return when the subscription is confirmed."""
        if self._listener is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._listener = asyncio.create_task(self._listen(), name="kew-events")
        assert self._ready is not None
        await asyncio.shield(self._ready)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self._store.subscribe([]) as pubsub:
                    await pubsub.psubscribe(self._pattern)
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(None)
                    backoff = 0.5
                    for task_id in list(self._waiters):  # something may have ended meanwhile
                        self.notify(task_id)
                    while True:
                        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                        if msg is not None:
                            self._dispatch(msg)
            except asyncio.CancelledError:
                raise
            except (TaskQueueError, ConnectionError, OSError, Exception) as exc:
                logger.warning(
                    "kew: event subscription lost (%s); resubscribing in %.1f s", exc, backoff
                )
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)  # waiters fall back to their periodic re-check
                await real_sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        data = msg.get("data")
        if isinstance(data, bytes):
            _, _, task_id = data.decode(errors="replace").partition(" ")
            self.notify(task_id)

    async def close(self) -> None:
        """Stop listening; every waiter gets QueueProcessorError."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(QueueProcessorError("the manager was shut down"))
        self._waiters.clear()
