"""The throwaway Redis Cluster: it comes up with every slot served, a cluster client works on it,
a killed master is replaced by its replica, and nothing is left running after, even when the
start fails half-way. Plus the ``cluster`` backend: settings, discovery and the pytest plugin."""

from __future__ import annotations

import shutil
import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kew_testkit
import pytest
import redis
from kew_testkit import (
    BackendUnavailableError,
    RedisClusterServer,
    RedisServer,
    RedisServerError,
    TestkitConfig,
    choose_backend,
    describe_choice,
    key_slot,
    mask_url,
    redis_server,
    resolve_config,
)
from redis.cluster import ClusterNode, RedisCluster

pytest_plugins = ["pytester"]

HAS_REDIS = shutil.which("redis-server") is not None and kew_testkit.find_redis_cli() is not None
needs_redis = pytest.mark.skipif(not HAS_REDIS, reason="no redis-server and redis-cli on PATH")
MISSING = "no-such-redis-server"
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


def _startup_nodes(url: str) -> list[ClusterNode]:
    """The seeds of a ``redis+cluster://h:p,h:p`` URL (and a check of its form)."""
    scheme, _, hosts = url.partition("://")
    assert scheme == "redis+cluster" and "/" not in hosts
    pairs = [item.rsplit(":", 1) for item in hosts.split(",")]
    return [ClusterNode(host, int(port)) for host, port in pairs]


def _client(url: str) -> Any:
    return RedisCluster(startup_nodes=_startup_nodes(url), decode_responses=True)


def _dirs(cluster: RedisClusterServer) -> list[Path]:
    return [node._dir for node in cluster.nodes if node._dir is not None]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServer]:
    """A 3-master cluster without replicas for this module's non-destructive tests."""
    if not HAS_REDIS:
        pytest.skip("no redis-server and redis-cli on PATH")
    with RedisClusterServer() as started:
        yield started


def _tags_per_master(cluster: RedisClusterServer) -> dict[tuple[str, int], str]:
    """One hash tag per master: ``t0``, ``t1``, ... until every master has one."""
    tags: dict[tuple[str, int], str] = {}
    for i in range(100):
        tags.setdefault(cluster.master_of(f"{{t{i}}}"), f"t{i}")
        if len(tags) == len(cluster.masters):
            break
    return tags


# -- the cluster --------------------------------------------------------------------------------


@needs_redis
def test_three_masters_serve_all_16384_slots(cluster: RedisClusterServer) -> None:
    assert len(cluster.masters) == 3 and cluster.replicas == []
    assert cluster.url == "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in cluster.masters)
    direct = redis.Redis(*cluster.masters[0], decode_responses=True)
    try:
        slots = direct.execute_command("CLUSTER", "SLOTS")
        served = {(str(owner[0]), int(owner[1])) for _low, _high, owner, *_ in slots}
        assert served == set(cluster.masters)
        assert sum(int(high) - int(low) + 1 for low, high, *_ in slots) == 16384
        for node in cluster.nodes:
            with redis.Redis(*node.address, decode_responses=True) as each:
                info = each.cluster("INFO")
            assert info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384
        for key in ("a", "{orders}:ready", "x{orders}y", "{}a", "{a", "user:{42}:name", "é"):
            assert key_slot(key) == direct.cluster("KEYSLOT", key), key
    finally:
        direct.close()
    assert cluster.master_of(0) == cluster.masters[0]  # masters are ordered by slot
    assert cluster.node(cluster.masters[1][1]).running
    with pytest.raises(KeyError):
        cluster.node(1)
    with pytest.raises(ValueError, match=r"0\.\.16383"):
        cluster.master_of(16384)
    described = f"Redis Cluster {cluster.version}, 3 masters + 0 replicas at {cluster.url}"
    assert cluster.describe() == described


