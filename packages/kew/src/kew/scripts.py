"""Loads the Lua scripts shipped in ``kew/lua`` (pure: reads package files, talks to no Redis).

Conventions (after BullMQ's script loader): one file per state change named ``verb-N.lua`` where N
is the number of KEYS (no ``-N`` for variadic scripts); a line ``--!include includes/x.lua``
pulls in a shared helper, once per script, recursively; cycles and missing files raise
``ScriptLoadError``. Each :class:`Script` carries its final source and SHA1 for EVALSHA.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Script", "ScriptLoadError", "load_script", "load_scripts"]

_INCLUDE = re.compile(r"^--!include\s+(\S+)\s*$")
_NAME = re.compile(r"^(?P<name>[a-z_]+?)(?:-(?P<numkeys>\d+))?\.lua$")


class ScriptLoadError(Exception):
    """A Lua file is missing, badly named, or its includes form a cycle."""


@dataclass(frozen=True)
class Script:
    """One resolved Lua script.

    Attributes:
        name: the verb (file name without ``-N.lua``), e.g. ``"claim"``.
        source: the script text with every include inlined.
        sha: SHA1 hex digest of ``source`` (what EVALSHA takes).
        numkeys: the KEYS count from the file name, or None for a variadic script.
    """

    name: str
    source: str
    sha: str
    numkeys: int | None


def _resolve(path: str, read: Callable[[str], str], stack: tuple[str, ...], seen: set[str]) -> str:
    if path in stack:
        raise ScriptLoadError(f"include cycle: {' -> '.join((*stack, path))}")
    try:
        text = read(path)
    except (FileNotFoundError, OSError) as exc:
        raise ScriptLoadError(
            f"missing Lua file {path!r} (from {stack[-1] if stack else '-'})"
        ) from exc
    out: list[str] = []
    for line in text.splitlines():
        m = _INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        inc = m.group(1)
        if inc in stack or inc == path:
            raise ScriptLoadError(f"include cycle: {' -> '.join((*stack, path, inc))}")
        if inc in seen:
            continue
        seen.add(inc)
        out.append(_resolve(inc, read, (*stack, path), seen))
    return "\n".join(out)


def load_script(filename: str, read: Callable[[str], str]) -> Script:
    """Resolve one script file.

    Args:
        filename: e.g. ``"claim-7.lua"`` (relative to the Lua directory).
        read: returns the text of a path relative to the Lua directory.

    Raises:
        ScriptLoadError: bad file name, missing include, include cycle.
    """
    m = _NAME.match(filename)
    if not m:
        raise ScriptLoadError(f"Lua script name must be verb-N.lua or verb.lua: {filename!r}")
    source = _resolve(filename, read, (), set())
    numkeys = int(m.group("numkeys")) if m.group("numkeys") else None
    sha = hashlib.sha1(source.encode()).hexdigest()
    return Script(m.group("name"), source, sha, numkeys)


def _package_reader(path: str) -> str:
    return resources.files("kew").joinpath("lua").joinpath(path).read_text(encoding="utf-8")


@cache
def load_scripts() -> dict[str, Script]:
    """Return every script shipped in ``kew/lua``, by verb name (loaded once per process)."""
    root = resources.files("kew").joinpath("lua")
    scripts = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".lua"):
            script = load_script(entry.name, _package_reader)
            scripts[script.name] = script
    return scripts
