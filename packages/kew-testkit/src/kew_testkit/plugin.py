"""The pytest plugin (entry point ``pytest11: kew``): options, report lines and fixtures.

Thin by design: every fixture is a few lines over the pytest-free modules of this package.

Options (CLI > ini > environment > default): ``--kew-backend`` / ``kew_backend`` / ``KEW_BACKEND``
(``auto|redis|docker|memory|url|cluster|sentinel``), ``--kew-redis-url`` / ``kew_redis_url`` /
``KEW_REDIS_URL``, ``--kew-cluster-replicas`` / ``kew_cluster_replicas`` /
``KEW_CLUSTER_REPLICAS``, and the ini-or-environment ``kew_redis_image`` / ``KEW_REDIS_IMAGE``,
``kew_redis_server`` / ``KEW_REDIS_SERVER``, ``kew_startup_timeout`` / ``KEW_STARTUP_TIMEOUT``.

Fixtures: ``kew_backend``, ``kew_redis_url``, ``kew_redis_cluster`` and ``kew_redis_sentinel``
(session), ``fake_clock``, ``kew_manager_factory``, ``kew_manager`` and ``kew_eager_manager``
(function).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
import pytest_asyncio

from .backends import Backend, BackendUnavailableError, choose_backend, describe_choice
from .backends import redis_server as _redis_server
from .clock import FakeClock
from .cluster import RedisClusterServer
from .config import BACKENDS, BackendName, TestkitConfig, resolve_config
from .eager import EagerManager
from .managers import ManagerFactory
from .sentinel import RedisSentinelServer

_CONFIG = pytest.StashKey[TestkitConfig]()
_BACKEND = pytest.StashKey[Backend]()
_INI = (
    "kew_backend",
    "kew_redis_url",
    "kew_redis_image",
    "kew_redis_server",
    "kew_startup_timeout",
    "kew_cluster_replicas",
)
_STARTED = ("redis", "docker", "cluster", "sentinel")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kew", "kew task queue (kew-testkit)")
    group.addoption(
        "--kew-backend",
        choices=BACKENDS,
        default=None,
        help="Redis for kew fixtures: auto (default; URL, redis-server, docker, memory), "
        "redis, docker, memory, url, cluster (a local Redis Cluster) or sentinel (a local "
        "primary, replica and 3 Sentinels). Env: KEW_BACKEND.",
    )
    group.addoption(
        "--kew-redis-url",
        default=None,
        help="use this Redis (redis://...) instead of starting one. Env: KEW_REDIS_URL.",
    )
    group.addoption(
        "--kew-cluster-replicas",
        default=None,
        metavar="N",
        help="replicas per master of the cluster backend's 3 masters (default 0). "
        "Env: KEW_CLUSTER_REPLICAS.",
    )
    for name in _INI:
        parser.addini(name, f"kew-testkit: {name} (see kew-testkit's README)", default=None)


def pytest_configure(config: pytest.Config) -> None:
    cli = {
        "backend": config.getoption("kew_backend"),
        "redis_url": config.getoption("kew_redis_url"),
        "cluster_replicas": config.getoption("kew_cluster_replicas"),
    }
    try:
        resolved = resolve_config(cli, {name: config.getini(name) for name in _INI})
        if resolved.backend in _STARTED:
            choose_backend(resolved)  # a forced backend that cannot run stops the run at once
    except (ValueError, BackendUnavailableError) as exc:
        raise pytest.UsageError(f"kew-testkit: {exc}") from exc
    config.stash[_CONFIG] = resolved


def pytest_report_header(config: pytest.Config) -> str:
    try:
        return f"kew-testkit: {describe_choice(config.stash[_CONFIG])}"
    except BackendUnavailableError as exc:
        return f"kew-testkit: {exc}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    backend = config.stash.get(_BACKEND, None)
    if backend is not None:
        terminalreporter.write_line(f"kew-testkit: tests ran on {backend.describe()}")


@pytest.fixture(scope="session")
def kew_backend(pytestconfig: pytest.Config) -> Iterator[Backend]:
    """The session's Redis (a :class:`~kew_testkit.Backend`), started on first use."""
    with _redis_server(pytestconfig.stash[_CONFIG]) as backend:
        pytestconfig.stash[_BACKEND] = backend
        yield backend


@contextlib.contextmanager
def _topology(request: pytest.FixtureRequest, name: BackendName) -> Iterator[Backend]:
    """The session backend when it is ``name``, else one started for the caller (or a skip)."""
    config = request.config.stash[_CONFIG]
    if config.backend == name:
        yield request.getfixturevalue("kew_backend")
        return
    config = dataclasses.replace(config, backend=name)
    try:
        choose_backend(config)
    except BackendUnavailableError as exc:
        pytest.skip(f"kew-testkit: {exc}")
    with _redis_server(config) as backend:
        yield backend


@pytest.fixture(scope="session")
def kew_redis_cluster(request: pytest.FixtureRequest) -> Iterator[RedisClusterServer]:
    """The session's Redis Cluster (a :class:`~kew_testkit.RedisClusterServer`).

    With ``--kew-backend=cluster`` it is the backend's cluster (the one behind
    ``kew_redis_url``); otherwise a cluster of its own (3 masters, ``kew_cluster_replicas``
    replicas each) is started on first use and stopped at the end of the session. The test is
    skipped when ``redis-server`` or ``redis-cli`` is missing. Tests that kill nodes change it
    for the rest of the session.
    """
    with _topology(request, "cluster") as backend:
        yield cast(RedisClusterServer, backend.server)


@pytest.fixture(scope="session")
def kew_redis_sentinel(request: pytest.FixtureRequest) -> Iterator[RedisSentinelServer]:
    """The session's Sentinel setup (a :class:`~kew_testkit.RedisSentinelServer`).

    With ``--kew-backend=sentinel`` it is the backend's (the one behind ``kew_redis_url``);
    otherwise one of its own (a primary, a replica, 3 Sentinels) is started on first use and
    stopped at the end of the session. The test is skipped when ``redis-server`` is missing.
    Tests that kill the primary change it for the rest of the session.
    """
    with _topology(request, "sentinel") as backend:
        yield cast(RedisSentinelServer, backend.server)


@pytest.fixture(scope="session")
def kew_redis_url(kew_backend: Backend) -> str:
    """URL of the session's Redis, for ``TaskQueueManager(redis_url=...)``."""
    return kew_backend.url


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`~kew_testkit.FakeClock`; the test's kew managers run on it."""
    return FakeClock()


@pytest_asyncio.fixture
async def kew_manager_factory(
    request: pytest.FixtureRequest, kew_redis_url: str
) -> AsyncIterator[ManagerFactory]:
    """Makes initialized managers sharing the session's Redis and one fresh namespace."""
    wants_clock = "fake_clock" in request.fixturenames
    clock = request.getfixturevalue("fake_clock") if wants_clock else None
    factory = ManagerFactory(kew_redis_url, clock=clock)
    yield factory
    await factory.close()


@pytest_asyncio.fixture
async def kew_manager(kew_manager_factory: ManagerFactory) -> Any:
    """An initialized ``TaskQueueManager`` in a fresh namespace, shut down after the test."""
    return await kew_manager_factory()


@pytest_asyncio.fixture
async def kew_eager_manager(kew_manager: Any, fake_clock: FakeClock) -> EagerManager:
    """``kew_manager`` on a fake clock, whose ``submit_task`` returns the final TaskInfo."""
    return EagerManager(kew_manager, clock=fake_clock)
