"""claim-7.lua: order, batch size, promotion, reclaim, circuit breaker, wake chaining."""

from __future__ import annotations

from ._support import LEASE, NOW, OK, RESET, Env, ready_score, row


async def test_priority_then_fifo(env: Env) -> None:
    await env.submit(row("m1", 2), row("l1", 3), row("h1", 1), row("m2", 2), row("h2", 1))
    assert await env.claim_ids(n=10) == ["h1", "h2", "m1", "m2", "l1"]
    assert await env.ready() == []


async def test_claim_leases_and_marks_processing(env: Env) -> None:
    await env.submit(row("a", priority=1, task_type="email", func=b"rm:f", args=b"pA"))
    res = await env.claim(n=1, owner="worker-7")
    assert res.blocked is False
    assert len(res.tasks) == 1
    t = res.tasks[0]
    assert (t.task_id, t.task_type, t.priority) == ("a", "email", 1)
    assert t.fence
    assert (t.func, t.args, t.retries, t.queued_ms, t.attempts) == (b"rm:f", b"pA", 0, NOW, 1)
    h = await env.task("a")
    assert h["status"] == "processing"
    assert h["started"] == str(NOW)
    assert h["owner"] == "worker-7"
    assert h["fence"] == t.fence.decode()
    assert h["attempts"] == "1"
    assert await env.leased() == [("a", float(NOW + LEASE))]
    assert res.next_due_ms == NOW + LEASE


async def test_claims_at_most_n(env: Env) -> None:
    await env.submit(*(row(f"t{i}") for i in range(5)))
    assert await env.claim_ids(n=2) == ["t0", "t1"]
    assert await env.ready() == ["t2", "t3", "t4"]
    assert [m for m, _ in await env.leased()] == ["t0", "t1"]
    assert await env.claim_ids(n=1) == ["t2"]
    assert await env.claim_ids(n=0) == []
    assert await env.ready() == ["t3", "t4"]


async def test_empty_queue(env: Env) -> None:
    res = await env.claim()
    assert res.tasks == []
    assert res.next_due_ms is None
    assert res.blocked is False


async def test_chains_the_wake_token_while_ready_remains(env: Env) -> None:
    await env.submit(row("a"), row("b"), row("c"))
    await env.clear_wake()
    assert await env.claim_ids(n=1) == ["a"]
    assert await env.wake_len() == 1  # another idle worker should come for b and c
    await env.clear_wake()
    assert await env.claim_ids(n=5) == ["b", "c"]
    assert await env.wake_len() == 0  # nothing left: nobody is woken for nothing


async def test_missing_task_hash_is_dropped(env: Env) -> None:
    await env.submit(row("gone"), row("b"))
    await env.client.delete(env.qk.task("gone"))
    assert await env.claim_ids(n=2) == ["b"]
    assert await env.ready() == []
    assert [m for m, _ in await env.leased()] == ["b"]


# -- scheduled ------------------------------------------------------------------------------------


async def test_deferred_task_is_not_claimed_before_due(env: Env) -> None:
    await env.submit(row("d", due=NOW + 1_000))
    res = await env.claim(now=NOW + 999)
    assert res.tasks == []
    assert res.next_due_ms == NOW + 1_000
    assert await env.scheduled() == [("d", float(NOW + 1_000))]


async def test_promotes_due_scheduled_tasks(env: Env) -> None:
    await env.submit(
        row("d1", due=NOW + 1_000), row("d2", due=NOW + 2_000), row("d3", due=NOW + 9_000)
    )
    res = await env.claim(now=NOW + 2_000, n=10)
    assert [t.task_id for t in res.tasks] == ["d1", "d2"]
    assert await env.scheduled() == [("d3", float(NOW + 9_000))]
    assert res.next_due_ms == NOW + 9_000
    assert (await env.task("d1"))["started"] == str(NOW + 2_000)


async def test_promoted_task_respects_priority_but_queues_behind_same_priority(env: Env) -> None:
    await env.submit(
        row("m-ready", 2), row("h-later", 1, due=NOW + 10), row("m-later", 2, due=NOW + 10)
    )
    assert await env.claim_ids(n=1, now=NOW + 10) == ["h-later"]
    seqs = {t: int((await env.task(t))["seq"]) for t in ("m-ready", "m-later")}
    assert seqs["m-ready"] < seqs["m-later"]
    assert await env.ready() == ["m-ready", "m-later"]


async def test_promotion_limit(env: Env) -> None:
    await env.submit(*(row(f"d{i}", due=NOW + 1) for i in range(5)))
    res = await env.claim(n=0, now=NOW + 1, limit=2)
    assert res.tasks == []
    assert await env.ready() == ["d0", "d1"]
    assert len(await env.scheduled()) == 3


async def test_next_due_is_the_earliest_of_schedule_and_leases(env: Env) -> None:
    await env.submit(row("a"), row("d", due=NOW + 50_000))
    res = await env.claim(n=1, lease=10_000)
    assert res.next_due_ms == NOW + 10_000
    res = await env.claim(n=1, now=NOW + 1, lease=99_000)
    assert res.next_due_ms == NOW + 10_000


# -- reclaim --------------------------------------------------------------------------------------


