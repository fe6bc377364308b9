"""kew.wire: the EVALSHA fast path sends what redis-py would, and never leaves a stale reply.

The encoding is compared with redis-py's own ``pack_command``; the connection rules are tried
on the session's real Redis (a cancelled call, a connection killed by the server).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kew.connection import create_client
from kew.wire import MAX_IDLE, FastEval, encode_arg, pack, pack_evalsha
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

_args = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.text(max_size=32),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=12,
)


@given(keys=st.lists(st.text(min_size=1, max_size=20), max_size=4), args=_args)
def test_the_request_bytes_are_the_ones_redis_py_would_send(
    keys: list[str], args: list[Any]
) -> None:
    sha = "a" * 40
    expected = b"".join(Connection().pack_command("EVALSHA", sha, len(keys), *keys, *args))
    assert pack_evalsha(sha, keys, args) == expected


@pytest.mark.parametrize("bad", [True, None, object(), [1]])
def test_an_argument_redis_does_not_take_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        encode_arg(bad)


def test_only_a_plain_client_gets_the_fast_path(kew_redis_url: str) -> None:
    assert FastEval.for_client(create_client(kew_redis_url)) is not None
    assert FastEval.for_client(create_client("redis+cluster://127.0.0.1:1")) is None
    assert FastEval.for_client(Redis(single_connection_client=True)) is None


async def _client_and_sha(url: str, source: str) -> tuple[Redis, FastEval, str]:
    client = create_client(url)
    fast = FastEval.for_client(client)
    assert fast is not None
    sha = await client.script_load(source)
    return client, fast, sha


async def test_a_call_cancelled_before_its_reply_does_not_leave_the_reply_for_the_next(
    kew_redis_url: str,
) -> None:
    client, fast, sha = await _client_and_sha(
        kew_redis_url,
        "local function now() local t = redis.call('TIME') return t[1] + t[2] / 1e6 end "
        "local e = now() + 0.3 while now() < e do end return ARGV[1]",
    )
    try:
        slow = asyncio.create_task(fast.evalsha(sha, [], ["first"]))
        await asyncio.sleep(0.05)  # the request is on the wire, the reply not yet back
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        echo = await client.script_load("return ARGV[1]")
        for i in range(5):  # whichever pooled connection is taken, it answers its own call
            assert await fast.evalsha(echo, [], [f"call-{i}"]) == f"call-{i}".encode()
    finally:
        await client.aclose()


async def test_a_connection_the_server_closed_is_replaced_and_the_call_still_runs(
    kew_redis_url: str,
) -> None:
    client, fast, sha = await _client_and_sha(kew_redis_url, "return ARGV[1]")
    try:
        assert await fast.evalsha(sha, [], ["warm"]) == b"warm"
        out = await fast._exchange(pack("CLIENT", "ID"), 1)  # the connection evalsha keeps
        assert out is not None
        pooled = int(out[0])
        killer = create_client(kew_redis_url)
        try:
            assert await killer.client_kill_filter(_id=pooled) == 1
        finally:
            await killer.aclose()
        assert await fast.evalsha(sha, [], ["again"]) == b"again"
    finally:
        await client.aclose()


async def test_a_script_error_comes_back_as_redis_py_raises_it_and_the_connection_stays_usable(
    kew_redis_url: str,
) -> None:
    from redis import exceptions as rexc

    client, fast, sha = await _client_and_sha(kew_redis_url, "return redis.error_reply('nope')")
    try:
        with pytest.raises(rexc.ResponseError, match="nope"):
            await fast.evalsha(sha, [], [])
        with pytest.raises(rexc.NoScriptError):
            await fast.evalsha("0" * 40, [], [])
        echo = await client.script_load("return ARGV[1]")
        assert await fast.evalsha(echo, [], ["ok"]) == b"ok"
    finally:
        await client.aclose()


async def test_connections_kept_between_calls_are_bounded_and_go_back_to_the_pool(
    kew_redis_url: str,
) -> None:
    client, fast, sha = await _client_and_sha(kew_redis_url, "return ARGV[1]")
    try:
        replies = await asyncio.gather(*(fast.evalsha(sha, [], [str(i)]) for i in range(40)))
        assert replies == [str(i).encode() for i in range(40)]
        assert 1 <= len(fast._idle) <= MAX_IDLE
        await fast.aclose()
        assert fast._idle == []
        assert await fast.evalsha(sha, [], ["after"]) == b"after"  # takes one from the pool
    finally:
        await client.aclose()
