from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from kew.connection import create_client
from kew.keys import QueueKeys
from kew.store import RedisStore

from ._support import Env, new_namespace


@pytest_asyncio.fixture
async def env(kew_redis_url: str) -> AsyncIterator[Env]:
    client = create_client(kew_redis_url)
    store = RedisStore(client, kew_redis_url)
    ns = new_namespace()
    try:
        yield Env(store, client, ns, QueueKeys(ns, "q"))
    finally:
        await store.delete_namespace(ns)
        await store.close()
