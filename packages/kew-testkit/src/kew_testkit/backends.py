"""Which Redis the tests run on, and its lifecycle. No pytest here.

Discovery order for ``backend="auto"`` (design.md §8):

1. ``url``: an explicit URL (``--kew-redis-url`` / ``kew_redis_url`` / ``KEW_REDIS_URL``), used as
   is; the testkit never FLUSHALLs it (each test works in its own namespace);
2. ``redis``: a ``redis-server`` binary on PATH, started on a free loopback port and stopped after;
3. ``docker``: ``redis:7`` (or ``KEW_REDIS_IMAGE``) through testcontainers, when it is installed
   (``pip install 'kew-testkit[docker]'``) and a Docker daemon answers;
4. ``memory``: kew's embedded in-process Redis (``memory://``, fakeredis running kew's Lua).

Two more backends are only used when asked for (``auto`` never picks them):

- ``cluster``: a Redis Cluster of local ``redis-server`` processes, 3 masters plus
  ``cluster_replicas`` replicas each (:class:`~kew_testkit.RedisClusterServer`), at
  ``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3``;
- ``sentinel``: a primary, a replica and three Sentinels
  (:class:`~kew_testkit.RedisSentinelServer`), at
  ``redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/kewprimary``.

Forcing ``redis``, ``docker``, ``cluster`` or ``sentinel`` never falls back: it fails with
:class:`BackendUnavailableError` saying what is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from .cluster import RedisClusterServer, find_redis_cli
from .config import BackendName, TestkitConfig, resolve_config
from .redis_server import RedisServer, redis_server_version
from .sentinel import RedisSentinelServer

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "choose_backend",
    "describe_choice",
    "docker_available",
    "mask_url",
    "redis_server",
]

ResolvedBackend = Literal["url", "redis", "docker", "memory", "cluster", "sentinel"]
_CLUSTER_MASTERS = 3
_DOCKER_HINT = "install it with: pip install 'kew-testkit[docker]'"


class BackendUnavailableError(RuntimeError):
    """The chosen backend cannot run here (binary, package or daemon missing, URL unreachable)."""


@dataclass(frozen=True)
class Backend:
    """The Redis a test run uses.

    Attributes:
        name: ``"url"``, ``"redis"``, ``"docker"``, ``"memory"``, ``"cluster"`` or
            ``"sentinel"``.
        url: what to pass to ``TaskQueueManager(redis_url=...)`` (``memory://`` for memory,
            ``redis+cluster://...`` for cluster, ``redis+sentinel://.../kewprimary`` for
            sentinel).
        version: the Redis version (``"7.0.15"``); for memory, the fakeredis version; None when
            unknown.
        owned: True when the testkit started this server and stops it afterwards.
        topology: for cluster and sentinel, what was started (``"3 masters + 3 replicas"``,
            ``"1 primary + 1 replica, 3 sentinels"``); else None.
        server: the object running the processes the testkit started (a
            :class:`~kew_testkit.RedisServer`, :class:`~kew_testkit.RedisClusterServer` or
            :class:`~kew_testkit.RedisSentinelServer`), e.g. to kill a node; else None.
    """

    name: ResolvedBackend
    url: str
    version: str | None
    owned: bool
    topology: str | None = None
    server: RedisServer | RedisClusterServer | RedisSentinelServer | None = field(
        default=None, compare=False, repr=False
    )

    def describe(self) -> str:
        """One line for reports, e.g. ``redis-server 7.0.15 at redis://127.0.0.1:40123/0`` or
        ``Redis Cluster 7.0.15, 3 masters + 3 replicas at redis+cluster://...``.
        """
        if self.name == "memory":
            return f"memory:// (embedded fakeredis {self.version or '?'})"
        label = {
            "url": "Redis",
            "redis": "redis-server",
            "docker": "docker Redis",
            "cluster": "Redis Cluster",
            "sentinel": "Redis Sentinel",
        }[self.name]
        version = self.version or "(version unknown)"
        topology = f", {self.topology}" if self.topology else ""
        return f"{label} {version}{topology} at {mask_url(self.url)}"


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and reports); a
    ``password=`` or ``sentinel_password=`` query parameter is masked too.
    """
    url = re.sub(r"(?i)([?&](?:sentinel_)?password=)[^&#]*", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def docker_available() -> tuple[bool, str]:
    """Say whether the ``docker`` backend can run: testcontainers importable, daemon answering.

    Returns:
        ``(True, "")`` or ``(False, reason)``; the reason is a sentence for the user.
    """
    try:
        importlib.import_module("testcontainers.redis")
        docker: Any = importlib.import_module("docker")
    except ImportError:
        return False, f"testcontainers is not installed; {_DOCKER_HINT}"
    try:
        docker.from_env(timeout=3).ping()
    except Exception as exc:  # docker raises several unrelated types here
        return False, f"no Docker daemon answers ({type(exc).__name__}: {exc})"
    return True, ""


def choose_backend(config: TestkitConfig) -> ResolvedBackend:
    """Resolve ``config.backend`` to a concrete backend, without starting anything.

    Args:
        config: the resolved settings.

    Returns:
        ``"url"``, ``"redis"``, ``"docker"``, ``"memory"``, ``"cluster"`` or ``"sentinel"``.

    Raises:
        BackendUnavailableError: when ``redis``, ``docker``, ``cluster`` or ``sentinel`` is
            forced and cannot run here (``cluster`` also needs ``redis-cli``).
    """
    forced: BackendName = config.backend
    if forced == "url" or (forced == "auto" and config.redis_url):
        return "url"
    has_binary = shutil.which(config.redis_server) is not None
    if forced in ("cluster", "sentinel"):
        if not has_binary:
            raise BackendUnavailableError(
                f"--kew-backend={forced}: no {config.redis_server!r} binary on PATH; install "
                "Redis (e.g. apt-get install redis-server) or set KEW_REDIS_SERVER to its path"
            )
        if forced == "cluster" and find_redis_cli(config.redis_server) is None:
            raise BackendUnavailableError(
                "--kew-backend=cluster: no 'redis-cli' binary next to redis-server or on PATH "
                "(redis-cli --cluster create joins the nodes); install Redis' tools"
            )
        return forced
    if forced == "redis" and not has_binary:
        raise BackendUnavailableError(
            f"--kew-backend=redis: no {config.redis_server!r} binary on PATH; install Redis "
            "(e.g. apt-get install redis-server) or set KEW_REDIS_SERVER to its path"
        )
    if forced == "redis" or (forced == "auto" and has_binary):
        return "redis"
    if forced == "docker":
        ok, reason = docker_available()
        if not ok:
            raise BackendUnavailableError(f"--kew-backend=docker: {reason}")
        return "docker"
    if forced == "auto" and docker_available()[0]:
        return "docker"
    return "memory"


def describe_choice(config: TestkitConfig) -> str:
    """One line naming the backend the config resolves to, cheaply (no server is started).

    Args:
        config: the resolved settings.

    Returns:
        e.g. ``backend=redis (redis-server 7.0.15, started on first use)``.

    Raises:
        BackendUnavailableError: as :func:`choose_backend`.
    """
    name = choose_backend(config)
    if name == "url":
        assert config.redis_url is not None
        return f"backend=url ({mask_url(config.redis_url)})"
    if name == "redis":
        version = redis_server_version(config.redis_server) or "version unknown"
        return f"backend=redis (redis-server {version}, started on first use)"
    if name == "docker":
        return f"backend=docker ({config.redis_image}, started on first use)"
    if name in ("cluster", "sentinel"):
        version = redis_server_version(config.redis_server) or "version unknown"
        label = "Redis Cluster" if name == "cluster" else "Redis Sentinel"
        return (
            f"backend={name} ({label} {version}, {_topology(config, name)}, started on first use)"
        )
    return f"backend=memory (embedded fakeredis {_fakeredis_version()})"


def _topology(config: TestkitConfig, name: ResolvedBackend) -> str:
    if name == "sentinel":
        return "1 primary + 1 replica, 3 sentinels"
    replicas = _CLUSTER_MASTERS * config.cluster_replicas
    return f"{_CLUSTER_MASTERS} masters + {replicas} replica{'' if replicas == 1 else 's'}"


def _fakeredis_version() -> str | None:
    try:
        return importlib.metadata.version("fakeredis")
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe_urls(url: str) -> list[str]:
    """Plain ``redis://`` URLs to ask for the version: the URL itself, or for a
    ``redis+cluster://`` / ``redis+sentinel://`` URL each of its hosts (a Sentinel with the
    ``sentinel_password`` query parameter, if any, as kew does).
    """
    scheme, _, rest = url.partition("://")
    base, plus, kind = scheme.partition("+")
    if not plus:
        return [url]
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    creds, at, hosts = netloc.rpartition("@")
    if kind == "sentinel":
        password = parse_qs(urlsplit(url).query).get("sentinel_password", [None])[0]
        creds, at = (f":{password}", "@") if password else ("", "")
    return [f"{base}://{creds}{at}{host.strip()}/0" for host in hosts.split(",") if host.strip()]


def _server_version(url: str) -> str:
    """Ask a running Redis for its version; BackendUnavailableError when it does not answer.

    For a cluster or sentinel URL the first of its hosts that answers is asked.
    """
    import redis

    error: Exception | None = None
    for probe in _probe_urls(url):
        client: Any = redis.Redis.from_url(probe, socket_timeout=5, socket_connect_timeout=5)
        try:
            return str(client.info("server")["redis_version"])
        except redis.RedisError as exc:
            error = exc
        finally:
            client.close()
    raise BackendUnavailableError(f"cannot reach Redis at {mask_url(url)}: {error}")


@contextlib.contextmanager
def _docker(config: TestkitConfig) -> Iterator[Backend]:
    from testcontainers.redis import RedisContainer

    container = RedisContainer(config.redis_image)
    container.start()
    try:
        host = container.get_container_host_ip()
        url = f"redis://{host}:{container.get_exposed_port(6379)}/0"
        yield Backend("docker", url, _server_version(url), owned=True)
    finally:
        container.stop()


@contextlib.contextmanager
def redis_server(
    config: TestkitConfig | None = None, *, backend: BackendName | None = None
) -> Iterator[Backend]:
    """Provide a Redis for the duration of a ``with`` block, with or without pytest.

    Example::

        with kew_testkit.redis_server() as backend:
            manager = TaskQueueManager(redis_url=backend.url, namespace="demo")

    Args:
        config: settings; None (default) resolves them from the ``KEW_*`` environment.
        backend: overrides ``config.backend`` (``"auto"``, ``"redis"``, ``"docker"``,
            ``"memory"``, ``"url"``, ``"cluster"``, ``"sentinel"``). Default None.

    Yields:
        The :class:`Backend` in use; a server the testkit started is stopped on exit (also on
        Ctrl-C).

    Raises:
        BackendUnavailableError: a forced backend cannot run, or a given URL does not answer.
        RedisServerError: a ``redis-server`` was found but did not start (or, for cluster,
            ``redis-cli --cluster create`` failed).
        TimeoutError: a cluster or sentinel setup did not become ready in time.
    """
    config = config or resolve_config()
    if backend is not None:
        config = dataclasses.replace(config, backend=backend)
    name = choose_backend(config)
    if name == "url":
        assert config.redis_url is not None
        yield Backend("url", config.redis_url, _server_version(config.redis_url), owned=False)
    elif name == "redis":
        server = RedisServer(config.redis_server, startup_timeout=config.startup_timeout)
        with server:
            yield Backend("redis", server.url, server.version, owned=True, server=server)
    elif name == "cluster":
        cluster = RedisClusterServer(
            config.redis_server,
            masters=_CLUSTER_MASTERS,
            replicas=config.cluster_replicas,
            startup_timeout=config.startup_timeout,
        )
        with cluster:
            topology = _topology(config, name)
            yield Backend(name, cluster.url, cluster.version, True, topology, cluster)
    elif name == "sentinel":
        with RedisSentinelServer(
            config.redis_server, startup_timeout=config.startup_timeout
        ) as sentinel:
            topology = _topology(config, name)
            yield Backend(name, sentinel.url, sentinel.version, True, topology, sentinel)
    elif name == "docker":
        with _docker(config) as started:
            yield started
    else:
        yield Backend("memory", "memory://", _fakeredis_version(), owned=False)
