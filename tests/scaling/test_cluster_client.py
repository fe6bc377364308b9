"""kew.cluster.ClusterClient on a real 3-master cluster: routing by slot, pipelines across
masters, a stale slot map healed by MOVED, and the commands without a key.

Each test checks the keys where they live, on each master through a plain client of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from kew.cluster import ClusterClient
from kew.connection import create_client
from kew_testkit import RedisClusterServer, key_slot
from redis.asyncio import Redis

QUEUES = [f"q{i}" for i in range(12)]


@pytest.fixture
async def cluster(kew_redis_cluster: RedisClusterServer) -> AsyncIterator[ClusterClient]:
    client = create_client(kew_redis_cluster.url)
    assert isinstance(client, ClusterClient)
    yield client
    await client.aclose()


def _keys(prefix: str) -> list[str]:
    return [f"{prefix}:{{{q}}}:k" for q in QUEUES]


async def _where(server: RedisClusterServer, key: str) -> list[tuple[str, int]]:
    """The masters that hold ``key``, asked of each one directly (CLUSTER GETKEYSINSLOT lists
    what a node itself stores; a plain read of another master's key would answer MOVED)."""
    found = []
    for host, port in server.masters:
        node = Redis(host=host, port=port)
        try:
            keys = await node.execute_command("CLUSTER GETKEYSINSLOT", key_slot(key), 1000)
        finally:
            await node.aclose()
        if key in [k.decode() if isinstance(k, bytes) else k for k in keys]:
            found.append((host, port))
    return found


async def test_keys_go_to_the_master_of_their_slot_and_queues_spread_over_all_three(
    cluster: ClusterClient, kew_redis_cluster: RedisClusterServer
) -> None:
    prefix = uuid.uuid4().hex[:6]
    for key in _keys(prefix):
        await cluster.set(key, "v")
    owners = set()
    for key in _keys(prefix):
        where = await _where(kew_redis_cluster, key)
        assert where == [kew_redis_cluster.master_of(key_slot(key))]
        owners.update(where)
    assert len(owners) == 3, "12 queues should use every master"
    assert await cluster.unlink(*_keys(prefix)) == len(QUEUES)
    assert [await _where(kew_redis_cluster, k) for k in _keys(prefix)] == [[]] * len(QUEUES)


async def test_a_pipeline_over_several_masters_answers_in_the_order_commands_were_queued(
    cluster: ClusterClient,
) -> None:
    prefix = uuid.uuid4().hex[:6]
    async with cluster.pipeline(transaction=False) as pipe:
        for i, key in enumerate(_keys(prefix)):
            pipe.set(key, str(i))
        for key in reversed(_keys(prefix)):
            pipe.get(key)
        replies = await pipe.execute()
    n = len(QUEUES)
    assert replies[:n] == [True] * n
    assert replies[n:] == [str(i).encode() for i in reversed(range(n))]
    await cluster.unlink(*_keys(prefix))


async def test_a_stale_slot_map_is_healed_by_the_moved_replies(
    cluster: ClusterClient, kew_redis_cluster: RedisClusterServer
) -> None:
    prefix = uuid.uuid4().hex[:6]
    await cluster.initialize()
    wrong = cluster.primaries()[0]
    cluster._slots = [wrong] * len(cluster._slots)  # as after a resharding nobody told us of
    for key in _keys(prefix):
        await cluster.set(key, "v")  # MOVED, map read again, sent to the right master
    for key in _keys(prefix):
        assert await _where(kew_redis_cluster, key) == [kew_redis_cluster.master_of(key)]
    assert len(cluster.primaries()) == 3
    await cluster.unlink(*_keys(prefix))


async def test_commands_without_a_key_reach_every_master(
    cluster: ClusterClient, kew_redis_cluster: RedisClusterServer
) -> None:
    prefix = uuid.uuid4().hex[:6]
    sha = await cluster.script_load(f"return '{prefix}'")
    for host, port in kew_redis_cluster.masters:
        node = Redis(host=host, port=port)
        try:
            assert await node.script_exists(sha) == [True]
        finally:
            await node.aclose()
    for key in _keys(prefix):
        await cluster.set(key, "v")
    found = {k async for k in cluster.scan_iter(match=f"{prefix}:*", count=100)}
    assert found == {k.encode() for k in _keys(prefix)}
    assert await cluster.ping()
    assert "redis_version" in await cluster.info("server")
    await cluster.unlink(*_keys(prefix))
