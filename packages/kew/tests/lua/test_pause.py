"""pause-3.lua and the paused flag in claim-8: a paused queue is claimed from by nobody."""

from __future__ import annotations

from kew.keys import QueueKeys

from ._support import LEASE, NOW, OK, RETENTION, Env, row


async def _pause(env: Env) -> bool:
    return await env.store.set_paused(env.qk, True)


async def _resume(env: Env) -> bool:
    return await env.store.set_paused(env.qk, False)


async def test_pause_and_resume_return_whether_the_state_changed(env: Env) -> None:
    assert await env.store.is_paused(env.qk) is False
    assert await _resume(env) is False  # not paused: nothing to resume
    assert await _pause(env) is True
    assert await env.store.is_paused(env.qk) is True
    assert await _pause(env) is False  # already paused
    assert await env.store.is_paused(env.qk) is True
    assert await _resume(env) is True
    assert await env.store.is_paused(env.qk) is False
    assert await _resume(env) is False
    assert await _pause(env) is True  # and again


async def test_counts_show_the_flag(env: Env) -> None:
    assert (await env.store.counts(env.qk, NOW, RETENTION))["paused"] == 0
    await _pause(env)
    assert (await env.store.counts(env.qk, NOW, RETENTION))["paused"] == 1
    await _resume(env)
    assert (await env.store.counts(env.qk, NOW, RETENTION))["paused"] == 0


async def test_paused_claim_takes_nothing_and_reports_blocked(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await _pause(env)
    await env.clear_wake()
    res = await env.claim(n=5)
    assert res.tasks == []
    assert res.blocked is True
    assert await env.ready() == ["a", "b"]
    assert await env.leased() == []
    assert (await env.task("a"))["status"] == "queued"
    assert await env.wake_len() == 0  # the wake-up is not passed on to other idle workers


async def test_paused_empty_queue_is_not_blocked(env: Env) -> None:
    await _pause(env)
    res = await env.claim(n=5)
    assert (res.tasks, res.blocked, res.next_due_ms) == ([], False, None)


async def test_paused_queue_still_accepts_submissions(env: Env) -> None:
    await _pause(env)
    assert await env.submit(row("a"), row("d", due=NOW + 10)) == [OK, OK]
    assert await env.ready() == ["a"]
    assert await env.claim_ids(now=NOW + 10) == []
    assert await env.ready() == ["a", "d"]  # due tasks are still promoted, not claimed


async def test_running_tasks_go_on_while_paused(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    (t,) = (await env.claim(n=1)).tasks
    await _pause(env)
    assert await env.extend([("a", t.fence)], NOW + 50_000) == ([], [])
    assert await env.complete("a", t.fence) == [OK]
    assert await env.ready() == ["b"]


async def test_expired_leases_are_reclaimed_but_not_rerun_while_paused(env: Env) -> None:
    fence = await env.claim_one("a", lease=1_000)
    await _pause(env)
    res = await env.claim(n=5, now=NOW + 1_000, owner="w2")
    assert res.tasks == []
    assert res.blocked is True
    assert await env.ready() == ["a"]
    assert await env.extend([("a", fence)]) == (["a"], [])


async def test_paused_claim_reports_the_next_scheduled_task(env: Env) -> None:
    await env.submit(row("a"), row("d", due=NOW + 7_000))
    await _pause(env)
    res = await env.claim(n=5)
    assert res.next_due_ms == NOW + 7_000


async def test_claims_resume_after_resume(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    await _pause(env)
    assert await env.claim_ids(n=5) == []
    await _resume(env)
    res = await env.claim(n=5)
    assert [t.task_id for t in res.tasks] == ["a", "b"]
    assert res.blocked is False
    assert [m for m, _ in await env.leased()] == ["a", "b"]
    assert res.next_due_ms == NOW + LEASE


async def test_resume_wakes_idle_workers_when_ready_tasks_wait(env: Env) -> None:
    await env.submit(row("a"))
    await _pause(env)
    await env.clear_wake()
    assert await _resume(env) is True
    assert await env.wake_len() == 1


async def test_resume_without_ready_tasks_wakes_nobody(env: Env) -> None:
    await env.submit(row("d", due=NOW + 60_000))  # deferred: not ready
    await _pause(env)
    await env.clear_wake()
    assert await _resume(env) is True
    assert await env.wake_len() == 0


async def test_resume_when_not_paused_wakes_nobody(env: Env) -> None:
    await env.submit(row("a"))
    await env.clear_wake()
    assert await _resume(env) is False
    assert await env.wake_len() == 0


async def test_pause_wakes_nobody(env: Env) -> None:
    await env.submit(row("a"))
    await env.clear_wake()
    assert await _pause(env) is True
    assert await env.wake_len() == 0


async def test_pause_is_per_queue(env: Env) -> None:
    other = Env(env.store, env.client, env.ns, QueueKeys(env.ns, "other"))
    await env.submit(row("a"))
    await other.submit(row("b"))
    await _pause(env)
    assert await other.store.is_paused(other.qk) is False
    assert await other.claim_ids() == ["b"]
    assert await env.claim_ids() == []
