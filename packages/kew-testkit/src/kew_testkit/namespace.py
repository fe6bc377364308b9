"""One namespace per test, and deletion of exactly that namespace.

kew prefixes every key with the manager's namespace (``<namespace>:{queue}:...``), so tests that
share a Redis stay apart by using unique namespaces. Deleting a test's data is a SCAN for
``<namespace>:*`` and UNLINK of what it finds: never FLUSHALL or FLUSHDB, which would wipe data
that is not the test's on a server the testkit did not start (design.md §8).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

__all__ = ["delete_namespace", "namespace_keys", "unique_namespace"]

DEFAULT_PREFIX: Final = "kewtest"
_SCAN_COUNT: Final = 1000
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def unique_namespace(prefix: str = DEFAULT_PREFIX) -> str:
    """Return a fresh namespace, e.g. ``kewtest-3f9c2a1b7d4e``.

    Args:
        prefix: text before the random part (str, no ``:``). Default ``"kewtest"``.

    Raises:
        ValueError: when ``prefix`` contains ``:``, ``{`` or ``}``.
    """
    if any(c in prefix for c in ":{}"):
        raise ValueError(f"namespace prefix must not contain ':', '{{' or '}}': {prefix!r}")
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _pattern(namespace: str) -> str:
    if not namespace:
        raise ValueError("refusing to match an empty namespace (it would match every key)")
    return _GLOB_SPECIAL.sub(r"\\\1", namespace) + ":*"


async def namespace_keys(client: Any, namespace: str) -> list[bytes]:
    """Return every key of ``namespace`` (SCAN, so it is safe on a busy server).

    Args:
        client: a ``redis.asyncio`` client (``Redis`` or ``RedisCluster``), or one that behaves
            the same (kew's ``memory://`` client).
        namespace: the namespace; keys matched are ``<namespace>:*``.

    Returns:
        The key names, as bytes (or str with ``decode_responses=True``).

    Raises:
        ValueError: when ``namespace`` is empty.
    """
    pattern = _pattern(namespace)
    return [key async for key in client.scan_iter(match=pattern, count=_SCAN_COUNT)]


async def delete_namespace(client: Any, namespace: str) -> int:
    """Delete every key of ``namespace`` and nothing else (SCAN + UNLINK, in batches).

    Args:
        client: as for :func:`namespace_keys`.
        namespace: the namespace to delete (non-empty).

    Returns:
        The number of keys deleted (int).

    Raises:
        ValueError: when ``namespace`` is empty.
    """
    keys = await namespace_keys(client, namespace)
    deleted = 0
    for start in range(0, len(keys), _SCAN_COUNT):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + _SCAN_COUNT]:
            pipe.execute_command("UNLINK", key)  # one key per command: valid on Redis Cluster
        deleted += sum(int(n) for n in await pipe.execute())
    return deleted
