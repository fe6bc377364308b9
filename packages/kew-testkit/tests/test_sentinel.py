"""The throwaway Sentinel setup: a Sentinel client finds the primary, a killed primary is replaced
by its replica, and nothing is left running after. Plus the ``sentinel`` backend in a pytest run."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import Iterator
from typing import Any

import kew_testkit
import pytest
from kew_testkit import (
    RedisSentinelServer,
    RedisServer,
    RedisServerError,
    TestkitConfig,
    redis_server,
)
from redis.asyncio.sentinel import Sentinel

pytest_plugins = ["pytester"]

HAS_REDIS_SERVER = shutil.which("redis-server") is not None
needs_redis_server = pytest.mark.skipif(not HAS_REDIS_SERVER, reason="no redis-server on PATH")
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def setup(procs: Any) -> Iterator[RedisSentinelServer]:
    """A primary, a replica and 3 Sentinels of the test's own; checked to be gone after."""
    if not HAS_REDIS_SERVER:
        pytest.skip("no redis-server on PATH")
    with RedisSentinelServer() as started:
        yield started
        servers = started.nodes + started.sentinel_nodes
        ports, dirs = [s.port for s in servers], [s._dir for s in servers]
    assert len(ports) == 5 and procs.all_gone(ports) == []
    assert not any(d is not None and d.exists() for d in dirs)


async def _close(sentinel: Any, *clients: Any) -> None:
    for client in clients:
        await client.aclose()
    for connection in sentinel.sentinels:
        await connection.aclose()


@needs_redis_server
@pytest.mark.slow
async def test_sentinel_finds_the_primary_and_fails_over(setup: RedisSentinelServer) -> None:
    seeds = ",".join(f"127.0.0.1:{port}" for _host, port in setup.sentinels)
    assert setup.url == f"redis+sentinel://{seeds}/kewprimary"
    assert len(setup.sentinels) == 3 and len(setup.replicas) == 1
    assert setup.describe() == (
        f"Redis Sentinel {setup.version}, 1 primary + 1 replica, 3 sentinels at {setup.url}"
    )
    with redis_server(TestkitConfig(redis_url=setup.url)) as backend:  # version via a Sentinel
        assert (backend.name, backend.version) == ("url", setup.version)

    sentinel = Sentinel(setup.sentinels, socket_timeout=5)
    master = sentinel.master_for("kewprimary", decode_responses=True)
    replica = sentinel.slave_for("kewprimary", decode_responses=True)
    assert await sentinel.discover_master("kewprimary") == setup.primary
    await master.set("k", "before")
    assert await master.get("k") == "before"
    assert await master.execute_command("WAIT", 1, 5000) == 1  # the replica has it too
    assert await replica.get("k") == "before"
    old_replica = setup.replicas[0]
    await _close(sentinel, master, replica)

    killed = setup.kill_primary()
    assert not setup.node(killed[1]).running
    new_primary = await asyncio.to_thread(setup.wait_for_failover, 30.0)

    assert new_primary == old_replica == setup.primary != killed
    assert setup.replicas == []
    sentinel = Sentinel(setup.sentinels, socket_timeout=5)
    master = sentinel.master_for("kewprimary", decode_responses=True)
    assert await sentinel.discover_master("kewprimary") == new_primary
    assert await master.get("k") == "before"
    await master.set("k", "after")
    assert (await master.execute_command("ROLE"))[0] == "master"
    await _close(sentinel, master)

    setup.kill_primary()  # no replica is left to promote
    with pytest.raises(RedisServerError, match="has no live replica"):
        setup.wait_for_failover(timeout=5)


def test_bad_sentinel_arguments() -> None:
    with pytest.raises(ValueError, match="service_name"):
        RedisSentinelServer(service_name="a/b")
    with pytest.raises(ValueError, match=r"quorum must be in 1\.\.3"):
        RedisSentinelServer(quorum=4)
    with pytest.raises(ValueError, match="replicas >= 0 and sentinels >= 1"):
        RedisSentinelServer(sentinels=0)
    with pytest.raises(ValueError, match="must be > 0 ms"):
        RedisSentinelServer(down_after=0)


