"""A reply lost on the wire (issue 5 review finding): the call is sent again by kew's fallback
and must get the answer the first one had, not a misleading one.

A small TCP proxy between kew and Redis passes everything through but drops the connection
instead of relaying the reply of the first request that contains a marker; kew's fast path then
sends the call again through redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from kew import QueueConfig, TaskQueueManager


async def noop() -> None:
    return None


@contextlib.asynccontextmanager
async def reply_dropping_proxy(redis_url: str, marker: bytes) -> AsyncIterator[int]:
    target = urlsplit(redis_url)
    armed = [True]

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(target.hostname, target.port)
        dropping = [False]

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if armed[0] and marker in data:
                    armed[0], dropping[0] = False, True
                up_w.write(data)
            up_w.close()

        async def downstream() -> None:
            while data := await up_r.read(65536):
                if dropping[0]:  # the request ran in Redis; its reply never arrives
                    client_w.transport.abort()
                    up_w.close()
                    return
                client_w.write(data)
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
        assert not armed[0], "the marker never went through the proxy"
    finally:
        server.close()


@pytest.mark.parametrize("n", [5, 25])  # one call; staged chunks then the commit
async def test_a_batch_whose_commit_reply_was_lost_is_reported_queued(
    kew_redis_url: str, n: int
) -> None:
    if kew_redis_url.startswith("memory://"):
        pytest.skip("memory:// has no connection to lose a reply on")
    async with reply_dropping_proxy(kew_redis_url, b"$6\r\ncommit\r\n") as port:
        target = urlsplit(kew_redis_url)
        url = f"redis://127.0.0.1:{port}{target.path or '/0'}"
        m = TaskQueueManager(url, namespace=f"lost-{uuid.uuid4().hex[:8]}", submit_chunk=10)
        await m.initialize()
        try:
            await m.create_queue(QueueConfig("q", max_workers=1))
            await m.pause_queue("q")
            tasks = [{"task_id": f"t{i}", "task_func": noop} for i in range(n)]
            infos = await m.submit_tasks("q", tasks)  # before the fix: TaskAlreadyExistsError
            assert [i.task_id for i in infos] == [f"t{i}" for i in range(n)]
            for i in range(n):
                assert (await m.get_task_status(f"t{i}")).status.value == "queued"
        finally:
            await m.cleanup()
            await m.shutdown()
