"""breaker_reset-2.lua: the manual reset closes the breaker and wakes held-back workers."""

from __future__ import annotations

from ._support import NOW, RESET, Env, row


async def _open(env: Env) -> None:
    for _ in range(3):
        await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET)
    assert (await env.breaker())["state"] == "open"


async def test_reset_closes_and_wakes(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await _open(env)
    assert (await env.claim(n=5, now=NOW + 1)).blocked is True
    await env.clear_wake()
    await env.store.breaker_reset(env.qk)
    assert await env.client.exists(env.qk.breaker) == 0
    assert await env.wake_len() == 1
    assert await env.claim_ids(n=5, now=NOW + 2) == ["a", "b"]


async def test_reset_forgets_failures(env: Env) -> None:
    await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET)
    await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET)
    await env.store.breaker_reset(env.qk)
    assert await env.breaker() == {}
    assert await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET) == 1
    assert (await env.breaker())["state"] == "closed"


async def test_reset_without_breaker_wakes_nobody(env: Env) -> None:
    await env.store.breaker_reset(env.qk)
    assert await env.wake_len() == 0
    assert await env.client.exists(env.qk.breaker) == 0
