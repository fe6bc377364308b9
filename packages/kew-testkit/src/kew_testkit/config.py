"""The testkit's settings, resolved once from CLI > ini > ``KEW_*`` environment > default.

This module owns :class:`TestkitConfig` and :func:`resolve_config`. It does not import pytest: the
plugin passes the CLI and ini values in as plain mappings, and code outside pytest (for example
``with kew_testkit.redis_server():`` in a script) resolves from the environment alone.

Settings, with their ini name / environment variable:

- ``backend`` (``kew_backend`` / ``KEW_BACKEND``): ``auto``, ``redis``, ``docker``, ``memory``,
  ``url``, ``cluster`` or ``sentinel``; default ``auto``.
- ``redis_url`` (``kew_redis_url`` / ``KEW_REDIS_URL``): a Redis to use as is; default none.
- ``redis_image`` (``kew_redis_image`` / ``KEW_REDIS_IMAGE``): Docker image; default ``redis:7``.
- ``redis_server`` (``kew_redis_server`` / ``KEW_REDIS_SERVER``): the ``redis-server`` binary
  (a name looked up on PATH, or a path); default ``redis-server``.
- ``startup_timeout`` (``kew_startup_timeout`` / ``KEW_STARTUP_TIMEOUT``): seconds to wait for a
  started server to answer PING; default 10.
- ``cluster_replicas`` (``kew_cluster_replicas`` / ``KEW_CLUSTER_REPLICAS``): replicas per master
  of the ``cluster`` backend's Redis Cluster; default 0.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, cast

__all__ = ["BackendName", "TestkitConfig", "resolve_config"]

BackendName = Literal["auto", "redis", "docker", "memory", "url", "cluster", "sentinel"]
BACKENDS: Final[tuple[BackendName, ...]] = (
    "auto",
    "redis",
    "docker",
    "memory",
    "url",
    "cluster",
    "sentinel",
)
DEFAULT_REDIS_IMAGE: Final = "redis:7"
DEFAULT_REDIS_SERVER: Final = "redis-server"
DEFAULT_STARTUP_TIMEOUT: Final = 10.0
DEFAULT_CLUSTER_REPLICAS: Final = 0

# setting name -> (ini name, environment variable)
_SOURCES: Final[dict[str, tuple[str, str]]] = {
    "backend": ("kew_backend", "KEW_BACKEND"),
    "redis_url": ("kew_redis_url", "KEW_REDIS_URL"),
    "redis_image": ("kew_redis_image", "KEW_REDIS_IMAGE"),
    "redis_server": ("kew_redis_server", "KEW_REDIS_SERVER"),
    "startup_timeout": ("kew_startup_timeout", "KEW_STARTUP_TIMEOUT"),
    "cluster_replicas": ("kew_cluster_replicas", "KEW_CLUSTER_REPLICAS"),
}


@dataclass(frozen=True)
class TestkitConfig:
    """How the testkit finds or starts a Redis. Validated on construction.

    Args:
        backend: ``"auto"`` (discover: URL, then redis-server, then Docker, then memory),
            ``"redis"`` (spawn ``redis-server``), ``"docker"`` (testcontainers), ``"memory"``
            (kew's embedded ``memory://``), ``"url"`` (use ``redis_url``), ``"cluster"`` (spawn
            a Redis Cluster of ``redis-server`` processes) or ``"sentinel"`` (spawn a primary,
            a replica and three Sentinels). ``"auto"`` never picks the last two. Default
            ``"auto"``.
        redis_url: URL of an existing Redis (``redis://``, ``rediss://``, ``unix://``); required
            when ``backend`` is ``"url"``, used first by ``"auto"``. Default None.
        redis_image: Docker image for the ``docker`` backend. Default ``"redis:7"``.
        redis_server: ``redis-server`` binary, a name on PATH or a path. Default ``"redis-server"``.
        startup_timeout: seconds (float > 0) to wait for a started server to answer PING.
            Default 10.0.
        cluster_replicas: replicas per master (int >= 0) of the ``cluster`` backend's three
            masters. Default 0.

    Raises:
        ValueError: for an unknown backend, ``backend="url"`` without a URL, a non-positive
            ``startup_timeout`` or a negative ``cluster_replicas``.
    """

    __test__ = False  # not a pytest test class, despite the name

    backend: BackendName = "auto"
    redis_url: str | None = None
    redis_image: str = DEFAULT_REDIS_IMAGE
    redis_server: str = DEFAULT_REDIS_SERVER
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    cluster_replicas: int = DEFAULT_CLUSTER_REPLICAS

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            choices = "|".join(BACKENDS)
            raise ValueError(f"kew backend must be one of {choices}, got {self.backend!r}")
        if self.backend == "url" and not self.redis_url:
            raise ValueError(
                "kew backend 'url' needs a Redis URL: pass --kew-redis-url, set the ini option "
                "kew_redis_url or the environment variable KEW_REDIS_URL"
            )
        if not self.startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {self.startup_timeout!r}")
        if not self.cluster_replicas >= 0:
            raise ValueError(f"cluster_replicas must be >= 0, got {self.cluster_replicas!r}")


def _pick(
    name: str,
    cli: Mapping[str, object | None],
    ini: Mapping[str, object | None],
    env: Mapping[str, str],
) -> str | None:
    ini_name, env_name = _SOURCES[name]
    for value in (cli.get(name), ini.get(ini_name), env.get(env_name)):
        if value is not None and str(value).strip() != "":
            return str(value).strip()
    return None


def resolve_config(
    cli: Mapping[str, object | None] | None = None,
    ini: Mapping[str, object | None] | None = None,
    env: Mapping[str, str] | None = None,
) -> TestkitConfig:
    """Resolve the settings once, the first non-empty value winning: CLI, ini, environment.

    Args:
        cli: command-line values keyed by setting name (``backend``, ``redis_url``, ...); None
            or empty values are skipped. Default: none.
        ini: ini values keyed by ini name (``kew_backend``, ``kew_redis_url``, ...). Default: none.
        env: the environment to read ``KEW_*`` from. Default: ``os.environ``.

    Returns:
        The validated :class:`TestkitConfig`.

    Raises:
        ValueError: when a value is invalid (see :class:`TestkitConfig`), naming where it came from.
    """
    cli = cli or {}
    ini = ini or {}
    env = os.environ if env is None else env
    values = {name: _pick(name, cli, ini, env) for name in _SOURCES}
    timeout = values["startup_timeout"]
    try:
        startup_timeout = float(timeout) if timeout is not None else DEFAULT_STARTUP_TIMEOUT
    except ValueError:
        raise ValueError(f"startup_timeout must be a number of seconds, got {timeout!r}") from None
    replicas = values["cluster_replicas"]
    try:
        cluster_replicas = int(replicas) if replicas is not None else DEFAULT_CLUSTER_REPLICAS
    except ValueError:
        raise ValueError(f"cluster_replicas must be a whole number, got {replicas!r}") from None
    return TestkitConfig(
        backend=cast(BackendName, (values["backend"] or "auto").lower()),
        redis_url=values["redis_url"],
        redis_image=values["redis_image"] or DEFAULT_REDIS_IMAGE,
        redis_server=values["redis_server"] or DEFAULT_REDIS_SERVER,
        startup_timeout=startup_timeout,
        cluster_replicas=cluster_replicas,
    )
