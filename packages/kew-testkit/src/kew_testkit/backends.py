"""Which Redis the tests run on, and its lifecycle. No pytest here.

Discovery order for ``backend="auto"`` (design.md §8):

1. ``url``: an explicit URL (``--kew-redis-url`` / ``kew_redis_url`` / ``KEW_REDIS_URL``), used as
   is; the testkit never FLUSHALLs it (each test works in its own namespace);
2. ``redis``: a ``redis-server`` binary on PATH, started on a free loopback port and stopped after;
3. ``docker``: ``redis:7`` (or ``KEW_REDIS_IMAGE``) through testcontainers, when it is installed
   (``pip install 'kew-testkit[docker]'``) and a Docker daemon answers;
4. ``memory``: kew's embedded in-process Redis (``memory://``, fakeredis running kew's Lua).

Forcing ``redis`` or ``docker`` never falls back: it fails with :class:`BackendUnavailableError`
saying what is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from .config import BackendName, TestkitConfig, resolve_config
from .redis_server import RedisServer, redis_server_version

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "choose_backend",
    "describe_choice",
    "docker_available",
    "mask_url",
    "redis_server",
]

ResolvedBackend = Literal["url", "redis", "docker", "memory"]
_DOCKER_HINT = "install it with: pip install 'kew-testkit[docker]'"


class BackendUnavailableError(RuntimeError):
    """The chosen backend cannot run here (binary, package or daemon missing, URL unreachable)."""


@dataclass(frozen=True)
class Backend:
    """The Redis a test run uses.

    Attributes:
        name: ``"url"``, ``"redis"``, ``"docker"`` or ``"memory"``.
        url: what to pass to ``TaskQueueManager(redis_url=...)`` (``memory://`` for memory).
        version: the Redis version (``"7.0.15"``); for memory, the fakeredis version; None when
            unknown.
        owned: True when the testkit started this server and stops it afterwards.
    """

    name: ResolvedBackend
    url: str
    version: str | None
    owned: bool

    def describe(self) -> str:
        """One line for reports, e.g. ``redis-server 7.0.15 at redis://127.0.0.1:40123/0``."""
        if self.name == "memory":
            return f"memory:// (embedded fakeredis {self.version or '?'})"
        label = {"url": "Redis", "redis": "redis-server", "docker": "docker Redis"}[self.name]
        return f"{label} {self.version or '(version unknown)'} at {mask_url(self.url)}"


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and reports)."""
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
        ``"url"``, ``"redis"``, ``"docker"`` or ``"memory"``.

    Raises:
        BackendUnavailableError: when ``redis`` or ``docker`` is forced and cannot run here.
    """
    forced: BackendName = config.backend
    if forced == "url" or (forced == "auto" and config.redis_url):
        return "url"
    has_binary = shutil.which(config.redis_server) is not None
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
    return f"backend=memory (embedded fakeredis {_fakeredis_version()})"


def _fakeredis_version() -> str | None:
    try:
        return importlib.metadata.version("fakeredis")
    except importlib.metadata.PackageNotFoundError:
        return None


def _server_version(url: str) -> str:
    """Ask a running Redis for its version; BackendUnavailableError when it does not answer."""
    import redis

    client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        raise BackendUnavailableError(f"cannot reach Redis at {mask_url(url)}: {exc}") from exc
    finally:
        client.close()


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
            ``"memory"``, ``"url"``). Default None.

    Yields:
        The :class:`Backend` in use; a server the testkit started is stopped on exit (also on
        Ctrl-C).

    Raises:
        BackendUnavailableError: a forced backend cannot run, or a given URL does not answer.
        RedisServerError: a ``redis-server`` was found but did not start.
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
            yield Backend("redis", server.url, server.version, owned=True)
    elif name == "docker":
        with _docker(config) as started:
            yield started
    else:
        yield Backend("memory", "memory://", _fakeredis_version(), owned=False)