@needs_redis_server
def test_a_failed_start_leaves_nothing_behind(procs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_start, calls = RedisServer.start, []

    def start(self: RedisServer) -> RedisServer:
        calls.append(self)
        if self.sentinel_config is not None:  # the data nodes start, the first Sentinel fails
            raise RedisServerError("sentinel refused")
        return real_start(self)

    monkeypatch.setattr(RedisServer, "start", start)
    setup = RedisSentinelServer()
    with pytest.raises(RedisServerError, match="sentinel refused"):
        setup.start()
    assert len(setup.nodes) == 2 and procs.all_gone([s.port for s in setup.nodes]) == []
    assert not setup.running


def test_a_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(RedisServerError, match="no 'no-such-redis-server' binary found"):
        RedisSentinelServer("no-such-redis-server").start()


# -- the plugin on the sentinel backend -----------------------------------------------------------

SENTINEL_SAMPLE = """
from pathlib import Path

import pytest
from redis.asyncio.sentinel import Sentinel
from kew_testkit import RedisClusterServer, RedisSentinelServer


def _save(name, servers):
    Path(name).write_text(" ".join(str(s.port) for s in servers))


@pytest.mark.asyncio
async def test_the_backend_is_the_sentinel_setup(kew_backend, kew_redis_url, kew_redis_sentinel):
    assert isinstance(kew_redis_sentinel, RedisSentinelServer)
    assert kew_backend.name == "sentinel" and kew_backend.server is kew_redis_sentinel
    assert kew_redis_url == kew_redis_sentinel.url
    assert kew_redis_url.startswith("redis+sentinel://127.0.0.1:")
    assert kew_redis_url.endswith("/kewprimary")
    sentinel = Sentinel(kew_redis_sentinel.sentinels, socket_timeout=5)
    master = sentinel.master_for("kewprimary")
    await master.set("k", "v")
    assert await master.get("k") == b"v"
    await master.aclose()
    for connection in sentinel.sentinels:
        await connection.aclose()
    _save("sentinel-ports.txt", kew_redis_sentinel.nodes + kew_redis_sentinel.sentinel_nodes)


def test_a_cluster_of_its_own_next_to_it(kew_backend, kew_redis_cluster):
    assert kew_backend.name == "sentinel"
    assert isinstance(kew_redis_cluster, RedisClusterServer)
    assert kew_redis_cluster.url.startswith("redis+cluster://")
    _save("cluster-ports.txt", kew_redis_cluster.nodes)
"""


@needs_redis_server
@pytest.mark.slow
def test_the_sentinel_backend_in_a_pytest_run(pytester: pytest.Pytester, procs: Any) -> None:
    if kew_testkit.find_redis_cli() is None:
        pytest.skip("no redis-cli on PATH")
    pytester.makeini(INI)
    pytester.makepyfile(test_sentinel_sample=textwrap.dedent(SENTINEL_SAMPLE))
    result = pytester.runpytest("--kew-backend=sentinel", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "kew-testkit: backend=sentinel (Redis Sentinel 7.*, 1 primary + 1 replica, "
            "3 sentinels, started on first use)",
            "kew-testkit: tests ran on Redis Sentinel 7.*, 1 primary + 1 replica, 3 sentinels "
            "at redis+sentinel://127.0.0.1:*,127.0.0.1:*,127.0.0.1:*/kewprimary",
        ]
    )
    ports = []
    for name, count in (("sentinel-ports.txt", 5), ("cluster-ports.txt", 3)):
        found = [int(p) for p in (pytester.path / name).read_text().split()]
        assert len(found) == count, name
        ports += found
    assert procs.all_gone(ports) == []
