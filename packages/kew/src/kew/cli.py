"""The ``kew`` command line (argparse): ``kew demo [--redis-url URL]`` and ``kew --version``.

This is the only place kew reads the environment: the Redis URL is ``--redis-url``, else
``KEW_REDIS_URL``, else the embedded ``memory://``. The demo needs rich, an optional extra
(``pip install 'kew[cli]'``); it is imported only when the demo runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__
from .connection import mask_url
from .exceptions import TaskQueueError

__all__ = ["DEFAULT_REDIS_URL", "ENV_REDIS_URL", "build_parser", "main", "resolve_redis_url"]

DEFAULT_REDIS_URL = "memory://"
ENV_REDIS_URL = "KEW_REDIS_URL"
MISSING_RICH = "kew demo needs rich, which is not installed: pip install 'kew[cli]'"


def resolve_redis_url(cli_value: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """Pick the Redis URL: the option, else the environment, else the embedded backend.

    Args:
        cli_value: the ``--redis-url`` value, or None when not given.
        environ: the environment (``os.environ``).

    Returns:
        ``(url, source)``, source being ``"--redis-url"``, ``"KEW_REDIS_URL"`` or ``"default"``.
    """
    if cli_value:
        return cli_value, "--redis-url"
    if environ.get(ENV_REDIS_URL):
        return environ[ENV_REDIS_URL], ENV_REDIS_URL
    return DEFAULT_REDIS_URL, "default"


def build_parser() -> argparse.ArgumentParser:
    """Return the ``kew`` argument parser (subcommand required)."""
    parser = argparse.ArgumentParser(
        prog="kew", description="kew: async task queue for Python, backed by Redis."
    )
    parser.add_argument("--version", action="version", version=f"kew {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the shop demo (live table of task statuses, then a checked summary)",
        description="Run a small shop: 20 orders on 4 workers, a deferred reminder, a flaky "
        "payment that succeeds on its third attempt and a shipment that fails for good. "
        "Exit code 0 when the summary is as expected, 1 otherwise.",
    )
    demo.add_argument(
        "--redis-url",
        default=None,
        help=f"Redis to use (default: ${ENV_REDIS_URL}, else {DEFAULT_REDIS_URL}, "
        "the embedded in-process Redis)",
    )
    return parser


def _describe(url: str, source: str) -> str:
    shown = mask_url(url)
    if source == "default":
        return f"Redis: {shown} (embedded in-process Redis; no --redis-url or ${ENV_REDIS_URL})"
    if url.startswith("memory://"):
        return f"Redis: {shown} (embedded in-process Redis, from {source})"
    return f"Redis: {shown} (from {source})"


def _run_demo(redis_url: str | None) -> int:
    try:
        import rich  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        print(MISSING_RICH, file=sys.stderr)
        return 2
    from rich.console import Console

    from .demo import run_demo

    url, source = resolve_redis_url(redis_url, os.environ)
    console = Console()
    console.print(_describe(url, source), highlight=False)
    try:
        return asyncio.run(run_demo(url, console))
    except TaskQueueError as exc:
        console.print(f"[red]kew demo failed:[/red] {type(exc).__name__}: {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted (the demo's namespace was deleted)", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kew`` console script.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 success, 1 the demo's summary is not as expected (or Redis failed),
        2 usage error or rich missing.
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return _run_demo(args.redis_url)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