async def test_reclaims_expired_lease_under_a_new_fence(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    first = await env.claim(n=1, lease=1_000, owner="dead")
    assert [t.task_id for t in first.tasks] == ["a"]
    # not yet expired: b is next
    await env.client.zadd(env.qk.leased, {"a": NOW + 1_000})
    res = await env.claim(n=1, now=NOW + 1_000, owner="alive")
    # expired at NOW+1000: back at its old place, so it comes before b
    assert [t.task_id for t in res.tasks] == ["a"]
    t = res.tasks[0]
    assert t.fence != first.tasks[0].fence  # the dead run can no longer ack
    assert t.attempts == 2
    h = await env.task("a")
    assert h["owner"] == "alive"
    assert h["reclaims"] == "1"
    assert h["fence"] == t.fence.decode()
    assert await env.ready() == ["b"]
    assert await env.leased() == [("a", float(NOW + 1_000 + LEASE))]


async def test_reclaim_keeps_the_old_ready_score(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await env.claim(n=1, lease=1_000)
    res = await env.claim(n=0, now=NOW + 5_000)
    assert res.tasks == []
    assert await env.zset(env.qk.ready) == [("a", ready_score(2, 1)), ("b", ready_score(2, 2))]
    h = await env.task("a")
    assert h["status"] == "queued"
    assert h["owner"] == ""
    assert "fence" not in h  # the expired run is fenced off
    assert await env.leased() == []


async def test_live_lease_is_not_reclaimed(env: Env) -> None:
    await env.submit(row("a"))
    (t,) = (await env.claim(n=1, lease=1_000)).tasks
    assert await env.claim_ids(n=5, now=NOW + 999) == []
    assert (await env.task("a"))["fence"] == t.fence.decode()


async def test_stale_run_cannot_complete_after_reclaim(env: Env) -> None:
    await env.submit(row("a"))
    old = (await env.claim(n=1, lease=1_000)).tasks[0]
    new = (await env.claim(n=1, now=NOW + 2_000)).tasks[0]
    assert await env.store.complete(env.qk, NOW + 2_001, 1000, [("a", old.fence, b"jold")]) == [3]
    assert await env.store.complete(env.qk, NOW + 2_001, 1000, [("a", new.fence, b"jnew")]) == [OK]
    assert (await env.task("a"))["result"] == "jnew"


# -- circuit breaker ------------------------------------------------------------------------------


async def _open_breaker(env: Env, now: int = NOW) -> None:
    for _ in range(3):
        await env.store.breaker_failure(env.qk, now, 3, RESET, 10 * RESET)
    assert (await env.breaker())["state"] == "open"


async def test_open_breaker_claims_nothing_and_reports_blocked(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await _open_breaker(env)
    await env.clear_wake()
    res = await env.claim(n=5, now=NOW + 1)
    assert res.tasks == []
    assert res.blocked is True
    assert res.next_due_ms == NOW + RESET  # the breaker's trial time
    assert await env.ready() == ["a", "b"]  # nothing dropped
    assert await env.leased() == []
    assert await env.wake_len() == 0  # a blocked claim must not wake the others


async def test_open_breaker_with_nothing_ready_is_not_blocked(env: Env) -> None:
    await _open_breaker(env)
    res = await env.claim(n=5, now=NOW + 1)
    assert res.tasks == []
    assert res.blocked is False


async def test_half_open_lets_exactly_one_through(env: Env) -> None:
    await env.submit(row("a"), row("b"), row("c"))
    await _open_breaker(env)
    trial = await env.claim(n=5, now=NOW + RESET, owner="w1", lease=10 * RESET)
    assert [t.task_id for t in trial.tasks] == ["a"]
    assert (await env.breaker())["probe_at"] == str(NOW + 2 * RESET)
    # every other claim (any worker) waits for the trial's outcome
    other = await env.claim(n=5, now=NOW + RESET + 1, owner="w2")
    assert other.tasks == []
    assert other.blocked is True
    assert other.next_due_ms == NOW + 2 * RESET
    assert await env.ready() == ["b", "c"]


async def test_half_open_trial_success_closes(env: Env) -> None:
    await env.submit(row("a"), row("b"), row("c"))
    await _open_breaker(env)
    trial = (await env.claim(n=5, now=NOW + RESET)).tasks[0]
    assert await env.store.complete(env.qk, NOW + RESET, 1000, [("a", trial.fence, b"j1")]) == [OK]
    assert await env.breaker() == {}
    assert await env.claim_ids(n=5, now=NOW + RESET + 1) == ["b", "c"]


async def test_half_open_trial_failure_reopens(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await _open_breaker(env)
    trial = (await env.claim(n=5, now=NOW + RESET)).tasks[0]
    code, failures = await env.fail("a", trial.fence, now=NOW + RESET + 5)
    assert (code, failures) == (OK, 4)
    br = await env.breaker()
    assert br["state"] == "open"
    assert br["probe_at"] == str(NOW + RESET + 5 + RESET)
    res = await env.claim(n=5, now=NOW + 2 * RESET)
    assert res.tasks == [] and res.blocked is True
    assert await env.claim_ids(n=5, now=NOW + 2 * RESET + 5) == ["b"]


async def test_closed_breaker_with_failures_does_not_limit(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET)
    await env.store.breaker_failure(env.qk, NOW, 3, RESET, 10 * RESET)
    assert await env.claim_ids(n=5) == ["a", "b"]
