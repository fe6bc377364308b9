"""Lifecycle hooks: ``on_task_start``, ``on_task_complete`` and ``on_task_fail``.

Hooks may be sync or async. An exception inside a hook is logged and never changes the task's
outcome (design.md §4).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .exceptions import InvalidArgumentError
from .models import TaskInfo

__all__ = ["Hooks"]

logger = logging.getLogger("kew")

Hook = Callable[..., Any]


def _check(name: str, hook: object) -> None:
    if hook is not None and not callable(hook):
        raise InvalidArgumentError(f"{name} must be callable or None, got {type(hook).__name__}")


@dataclass(frozen=True)
class Hooks:
    """The three optional hooks of a manager (validated: each is callable or None)."""

    on_task_start: Hook | None = None
    on_task_complete: Hook | None = None
    on_task_fail: Hook | None = None

    def __post_init__(self) -> None:
        for name in ("on_task_start", "on_task_complete", "on_task_fail"):
            _check(name, getattr(self, name))

    async def _call(self, name: str, hook: Hook | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            out = hook(*args)
            if inspect.isawaitable(out):
                await out
        except Exception:
            logger.exception("kew: %s hook raised (the task's outcome is unchanged)", name)

    async def started(self, info: TaskInfo) -> None:
        """Run ``on_task_start(info)``."""
        await self._call("on_task_start", self.on_task_start, info)

    async def completed(self, info: TaskInfo) -> None:
        """Run ``on_task_complete(info)``."""
        await self._call("on_task_complete", self.on_task_complete, info)

    async def failed(self, info: TaskInfo, exc: BaseException) -> None:
        """Run ``on_task_fail(info, exc)``; ``info.status`` is RETRY or FAILED."""
        await self._call("on_task_fail", self.on_task_fail, info, exc)
