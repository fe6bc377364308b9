"""Creates Redis clients from URLs: the only place kew opens a connection.

- ``redis://``, ``rediss://`` (TLS), ``unix://``: redis-py's asyncio client on binary
  connections (``decode_responses=False``); redis-py uses hiredis for parsing when installed.
- ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` for TLS): kew's
  :class:`~kew.cluster.ClusterClient`, started from those nodes (any subset of the cluster: it
  reads the rest with CLUSTER SLOTS, and again after MOVED or a failover), one plain redis-py
  client per primary.
- ``redis+sentinel://host:port[,host:port...]/<service>[/db]`` (``rediss+sentinel://``): the
  primary that Sentinel names for ``<service>``, looked up again after a failover (redis-py's
  ``Sentinel.master_for``). Credentials in the URL are the primary's; a ``sentinel_password``
  query parameter, when the sentinels need one of their own.
- ``memory://`` or ``memory://name``: the embedded in-process Redis (fakeredis with its Lua
  engine, installed by ``pip install kew[memory]``). Managers in one process that use the same
  ``memory://`` URL share one server, as processes share a real Redis.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import SSLConnection

from .cluster import ClusterClient
from .exceptions import InvalidArgumentError

__all__ = ["create_client", "is_cluster_url", "is_memory_url", "is_sentinel_url", "mask_url"]

_CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
_SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")

_memory_servers: dict[str, Any] = {}

# Connections one manager may open (redis-py's default is 100, which 100 concurrent
# wait_for_task calls exhaust). redis-py's blocking pool would wait instead of raising past it,
# but costs about a fifth of the command rate, so the plain pool with a high limit is used.
MAX_CONNECTIONS = 4096


def is_memory_url(url: str) -> bool:
    """True for the embedded backend's URLs (``memory://...``)."""
    return url.startswith("memory://")


def is_sentinel_url(url: str) -> bool:
    """True for Sentinel URLs (``redis+sentinel://...``, ``rediss+sentinel://...``)."""
    return url.startswith(_SENTINEL_SCHEMES)


def is_cluster_url(url: str) -> bool:
    """True for Redis Cluster URLs (``redis+cluster://...``, ``rediss+cluster://...``)."""
    return url.startswith(_CLUSTER_SCHEMES)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and logs).

    The credentials end at the last ``@`` before the host, so passwords containing ``@`` or
    ``:`` are masked whole; a ``password=`` query parameter is masked too.
    """
    url = re.sub(r"(?i)([?&](?:sentinel_)?password=)[^&]*", r"\1***", url)
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


def create_client(url: str, socket_timeout: float | None = None) -> Any:
    """Return an asyncio Redis client for ``url`` (no I/O happens until first use).

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://...``, ``unix:///path``,
            ``redis+cluster://host:port[,host:port...]``, ``redis+sentinel://host:port[,...]/
            service[/db]`` (and their ``rediss+`` TLS forms), or ``memory://[name]``.
        socket_timeout: seconds a read may take (None, the default: no read timeout). A read
            timeout makes redis-py wrap every command in ``asyncio.wait_for``, which halves the
            command rate; dead connections are found by TCP keepalive and health checks instead.

    Returns:
        ``redis.asyncio.Redis``, or a :class:`kew.cluster.ClusterClient` for a cluster URL.

    Raises:
        InvalidArgumentError: not a str, an unsupported scheme, a cluster or sentinel URL
            without a host list (or a sentinel URL without a service name), or ``memory://``
            without the ``kew[memory]`` extra installed.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"redis_url must be a URL string, got {url!r}")
    if is_memory_url(url):
        return _memory_client(url)
    if is_cluster_url(url):
        return _cluster_client(url, socket_timeout)
    if is_sentinel_url(url):
        return _sentinel_client(url, socket_timeout)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise InvalidArgumentError(f"unsupported redis_url scheme: {mask_url(url)!r}")
    kwargs = _connection_options(socket_timeout, tcp=not url.startswith("unix://"))
    kwargs["max_connections"] = MAX_CONNECTIONS
    pool = ConnectionPool.from_url(url, **kwargs)
    return Redis.from_pool(pool)


def _connection_options(socket_timeout: float | None, tcp: bool = True) -> dict[str, Any]:
    """The options every kew connection gets, whatever the topology."""
    kwargs: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 10.0,
        "health_check_interval": 30,
    }
    if tcp:
        kwargs["socket_keepalive"] = True
        kwargs["socket_keepalive_options"] = _keepalive_options()
    kwargs.update(_no_maintenance_notifications())
    return kwargs


def _split_hosts(url: str) -> tuple[list[tuple[str, int]], Any]:
    """Parse ``scheme://[user:password@]h1:p1,h2:p2/...`` into ((host, port) list, parts)."""
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    creds, at, hostlist = netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon:
            host, port = item.strip(), "6379"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(
                f"{scheme} URL needs host:port[,host:port...], got {mask_url(url)!r}"
            )
        nodes.append((host, int(port)))
    # urlsplit cannot read a host list; give it the credentials and the rest with one host.
    parts = urlsplit(f"redis://{creds}{at}h{rest[len(netloc) :]}")
    return nodes, parts


def _credentials(parts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    return out


def _cluster_client(url: str, socket_timeout: float | None) -> ClusterClient:
    nodes, parts = _split_hosts(url)
    if parts.path not in ("", "/", "/0"):
        raise InvalidArgumentError(f"Redis Cluster has only database 0: {mask_url(url)!r}")
    options = _connection_options(socket_timeout)
    options.update(_credentials(parts))
    options["max_connections"] = MAX_CONNECTIONS
    if url.startswith("rediss+"):
        options["connection_class"] = SSLConnection
    return ClusterClient(nodes, options)


def _sentinel_client(url: str, socket_timeout: float | None) -> Redis:
    from redis.asyncio import sentinel as _sentinel

    Sentinel: Any = _sentinel.Sentinel  # untyped in redis-py

    nodes, parts = _split_hosts(url)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise InvalidArgumentError(
            f"redis+sentinel URL needs /<service name>[/db] after the hosts: {mask_url(url)!r}"
        )
    query = parse_qs(parts.query)
    kwargs = _connection_options(socket_timeout)
    kwargs.update(_credentials(parts))
    kwargs["db"] = int(path[1]) if len(path) == 2 else 0
    if url.startswith("rediss+"):
        kwargs["ssl"] = True
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 10.0}
    if "sentinel_password" in query:
        sentinel_kwargs["password"] = query["sentinel_password"][0]
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs, **kwargs)
    client: Redis = sentinel.master_for(unquote(path[0]), max_connections=MAX_CONNECTIONS)
    return client


def _no_maintenance_notifications() -> dict[str, Any]:
    """redis-py >= 7 skips its stale-connection check while "maintenance notifications" are on
    (the default), so a connection the server closed (failover, CLIENT KILL, a proxy) would be
    reused and fail once. kew turns them off where redis-py has them."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py 5 / 6
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}
