"""claim-8.lua's queue-wide limits (includes/limits.lua): global_max_workers counts the leases of
every owner; the rate limit is a token bucket shared by every process."""

from __future__ import annotations

import math

from ._support import LEASE, NOW, OK, Env, row


def _fleet(global_max: int) -> tuple[int, int, int, int]:
    return (global_max, 0, 0, 0)


def _rate(rate: int, period_ms: int, burst: int) -> tuple[int, int, int, int]:
    return (0, rate, period_ms, burst)


async def _fill(env: Env, count: int, prefix: str = "t") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(count)]
    assert await env.submit(*(row(i) for i in ids), max_size=count + 10) == [OK] * count
    return ids


# -- global_max_workers -------------------------------------------------------------------------


async def test_global_max_counts_leases_of_every_owner(env: Env) -> None:
    await _fill(env, 6)
    limits = _fleet(3)
    assert await env.claim_ids(n=2, owner="w1", limits=limits) == ["t000", "t001"]
    await env.clear_wake()
    res = await env.claim(n=5, owner="w2", limits=limits)
    assert [t.task_id for t in res.tasks] == ["t002"]
    assert res.blocked is True
    assert await env.wake_len() == 0  # nobody else is woken to find the fleet full
    res = await env.claim(n=5, owner="w3", limits=limits)
    assert (res.tasks, res.blocked) == ([], True)
    assert res.next_due_ms == NOW + LEASE  # when the first lease may expire
    assert len(await env.leased()) == 3
    assert len(await env.ready()) == 3


async def test_global_max_frees_a_slot_when_a_task_ends(env: Env) -> None:
    await _fill(env, 4)
    limits = _fleet(2)
    (a, b) = (await env.claim(n=2, limits=limits)).tasks
    assert await env.claim_ids(n=2, owner="w2", limits=limits) == []
    assert await env.complete(a.task_id, a.fence) == [OK]
    assert await env.claim_ids(n=2, owner="w2", limits=limits) == ["t002"]
    assert (await env.fail(b.task_id, b.fence, retry_due=0))[0] == OK
    assert await env.claim_ids(n=2, owner="w2", limits=limits) == ["t003"]


async def test_global_max_frees_a_slot_when_a_lease_expires(env: Env) -> None:
    await _fill(env, 3)
    limits = _fleet(1)
    assert await env.claim_ids(n=1, lease=1_000, limits=limits) == ["t000"]
    assert await env.claim_ids(n=1, now=NOW + 999, owner="w2", limits=limits) == []
    # the expired lease is reclaimed first, so it no longer counts; t000 runs again first
    assert await env.claim_ids(n=1, now=NOW + 1_000, owner="w2", limits=limits) == ["t000"]


async def test_global_max_is_not_a_per_call_cap_when_below(env: Env) -> None:
    await _fill(env, 3)
    res = await env.claim(n=3, limits=_fleet(5))
    assert [t.task_id for t in res.tasks] == ["t000", "t001", "t002"]
    assert res.blocked is False


async def test_no_global_max_by_default(env: Env) -> None:
    await _fill(env, 4)
    assert len(await env.claim_ids(n=2, owner="w1")) == 2
    assert len(await env.claim_ids(n=2, owner="w2")) == 2


# -- rate limit ---------------------------------------------------------------------------------


async def test_burst_at_once_then_blocked_until_the_next_token(env: Env) -> None:
    await _fill(env, 10)
    limits = _rate(2, 1_000, 3)  # 2 per second, 3 at once
    await env.clear_wake()
    res = await env.claim(n=10, limits=limits)
    assert [t.task_id for t in res.tasks] == ["t000", "t001", "t002"]
    assert res.blocked is True
    assert res.next_due_ms == NOW + 500  # one token per period / rate
    assert await env.wake_len() == 0
    assert await env.claim_ids(n=10, now=NOW + 499, limits=limits) == []
    assert await env.claim_ids(n=10, now=NOW + 500, limits=limits) == ["t003"]


async def test_next_due_is_when_the_next_token_is_due(env: Env) -> None:
    await _fill(env, 10)
    limits = _rate(3, 1_000, 1)  # a token every 333.3 ms
    res = await env.claim(n=10, limits=limits)
    assert len(res.tasks) == 1
    due = res.next_due_ms
    assert due == NOW + 334  # rounded up: never before the token is whole
    # asked too early: nothing, and told the same time again
    early = await env.claim(n=10, now=NOW + 200, limits=limits)
    assert (early.tasks, early.blocked, early.next_due_ms) == ([], True, due)
    on_time = await env.claim(n=10, now=due, limits=limits)
    assert len(on_time.tasks) == 1


