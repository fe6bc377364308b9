"""RedisStore.delete_namespace, which every test here relies on to clean up after itself."""

from __future__ import annotations

from kew.connection import create_client
from kew.keys import QueueKeys, queues_key
from kew.store import RedisStore

from ._support import new_namespace


async def _seed(client: object, ns: str) -> list[str]:
    qk = QueueKeys(ns, "q")
    keys = [qk.ready, qk.meta, qk.task("t1"), queues_key(ns)]
    for key in keys:
        await client.set(key, b"x")  # type: ignore[attr-defined]
    return keys


async def test_deletes_exactly_its_namespace(kew_redis_url: str) -> None:
    client = create_client(kew_redis_url)
    store = RedisStore(client, kew_redis_url)
    base = new_namespace()
    mine, other = f"{base}*", f"{base}X"  # a glob character must not match other namespaces
    try:
        own = await _seed(client, mine)
        theirs = await _seed(client, other)
        assert await store.delete_namespace(mine) == len(own)
        assert await client.exists(*own) == 0
        assert await client.exists(*theirs) == len(theirs)
    finally:
        await store.delete_namespace(mine)
        await store.delete_namespace(other)
        await store.close()


async def test_does_not_delete_a_longer_namespace(kew_redis_url: str) -> None:
    """Namespace "app" must not wipe the keys of namespace "app:staging" (a valid namespace)."""
    client = create_client(kew_redis_url)
    store = RedisStore(client, kew_redis_url)
    parent = new_namespace()
    child = f"{parent}:staging"
    try:
        own = await _seed(client, parent)
        theirs = await _seed(client, child)
        await store.delete_namespace(parent)
        assert await client.exists(*own) == 0
        assert await client.exists(*theirs) == len(theirs)
    finally:
        await store.delete_namespace(child)
        await store.delete_namespace(parent)
        await store.close()
