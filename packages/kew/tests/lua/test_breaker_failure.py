"""breaker_failure-1.lua: the manual breaker API counts, opens at max, expires."""

from __future__ import annotations

from ._support import NOW, RESET, Env

TTL = 10 * RESET


async def test_counts_consecutive_failures(env: Env) -> None:
    assert await env.store.breaker_failure(env.qk, NOW, 3, RESET, TTL) == 1
    assert await env.store.breaker_failure(env.qk, NOW + 1, 3, RESET, TTL) == 2
    br = await env.breaker()
    assert br["failures"] == "2"
    assert br["state"] == "closed"
    assert TTL - 5_000 < await env.pttl(env.qk.breaker) <= TTL


async def test_opens_at_max(env: Env) -> None:
    for i in range(3):
        await env.store.breaker_failure(env.qk, NOW + i, 3, RESET, TTL)
    br = await env.breaker()
    assert br == {
        "failures": "3",
        "state": "open",
        "opened_at": str(NOW + 2),
        "probe_at": str(NOW + 2 + RESET),
    }


async def test_max_one_opens_at_once(env: Env) -> None:
    assert await env.store.breaker_failure(env.qk, NOW, 1, RESET, TTL) == 1
    assert (await env.breaker())["state"] == "open"


async def test_failure_while_open_pushes_the_trial_back(env: Env) -> None:
    for _ in range(3):
        await env.store.breaker_failure(env.qk, NOW, 3, RESET, TTL)
    assert await env.store.breaker_failure(env.qk, NOW + 500, 3, RESET, TTL) == 4
    br = await env.breaker()
    assert br["state"] == "open"
    assert br["probe_at"] == str(NOW + 500 + RESET)


async def test_reset_closes(env: Env) -> None:
    for _ in range(3):
        await env.store.breaker_failure(env.qk, NOW, 3, RESET, TTL)
    await env.store.breaker_reset(env.qk)
    assert await env.breaker() == {}
    assert await env.store.breaker_failure(env.qk, NOW, 3, RESET, TTL) == 1