async def test_rate_limited_claim_reports_the_earlier_of_token_and_schedule(env: Env) -> None:
    await _fill(env, 3)
    await env.submit(row("d", due=NOW + 100))
    res = await env.claim(n=10, limits=_rate(1, 1_000, 1))
    assert len(res.tasks) == 1
    assert res.next_due_ms == NOW + 100


async def test_tokens_refill_up_to_the_burst_only(env: Env) -> None:
    await _fill(env, 20)
    limits = _rate(1, 100, 4)
    assert len(await env.claim_ids(n=20, limits=limits)) == 4
    # a long quiet spell refills the bucket to its burst, not beyond
    assert len(await env.claim_ids(n=20, now=NOW + 10_000, limits=limits)) == 4
    assert len(await env.claim_ids(n=20, now=NOW + 10_000, limits=limits)) == 0


async def test_bucket_is_shared_by_every_owner(env: Env) -> None:
    await _fill(env, 10)
    limits = _rate(2, 1_000, 2)
    assert len(await env.claim_ids(n=1, owner="w1", limits=limits)) == 1
    assert len(await env.claim_ids(n=5, owner="w2", limits=limits)) == 1
    assert await env.claim_ids(n=5, owner="w3", limits=limits) == []


async def test_claims_never_exceed_burst_plus_elapsed_times_rate(env: Env) -> None:
    rate, period, burst = 3, 1_000, 5
    await _fill(env, 200)
    taken = 0
    for step in range(60):
        now = NOW + step * 137
        taken += len(await env.claim_ids(n=50, now=now, limits=_rate(rate, period, burst)))
        allowed = burst + (now - NOW) * rate / period
        assert taken <= math.floor(allowed + 1e-9), (step, taken, allowed)
        assert taken >= math.floor(allowed) - 1, (step, taken, allowed)  # and tokens are used


async def test_a_claim_with_fewer_ready_tasks_spends_only_what_it_took(env: Env) -> None:
    await _fill(env, 1)
    limits = _rate(1, 1_000, 3)
    assert len(await env.claim_ids(n=10, limits=limits)) == 1
    await _fill(env, 5, prefix="u")
    assert len(await env.claim_ids(n=10, limits=limits)) == 2  # 3 - 1 tokens left


async def test_an_idle_claim_spends_no_token(env: Env) -> None:
    limits = _rate(1, 1_000, 1)
    assert await env.claim_ids(n=10, limits=limits) == []
    await _fill(env, 2)
    assert len(await env.claim_ids(n=10, limits=limits)) == 1


async def test_rate_limit_keeps_its_state_until_the_bucket_is_full_again(env: Env) -> None:
    """The bucket's record may only expire once it would have refilled to its burst; if it is
    forgotten earlier, the next claim finds a full bucket and more than
    ``burst + elapsed * rate`` tasks start (here 100 at once again after ~62 s instead of 62)."""
    rate, period, burst = 1, 1_000, 100
    await _fill(env, 150)
    assert len(await env.claim_ids(n=150, limits=_rate(rate, period, burst))) == burst
    refill_ms = burst * period // rate
    assert await env.pttl(env.qk.rate) >= refill_ms - 5_000


async def test_no_rate_limit_touches_no_bucket(env: Env) -> None:
    await _fill(env, 3)
    assert len(await env.claim_ids(n=3)) == 3
    assert await env.client.exists(env.qk.rate) == 0


# -- limits together ------------------------------------------------------------------------------


async def test_fleet_limit_applies_before_the_rate_and_spends_no_token(env: Env) -> None:
    await _fill(env, 6)
    limits = (1, 1, 1_000, 3)
    assert await env.claim_ids(n=5, limits=limits) == ["t000"]
    assert await env.claim_ids(n=5, owner="w2", limits=limits) == []  # the fleet is full
    (t,) = [x for x, _ in await env.leased()]
    fence = (await env.task(t))["fence"].encode()
    assert await env.complete(t, fence) == [OK]
    assert await env.claim_ids(n=5, owner="w2", limits=limits) == ["t001"]  # a token was left


async def test_open_breaker_spends_no_token(env: Env) -> None:
    await _fill(env, 3)
    for _ in range(3):
        await env.store.breaker_failure(env.qk, NOW, 3, 60_000, 600_000)
    limits = _rate(1, 1_000, 1)
    res = await env.claim(n=5, limits=limits)
    assert (res.tasks, res.blocked) == ([], True)
    await env.client.delete(env.qk.breaker)
    assert len(await env.claim_ids(n=5, limits=limits)) == 1