@needs_redis
def test_hash_tags_spread_over_the_masters_and_commands_work(cluster: RedisClusterServer) -> None:
    tags = _tags_per_master(cluster)
    assert set(tags) == set(cluster.masters)  # three tags, three different masters
    client = _client(cluster.url)
    try:
        for master, tag in tags.items():
            key = f"{{{tag}}}:k"
            assert cluster.master_of(key) == master
            node = client.get_node_from_key(key)
            assert (node.host, node.port) == master
            assert client.set(key, tag) is True
            assert client.get(key) == tag
            script = "redis.call('SET', KEYS[2], ARGV[1]); return redis.call('GET', KEYS[1])"
            assert client.eval(script, 2, key, f"{{{tag}}}:other", "x") == tag  # same slot
            assert client.get(f"{{{tag}}}:other") == "x"
    finally:
        client.close()


@needs_redis
async def test_an_asyncio_cluster_client_works(cluster: RedisClusterServer) -> None:
    from redis.asyncio.cluster import ClusterNode as AsyncNode
    from redis.asyncio.cluster import RedisCluster as AsyncCluster

    nodes = [AsyncNode(node.host, node.port) for node in _startup_nodes(cluster.url)]
    client = AsyncCluster(startup_nodes=nodes, decode_responses=True)
    try:
        for tag in _tags_per_master(cluster).values():
            key = f"{{{tag}}}:async"
            await client.set(key, "1")
            assert await client.eval("return redis.call('INCR', KEYS[1])", 1, key) == 2
    finally:
        await client.aclose()


@needs_redis
def test_the_url_backend_takes_a_cluster_url(cluster: RedisClusterServer) -> None:
    with redis_server(TestkitConfig(redis_url=cluster.url)) as backend:
        assert (backend.name, backend.url, backend.owned) == ("url", cluster.url, False)
        assert backend.version == cluster.version
    assert cluster.running


@needs_redis
@pytest.mark.slow
def test_a_killed_master_is_replaced_by_its_replica(procs: Any) -> None:
    with RedisClusterServer(replicas=1) as cluster:
        assert len(cluster.masters) == 3 and len(cluster.replicas) == 3
        assert "3 masters + 3 replicas at redis+cluster://" in cluster.describe()
        client = _client(cluster.url)
        key = "{busy}:queue"
        client.rpush(key, *range(100))
        owner = cluster.master_of(key)
        with redis.Redis(*owner) as direct:  # the replica has every write before the crash
            assert direct.execute_command("WAIT", 1, 5000) == 1
        replicas_before = set(cluster.replicas)
        client.close()

        dead = cluster.kill_master_of(key)
        assert dead == owner and not cluster.node(dead[1]).running
        promoted = cluster.wait_for_failover(timeout=30)

        assert len(promoted) == 1 and promoted[0] in replicas_before
        assert cluster.master_of(key) == promoted[0]
        assert dead not in cluster.masters and len(cluster.masters) == 3
        assert promoted[0] not in cluster.replicas and len(cluster.replicas) == 2
        with redis.Redis(*promoted[0], decode_responses=True) as new_master:
            assert new_master.execute_command("ROLE")[0] == "master"
        fresh = _client(cluster.url)
        assert fresh.llen(key) == 100
        fresh.rpush(key, "after")
        fresh.close()

        cluster.kill(promoted[0][1])  # its replica is the dead master: nothing left to promote
        with pytest.raises(RedisServerError, match="has no live replica"):
            cluster.wait_for_failover(timeout=5)
        ports, dirs = [node.port for node in cluster.nodes], _dirs(cluster)
    assert procs.all_gone(ports) == []
    assert dirs and not any(d.exists() for d in dirs)


# -- no process outlives the cluster --------------------------------------------------------------


@needs_redis
def test_a_failed_create_leaves_nothing_behind(procs: Any) -> None:
    cluster = RedisClusterServer(redis_cli=shutil.which("false"))
    with pytest.raises(RedisServerError, match="redis-cli --cluster create exited with code 1"):
        cluster.start()
    assert len(cluster.nodes) == 3
    assert procs.all_gone([node.port for node in cluster.nodes]) == []
    assert not cluster.running and all(node._dir is None for node in cluster.nodes)


