"""The claim script on N ready tasks, through kew's RedisStore (one EVALSHA per call).

Runs on the session's Redis from kew-testkit (a throwaway redis-server when one is on PATH;
``--kew-redis-url`` to choose). Each round submits N fresh tasks (not timed), then times one
claim of N; every round works in a namespace of its own, deleted at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kew.connection import create_client
from kew.keys import QueueKeys
from kew.store import RedisStore

NOW = 1_700_000_000_000
_counter = itertools.count()


@pytest.fixture
def store(kew_redis_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[RedisStore]:
    client = create_client(kew_redis_url)
    st = RedisStore(client, kew_redis_url)
    yield st
    loop.run_until_complete(st.close())


@pytest.mark.parametrize("n", [1, 10, 50, 200])
def test_claim_n_ready(
    benchmark: Any, store: RedisStore, loop: asyncio.AbstractEventLoop, n: int
) -> None:
    namespace = f"kewmicro-{uuid.uuid4().hex[:8]}"

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        qk = QueueKeys(namespace, f"q{next(_counter)}")  # ids are unique per namespace
        func = b"rbench.micro.test_claim:noop"
        rows = [(f"{qk.queue}-t{i}", "noop", 2, 0, func, b"") for i in range(n)]
        codes = loop.run_until_complete(store.submit(qk, NOW, 10 * n, rows))
        assert codes == [0] * n
        return (qk,), {}

    def claim(qk: QueueKeys) -> int:
        result = loop.run_until_complete(
            store.claim(
                qk, now_ms=NOW, n=n, lease_ms=30_000, owner="micro", reset_ms=60_000, limit=1000
            )
        )
        return len(result.tasks)

    try:
        claimed = benchmark.pedantic(claim, setup=setup, rounds=30, warmup_rounds=2)
        assert claimed == n
    finally:
        loop.run_until_complete(store.delete_namespace(namespace))
