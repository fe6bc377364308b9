"""fail-8.lua: retry scheduling, final failure with retention, fence check, breaker counting,
wake-ups (dead letters and the error history: test_dead_letters.py)."""

from __future__ import annotations

from ._support import LEASE_LOST, NOW, OK, RESET, Env, row

RETRY_AT = NOW + 2_000
KEEP = 3_600_000


async def _claim_one(env: Env, task_id: str = "a") -> bytes:
    await env.submit(row(task_id, args=b"pARGS"))
    (t,) = (await env.claim(n=1)).tasks
    assert t.task_id == task_id
    return t.fence


async def test_retry_is_scheduled_at_due(env: Env) -> None:
    fence = await _claim_one(env)
    await env.clear_wake()
    code, failures = await env.fail(
        "a", fence, now=NOW + 100, error="ValueError: x", retry_due=RETRY_AT
    )
    assert (code, failures) == (OK, 1)
    h = await env.task("a")
    assert h["status"] == "retry"
    assert h["error"] == "ValueError: x"
    assert h["due"] == str(RETRY_AT)
    assert h["retries"] == "1"
    assert h["owner"] == ""
    assert h["func"] == "rmod:fn"  # still needed for the next attempt
    assert h["args"] == "pARGS"
    assert await env.leased() == []
    assert await env.scheduled() == [("a", float(RETRY_AT))]
    assert await env.ready() == []
    assert await env.wake_len() == 1
    assert await env.pttl(env.qk.task("a")) == -1  # a waiting task never expires


async def test_retry_runs_again_when_due(env: Env) -> None:
    fence = await _claim_one(env)
    await env.fail("a", fence, retry_due=RETRY_AT)
    assert await env.claim_ids(now=RETRY_AT - 1) == []
    res = await env.claim(now=RETRY_AT)
    (t,) = res.tasks
    assert (t.task_id, t.retries, t.attempts) == ("a", 1, 2)
    assert t.fence != fence  # a new run, a new fence
    assert (await env.task("a"))["status"] == "processing"
    assert await env.scheduled() == []


async def test_retries_count_up(env: Env) -> None:
    fence = await _claim_one(env)
    for n in range(1, 4):
        assert (await env.fail("a", fence, now=NOW + n, retry_due=NOW + 10 * n, count=False))[
            0
        ] == OK
        assert (await env.task("a"))["retries"] == str(n)
        (t,) = (await env.claim(now=NOW + 10 * n)).tasks
        fence = t.fence
        assert t.retries == n


async def test_final_failure_is_failed_with_retention(env: Env) -> None:
    fence = await _claim_one(env)
    code, _ = await env.fail("a", fence, now=NOW + 100, error="last", retry_due=0, retention=KEEP)
    assert code == OK
    h = await env.task("a")
    assert h["status"] == "failed"
    assert h["error"] == "last"
    assert h["completed"] == str(NOW + 100)
    assert h.get("retries", "0") == "0"  # submit no longer writes the zero counter
    assert h["owner"] == ""
    assert await env.leased() == []
    assert await env.scheduled() == []
    assert await env.ready() == []
    assert KEEP - 5_000 < await env.pttl(env.qk.task("a")) <= KEEP


async def test_final_failure_after_retries_keeps_count(env: Env) -> None:
    fence = await _claim_one(env)
    await env.fail("a", fence, retry_due=NOW + 1, error="first")
    (t,) = (await env.claim(now=NOW + 1)).tasks
    await env.fail("a", t.fence, now=NOW + 2, retry_due=0, error="second")
    h = await env.task("a")
    assert (h["status"], h["retries"], h["error"]) == ("failed", "1", "second")


async def test_stale_fence_is_lease_lost_and_changes_nothing(env: Env) -> None:
    fence = await _claim_one(env)
    before = await env.task("a")
    assert await env.fail("a", b"9", retry_due=RETRY_AT) == (LEASE_LOST, 0)
    assert await env.fail("a", b"9", retry_due=0) == (LEASE_LOST, 0)
    assert await env.task("a") == before
    assert [m for m, _ in await env.leased()] == ["a"]
    assert await env.scheduled() == []
    assert await env.client.exists(env.qk.breaker) == 0
    assert before["fence"] == fence.decode()


async def test_fail_after_reclaim_is_lease_lost(env: Env) -> None:
    await env.submit(row("a"))
    old = (await env.claim(n=1, lease=1_000)).tasks[0]
    await env.claim(n=1, now=NOW + 1_000)
    assert await env.fail("a", old.fence, now=NOW + 1_001, retry_due=0) == (LEASE_LOST, 0)
    assert (await env.task("a"))["status"] == "processing"


