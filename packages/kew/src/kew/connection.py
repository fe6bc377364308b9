"""Creates Redis clients from URLs: the only place kew opens a connection.

- ``redis://``, ``rediss://`` (TLS), ``unix://``: redis-py's asyncio client on binary
  connections (``decode_responses=False``); redis-py uses hiredis for parsing when installed.
- ``memory://`` or ``memory://name``: the embedded in-process Redis (fakeredis with its Lua
  engine, installed by ``pip install kew[memory]``). Managers in one process that use the same
  ``memory://`` URL share one server, as processes share a real Redis.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from redis.asyncio import ConnectionPool, Redis

from .exceptions import InvalidArgumentError

__all__ = ["create_client", "is_memory_url", "mask_url"]

_memory_servers: dict[str, Any] = {}

# Connections one manager may open (redis-py's default is 100, which 100 concurrent
# wait_for_task calls exhaust). redis-py's blocking pool would wait instead of raising past it,
# but costs about a fifth of the command rate, so the plain pool with a high limit is used.
MAX_CONNECTIONS = 4096


def is_memory_url(url: str) -> bool:
    """True for the embedded backend's URLs (``memory://...``)."""
    return url.startswith("memory://")


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and logs).

    The credentials end at the last ``@`` before the host, so passwords containing ``@`` or
    ``:`` are masked whole; a ``password=`` query parameter is masked too.
    """
    url = re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    creds, at, host = netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = creds.partition(":")
    masked = f"{user}:***" if colon else creds
    return f"{scheme}://{masked}@{host}{slash}{path}"


def _memory_client(url: str) -> Redis:
    try:
        import fakeredis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidArgumentError(
            "redis_url='memory://' needs the embedded backend: pip install 'kew[memory]'"
        ) from exc
    server = _memory_servers.get(url)
    if server is None:
        server = fakeredis.FakeServer(version=(7,))
        _memory_servers[url] = server
    client: Redis = fakeredis.FakeAsyncRedis(
        server=server, decode_responses=False, max_connections=MAX_CONNECTIONS * 4
    )
    return client


def _keepalive_options() -> dict[int, int | bytes]:
    """TCP keepalive that notices a dead peer within about 25 s, where the OS supports it."""
    opts: dict[int, int | bytes] = {}
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            opts[getattr(socket, name)] = value
    return opts


def create_client(url: str, socket_timeout: float | None = None) -> Redis:
    """Return an asyncio Redis client for ``url`` (no I/O happens until first use).

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://...``, ``unix:///path``,
            or ``memory://[name]``.
        socket_timeout: seconds a read may take (None, the default: no read timeout). A read
            timeout makes redis-py wrap every command in ``asyncio.wait_for``, which halves the
            command rate; dead connections are found by TCP keepalive and health checks instead.

    Raises:
        InvalidArgumentError: not a str, an unsupported scheme, or ``memory://`` without the
            ``kew[memory]`` extra installed.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"redis_url must be a URL string, got {url!r}")
    if is_memory_url(url):
        return _memory_client(url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidArgumentError(f"unsupported redis_url scheme: {mask_url(url)!r}")
    kwargs: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 10.0,
        "health_check_interval": 30,
        "max_connections": MAX_CONNECTIONS,
    }
    if not url.startswith("unix://"):
        kwargs["socket_keepalive"] = True
        kwargs["socket_keepalive_options"] = _keepalive_options()
    kwargs.update(_no_maintenance_notifications())
    pool = ConnectionPool.from_url(url, **kwargs)
    return Redis.from_pool(pool)


def _no_maintenance_notifications() -> dict[str, Any]:
    """redis-py >= 7 skips its stale-connection check while "maintenance notifications" are on
    (the default), so a connection the server closed (failover, CLIENT KILL, a proxy) would be
    reused and fail once. kew turns them off where redis-py has them."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py 5 / 6
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}
