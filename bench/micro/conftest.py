"""Micro-benchmarks of kew's hot paths: ``uv run pytest bench/micro --benchmark-only``.

pytest-benchmark lives in the ``bench`` dependency group. Without it these files still run as
plain tests (each body once, so a broken hot path still fails), and ``--benchmark-only`` is
accepted and skips them with a note saying how to install it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

HAVE_PLUGIN = importlib.util.find_spec("pytest_benchmark") is not None


if not HAVE_PLUGIN:

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addoption("--benchmark-only", action="store_true", help="(needs pytest-benchmark)")

    def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
        if config.getoption("--benchmark-only"):
            skip = pytest.mark.skip(
                reason="pytest-benchmark is not installed (the workspace's dev group has it: "
                "uv sync, then uv run pytest bench/micro --benchmark-only)"
            )
            for item in items:
                item.add_marker(skip)

    class _Once:
        """Stands in for pytest-benchmark's fixture: runs the body once."""

        def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        def pedantic(
            self,
            fn: Callable[..., Any],
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
            setup: Callable[[], Any] | None = None,
            **_: Any,
        ) -> Any:
            if setup is not None:
                got = setup()
                if got is not None:
                    args, kwargs = got
            return fn(*args, **(kwargs or {}))

    @pytest.fixture
    def benchmark() -> _Once:
        return _Once()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop: pytest-benchmark times plain calls, so async work runs in it."""
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()