async def test_breaker_counts_and_opens_at_max(env: Env) -> None:
    await env.submit(*(row(f"t{i}") for i in range(4)))
    tasks = (await env.claim(n=4)).tasks
    results = [
        await env.fail(t.task_id, t.fence, now=NOW + i, breaker_max=3, retention=KEEP)
        for i, t in enumerate(tasks[:2])
    ]
    assert [f for _, f in results] == [1, 2]
    br = await env.breaker()
    assert br["state"] == "closed"
    assert br["failures"] == "2"
    code, failures = await env.fail(tasks[2].task_id, tasks[2].fence, now=NOW + 50, breaker_max=3)
    assert (code, failures) == (OK, 3)
    br = await env.breaker()
    assert br["state"] == "open"
    assert br["opened_at"] == str(NOW + 50)
    assert br["probe_at"] == str(NOW + 50 + RESET)
    assert await env.pttl(env.qk.breaker) > 0
    # an open breaker stops claims
    await env.submit(row("next"))
    res = await env.claim(n=5, now=NOW + 51)
    assert res.tasks == [] and res.blocked is True


async def test_not_counted_for_breaker(env: Env) -> None:
    fence = await _claim_one(env)
    assert await env.fail("a", fence, retry_due=0, count=False) == (OK, 0)
    assert await env.client.exists(env.qk.breaker) == 0


async def test_publishes_events(env: Env) -> None:
    import asyncio

    await env.submit(row("a"), row("b"))
    a, b = (await env.claim(n=2)).tasks
    async with env.store.subscribe([env.qk.events]) as pubsub:
        await env.fail("a", a.fence, retry_due=RETRY_AT)
        await env.fail("b", b.fence, retry_due=0)
        got = []
        for _ in range(100):
            m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if m is not None:
                got.append(m["data"])
            if len(got) == 2:
                break
            await asyncio.sleep(0)
    assert got == [b"retry a", b"failed b"]


async def test_open_breaker_outlives_its_reset_period_with_short_retention(env: Env) -> None:
    """The breaker's record must not expire while it is open: with a retention (1 s) shorter than
    the reset timeout (60 s) the breaker would silently close after 1 s."""
    await env.submit(*(row(f"t{i}") for i in range(3)))
    tasks = (await env.claim(n=3)).tasks
    for t in tasks:
        await env.fail(t.task_id, t.fence, now=NOW, breaker_max=3, retention=1_000)
    br = await env.breaker()
    assert br["state"] == "open"
    assert br["probe_at"] == str(NOW + RESET)
    assert await env.pttl(env.qk.breaker) >= RESET - 5_000


async def test_final_failure_wakes_idle_workers_when_ready_tasks_wait(env: Env) -> None:
    """A task failed for good frees a slot (e.g. of global_max_workers)."""
    fence = await _claim_one(env)
    await env.submit(row("waiting"))
    await env.clear_wake()
    assert (await env.fail("a", fence, retry_due=0))[0] == OK
    assert await env.wake_len() == 1


async def test_final_failure_without_ready_tasks_wakes_nobody(env: Env) -> None:
    fence = await _claim_one(env)
    await env.clear_wake()
    assert (await env.fail("a", fence, retry_due=0))[0] == OK
    assert await env.wake_len() == 0


async def test_a_repeated_fail_of_the_same_attempt_answers_its_outcome_again(env: Env) -> None:
    """The call was applied but its reply was lost: the retry gets the same outcome, and the
    breaker, the retry count and the error history are not counted twice."""
    fence = await _claim_one(env)
    first = await env.fail_outcome("a", fence, error="E: x", retry_due=RETRY_AT)
    assert first == (OK, 1, "retry")
    again = await env.fail_outcome("a", fence, error="E: x", retry_due=RETRY_AT)
    assert again == (OK, 0, "retry")
    h = await env.task("a")
    assert (h["retries"], h["errors"]) == ("1", "E: x")


async def test_a_repeated_final_fail_answers_failed_again(env: Env) -> None:
    fence = await _claim_one(env)
    assert await env.fail_outcome("a", fence, error="E: y") == (OK, 1, "failed")
    assert await env.fail_outcome("a", fence, error="E: y") == (OK, 0, "failed")


async def test_a_fail_with_another_error_after_the_outcome_is_lease_lost(env: Env) -> None:
    fence = await _claim_one(env)
    assert (await env.fail_outcome("a", fence, error="E: y"))[0] == OK
    assert await env.fail_outcome("a", fence, error="E: other") == (LEASE_LOST, 0, "")
