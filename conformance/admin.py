"""The fault tests' admin connection: reads their records and drops kew's connections.

On one Redis (or the primary a Sentinel names) it is one plain client on one connection (its
CLIENT ID is fixed). On Redis
Cluster the records go through a cluster client (keys live on different nodes) and the
connection commands (CLIENT ID / LIST / KILL) run on every node, each through a one-connection
client of its own.
"""

from __future__ import annotations

from typing import Any

from kew.cluster import ClusterClient
from kew.connection import create_client, is_cluster_url
from redis.asyncio import Redis

__all__ = ["Admin"]


class Admin:
    """Data commands (``llen``, ``lrange``, ``rpush``, ...) go to the whole keyspace;
    :meth:`mark` and :meth:`kill_after` work per server."""

    def __init__(self, data: Any, nodes: list[Redis]) -> None:
        self._data = data
        self._nodes = nodes

    @classmethod
    async def connect(cls, url: str) -> Admin:
        """An Admin for the Redis (or cluster) at ``url``."""
        if url.startswith(("redis+sentinel://", "rediss+sentinel://")):
            follower = create_client(url)  # the primary Sentinel names, as kew finds it
            host, port = await follower.connection_pool.get_master_address()
            options = follower.connection_pool.connection_kwargs
            creds = {k: options.get(k) for k in ("username", "password", "db")}
            await follower.aclose()
            client = Redis(
                host=host, port=port, single_connection_client=True, decode_responses=True, **creds
            )
            return cls(client, [client])
        if not is_cluster_url(url):
            client = Redis.from_url(url, single_connection_client=True, decode_responses=True)
            return cls(client, [client])
        probe = create_client(url)
        await probe.initialize()
        addresses = probe.primaries()
        options = {**probe.options, "decode_responses": True}
        await probe.aclose()
        data = ClusterClient(addresses, options)
        nodes = [
            Redis(host=host, port=port, single_connection_client=True, **options)
            for host, port in addresses
        ]
        return cls(data, nodes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)

    async def mark(self) -> list[int]:
        """Each server's newest client id now: connections opened later have larger ids."""
        return [int(await node.client_id()) for node in self._nodes]

    async def kill_after(self, mark: list[int]) -> int:
        """CLIENT KILL, on every server, each connection opened after ``mark`` (but the admin's
        own). On the test's own throwaway server(s) this is every kew connection of the test;
        connections older than the test (another user of a shared Redis) are left alone."""
        killed = 0
        for node, after in zip(self._nodes, mark, strict=True):
            me = int(await node.client_id())
            for client in await node.client_list():
                cid = int(client["id"])
                if cid > after and cid != me:
                    killed += int(await node.client_kill_filter(_id=str(cid)))
        return killed

    async def aclose(self) -> None:
        """Close every connection of the admin."""
        for node in self._nodes:
            await node.aclose()
        if self._data not in self._nodes:
            await self._data.aclose()