@needs_redis
def test_a_node_that_fails_to_start_stops_the_others(
    procs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_start, calls = RedisServer.start, []

    def start(self: RedisServer) -> RedisServer:
        calls.append(self)
        if len(calls) == 3:
            raise RedisServerError("third node refused")
        return real_start(self)

    monkeypatch.setattr(RedisServer, "start", start)
    cluster = RedisClusterServer()
    with pytest.raises(RedisServerError, match="third node refused"):
        cluster.start()
    started = [node.port for node in cluster.nodes if node.port]
    assert len(started) == 2 and procs.all_gone(started) == []


@needs_redis
def test_a_cluster_that_is_never_ready_times_out_and_stops(
    procs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RedisClusterServer, "_create", lambda self, cli: None)
    monkeypatch.setattr(RedisClusterServer, "_not_ready", lambda self: "still forming")
    cluster = RedisClusterServer(ready_timeout=0.2)
    with pytest.raises(TimeoutError, match=r"not ready within 0.2 s; last seen: still forming"):
        cluster.start()
    assert procs.all_gone([node.port for node in cluster.nodes]) == []


def test_bad_cluster_arguments() -> None:
    with pytest.raises(ValueError, match="at least 3 masters"):
        RedisClusterServer(masters=2)
    with pytest.raises(ValueError, match="replicas must be >= 0"):
        RedisClusterServer(replicas=-1)
    with pytest.raises(ValueError, match="node_timeout must be > 0"):
        RedisClusterServer(node_timeout=0)
    with pytest.raises(ValueError, match="port must be <= 55535"):
        RedisServer(port=60000, cluster_node_timeout=1000)
    with pytest.raises(ValueError, match="not both"):
        RedisServer(cluster_node_timeout=1000, sentinel_config="x")


def test_key_slot_matches_known_values() -> None:
    assert key_slot("foo") == 12182  # from the Redis Cluster specification
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert key_slot(b"foo{}{bar}") == key_slot("foo{}{bar}") != key_slot("bar")
    assert key_slot("foo{{bar}}zap") == key_slot("{bar")


# -- the cluster backend: settings and discovery --------------------------------------------------


def test_cluster_replicas_setting() -> None:
    assert resolve_config(env={}).cluster_replicas == 0
    assert resolve_config(env={"KEW_CLUSTER_REPLICAS": "1"}).cluster_replicas == 1
    ini = {"kew_cluster_replicas": "2"}
    assert resolve_config({"cluster_replicas": 0}, ini, {}).cluster_replicas == 0  # CLI wins
    assert resolve_config({}, ini, {"KEW_CLUSTER_REPLICAS": "1"}).cluster_replicas == 2
    with pytest.raises(ValueError, match="cluster_replicas must be a whole number"):
        resolve_config(env={"KEW_CLUSTER_REPLICAS": "one"})
    with pytest.raises(ValueError, match="cluster_replicas must be >= 0"):
        resolve_config(env={"KEW_CLUSTER_REPLICAS": "-1"})
    assert resolve_config(env={"KEW_BACKEND": "Cluster"}).backend == "cluster"


def test_auto_never_picks_cluster_or_sentinel() -> None:
    assert choose_backend(TestkitConfig()) not in ("cluster", "sentinel")


@pytest.mark.parametrize("backend", ["cluster", "sentinel"])
def test_forced_cluster_or_sentinel_without_redis_server_fails_clearly(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = f"--kew-backend={backend}: no '{MISSING}' binary on PATH"
    with pytest.raises(BackendUnavailableError, match=message):
        choose_backend(TestkitConfig(backend=backend, redis_server=MISSING))
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no redis-server at all
    with (
        pytest.raises(BackendUnavailableError, match=f"--kew-backend={backend}: no 'redis-server'"),
        redis_server(TestkitConfig(backend=backend)),
    ):
        pass


@needs_redis
def test_forced_cluster_without_redis_cli_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = tmp_path / "redis-server"  # a redis-server on PATH with no redis-cli beside it
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("redis-server")} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert kew_testkit.find_redis_cli() is None
    with pytest.raises(BackendUnavailableError, match="--kew-backend=cluster: no 'redis-cli'"):
        choose_backend(TestkitConfig(backend="cluster"))
    assert choose_backend(TestkitConfig(backend="sentinel")) == "sentinel"  # no redis-cli needed
    with pytest.raises(RedisServerError, match="no 'redis-cli' binary found"):
        RedisClusterServer().start()


@needs_redis
def test_describe_choice_for_cluster_and_sentinel() -> None:
    config = TestkitConfig(backend="cluster", cluster_replicas=1)
    version = kew_testkit.redis_server_version()
    assert describe_choice(config) == (
        f"backend=cluster (Redis Cluster {version}, 3 masters + 3 replicas, started on first use)"
    )
    assert describe_choice(TestkitConfig(backend="sentinel")) == (
        f"backend=sentinel (Redis Sentinel {version}, 1 primary + 1 replica, 3 sentinels, "
        "started on first use)"
    )


def test_mask_url_covers_cluster_and_sentinel_urls() -> None:
    assert mask_url("redis+cluster://u:pw@h:1,h:2") == "redis+cluster://u:***@h:1,h:2"
    assert mask_url("redis+sentinel://h:1/svc?sentinel_password=s3") == (
        "redis+sentinel://h:1/svc?sentinel_password=***"
    )


# -- the plugin on the cluster backend ------------------------------------------------------------

CLUSTER_SAMPLE = """
from pathlib import Path
from redis.cluster import ClusterNode, RedisCluster
from kew_testkit import RedisClusterServer


def test_the_backend_is_the_cluster(kew_backend, kew_redis_url, kew_redis_cluster):
    assert isinstance(kew_redis_cluster, RedisClusterServer)
    assert kew_backend.name == "cluster" and kew_backend.server is kew_redis_cluster
    assert kew_redis_url == kew_redis_cluster.url
    assert kew_redis_url.startswith("redis+cluster://127.0.0.1:")
    assert (len(kew_redis_cluster.masters), len(kew_redis_cluster.replicas)) == (3, 0)
    nodes = [ClusterNode(host, port) for host, port in kew_redis_cluster.masters]
    client = RedisCluster(startup_nodes=nodes)
    client.set("{x}:k", "v")
    assert client.get("{x}:k") == b"v"
    client.close()
    Path("ports.txt").write_text(" ".join(str(n.port) for n in kew_redis_cluster.nodes))
"""


@needs_redis
@pytest.mark.slow
def test_the_cluster_backend_in_a_pytest_run(pytester: pytest.Pytester, procs: Any) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_cluster_sample=textwrap.dedent(CLUSTER_SAMPLE))
    result = pytester.runpytest(
        "--kew-backend=cluster", "--kew-cluster-replicas=0", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "kew-testkit: backend=cluster (Redis Cluster 7.*, 3 masters + 0 replicas, started*",
            "kew-testkit: tests ran on Redis Cluster 7.*, 3 masters + 0 replicas at "
            "redis+cluster://127.0.0.1:*,127.0.0.1:*,127.0.0.1:*",
        ]
    )
    ports = [int(p) for p in (pytester.path / "ports.txt").read_text().split()]
    assert len(ports) == 3 and procs.all_gone(ports) == []


def test_forced_cluster_and_sentinel_stop_a_run_without_redis_server(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_nothing(): pass")
    for backend in ("cluster", "sentinel"):
        result = pytester.runpytest(f"--kew-backend={backend}", "-o", f"kew_redis_server={MISSING}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*kew-testkit: --kew-backend={backend}: no '{MISSING}'*"])
    result = pytester.runpytest("--kew-cluster-replicas=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cluster_replicas must be a whole number*"])


def test_cluster_options_are_listed_in_help(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--kew-backend=*cluster*sentinel*", "*--kew-cluster-replicas=N*"])
