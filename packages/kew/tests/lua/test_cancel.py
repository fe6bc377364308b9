"""cancel-6.lua, and the cancel rules of extend-2, release-5 and the reclaim in claim-8
(includes/promote_due.lua's finish_if_cancel_requested)."""

from __future__ import annotations

from ._support import (
    LEASE,
    LEASE_LOST,
    NOT_FOUND,
    NOW,
    OK,
    RETENTION,
    Env,
    published,
    row,
)

KEEP = 7_200_000  # retention given with the cancel request, ms (not the default RETENTION)
LATER = NOW + 5_000


def _assert_cancelled(h: dict[str, str], at: int) -> None:
    assert h["status"] == "cancelled"
    assert h["completed"] == str(at)
    assert h["owner"] == ""
    assert "cancel" not in h


async def _kept_for(env: Env, task_id: str, retention: int) -> None:
    ttl = await env.pttl(env.qk.task(task_id))
    assert retention - 5_000 < ttl <= retention


# -- waiting tasks end at once ------------------------------------------------------------------


async def test_ready_task_is_cancelled(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    reply, events = await published(env, env.cancel("a", now=LATER, retention=KEEP))
    assert reply == (OK, "cancelled")
    assert events == [b"cancelled a"]
    _assert_cancelled(await env.task("a"), LATER)
    await _kept_for(env, "a", KEEP)
    assert await env.ready() == ["b"]
    assert await env.claim_ids(n=5) == ["b"]


async def test_deferred_task_is_cancelled(env: Env) -> None:
    await env.submit(row("d", due=NOW + 60_000), row("other", due=NOW + 90_000))
    reply, events = await published(env, env.cancel("d", now=LATER, retention=KEEP))
    assert reply == (OK, "cancelled")
    assert events == [b"cancelled d"]
    _assert_cancelled(await env.task("d"), LATER)
    await _kept_for(env, "d", KEEP)
    assert await env.scheduled() == [("other", float(NOW + 90_000))]
    assert await env.claim_ids(now=NOW + 60_000) == []  # never promoted


async def test_retry_waiting_task_is_cancelled(env: Env) -> None:
    fence = await env.claim_one("a")
    assert (await env.fail("a", fence, now=NOW + 1, retry_due=NOW + 10_000))[0] == OK
    assert await env.scheduled() == [("a", float(NOW + 10_000))]
    reply, events = await published(env, env.cancel("a", now=LATER, retention=KEEP))
    assert reply == (OK, "cancelled")
    assert events == [b"cancelled a"]
    h = await env.task("a")
    _assert_cancelled(h, LATER)
    assert h["error"] == "boom"  # the failed attempt's error stays on record
    await _kept_for(env, "a", KEEP)
    assert await env.scheduled() == []
    assert await env.claim_ids(now=NOW + 10_000) == []


async def test_cancel_is_idempotent(env: Env) -> None:
    await env.submit(row("a"))
    assert await env.cancel("a", now=LATER) == (OK, "cancelled")
    before = await env.task("a")
    assert await env.cancel("a", now=LATER + 1) == (OK, "finished")
    assert await env.task("a") == before


# -- running tasks: request, then the owner's confirmation -------------------------------------


async def test_running_task_gets_a_request(env: Env) -> None:
    fence = await env.claim_one("a")
    before = await env.task("a")
    reply, events = await published(env, env.cancel("a", now=LATER, retention=KEEP))
    assert reply == (OK, "requested")
    assert events == []  # not finished yet
    h = await env.task("a")
    assert h["status"] == "processing"
    assert h["cancel"] == str(KEEP)  # the retention to apply once it ends
    assert {k: v for k, v in h.items() if k != "cancel"} == before
    assert await env.leased() == [("a", float(NOW + LEASE))]
    assert await env.pttl(env.qk.task("a")) == -1
    assert h["fence"] == fence.decode()  # the run still owns it


async def test_extend_reports_the_request_and_still_renews(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    owned = [(t.task_id, t.fence) for t in (await env.claim(n=2)).tasks]
    assert await env.cancel("b") == (OK, "requested")
    assert await env.extend(owned, NOW + 50_000) == ([], ["b"])
    assert await env.leased() == [("a", float(NOW + 50_000)), ("b", float(NOW + 50_000))]
    # it keeps being reported until the run confirms (or the task ends otherwise)
    assert await env.extend(owned, NOW + 60_000) == ([], ["b"])


async def test_extend_with_a_stale_fence_reports_lost_not_cancel(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    assert await env.extend([("a", fence + b"0")]) == (["a"], [])


async def test_owner_confirms_and_the_lease_is_released(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.cancel("a", retention=KEEP) == (OK, "requested")
    reply, events = await published(
        env, env.cancel("a", now=LATER, retention=RETENTION, fence=fence)
    )
    assert reply == (OK, "cancelled")
    assert events == [b"cancelled a"]
    _assert_cancelled(await env.task("a"), LATER)
    await _kept_for(env, "a", RETENTION)  # the confirming run's retention
    assert await env.leased() == []
    assert await env.ready() == []
    assert await env.extend([("a", fence)]) == (["a"], [])
    assert await env.complete("a", fence) == [LEASE_LOST]


async def test_confirmation_wakes_idle_workers_when_ready_tasks_wait(env: Env) -> None:
    fence = await env.claim_one("a")
    await env.submit(row("waiting"))
    await env.clear_wake()
    assert await env.cancel("a", fence=fence) == (OK, "cancelled")
    assert await env.wake_len() == 1


async def test_confirmation_without_ready_tasks_wakes_nobody(env: Env) -> None:
    fence = await env.claim_one("a")
    await env.clear_wake()
    assert await env.cancel("a", fence=fence) == (OK, "cancelled")
    assert await env.wake_len() == 0


async def test_stale_fence_is_lease_lost(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    before = await env.task("a")
    assert await env.cancel("a", now=LATER, fence=b"99") == (LEASE_LOST, "")
    assert await env.task("a") == before
    assert await env.leased() == [("a", float(NOW + LEASE))]
    assert before["fence"] == fence.decode()


async def test_fence_of_a_reclaimed_run_is_lease_lost(env: Env) -> None:
    old = await env.claim_one("a", lease=1_000)
    (new,) = (await env.claim(n=1, now=NOW + 1_000, owner="w2")).tasks
    assert await env.cancel("a", now=NOW + 1_001, fence=old) == (LEASE_LOST, "")
    h = await env.task("a")
    assert (h["status"], h["owner"], h["fence"]) == ("processing", "w2", new.fence.decode())
    assert [m for m, _ in await env.leased()] == ["a"]


async def test_fence_of_a_finished_task_is_lease_lost(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.complete("a", fence) == [OK]
    before = await env.task("a")
    assert await env.cancel("a", fence=fence) == (LEASE_LOST, "")
    assert await env.task("a") == before


# -- finished and unknown tasks ------------------------------------------------------------------


async def test_completed_task_is_finished_and_unchanged(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.complete("a", fence) == [OK]
    before = await env.task("a")
    ttl = await env.pttl(env.qk.task("a"))
    reply, events = await published(env, env.cancel("a", now=LATER, retention=KEEP))
    assert reply == (OK, "finished")
    assert events == []
    assert await env.task("a") == before
    assert await env.pttl(env.qk.task("a")) <= ttl  # the retention was not renewed


async def test_failed_task_is_finished_and_unchanged(env: Env) -> None:
    fence = await env.claim_one("a")
    assert (await env.fail("a", fence, retry_due=0))[0] == OK
    before = await env.task("a")
    dead = await env.dead()
    assert await env.cancel("a", now=LATER) == (OK, "finished")
    assert await env.task("a") == before
    assert await env.dead() == dead


async def test_unknown_task_is_not_found(env: Env) -> None:
    assert await env.cancel("ghost") == (NOT_FOUND, "")
    assert await env.client.exists(env.qk.task("ghost")) == 0
    assert await env.cancel("ghost", fence=b"1") == (NOT_FOUND, "")
    assert await env.client.exists(env.qk.task("ghost")) == 0


# -- a cancel-requested run that ends without confirming -------------------------------------


async def test_reclaimed_expired_lease_with_a_request_ends_cancelled(env: Env) -> None:
    old = await env.claim_one("a", lease=1_000)
    await env.submit(row("b"))
    assert await env.cancel("a", retention=KEEP) == (OK, "requested")
    res = await env.claim(n=5, now=NOW + 1_000, owner="w2")
    assert [t.task_id for t in res.tasks] == ["b"]  # a is not run again
    h = await env.task("a")
    _assert_cancelled(h, NOW + 1_000)
    assert "fence" not in h  # the old run is fenced off
    await _kept_for(env, "a", KEEP)
    assert [m for m, _ in await env.leased()] == ["b"]
    assert await env.ready() == []
    assert await env.extend([("a", old)]) == (["a"], [])
    assert await env.cancel("a", fence=old) == (LEASE_LOST, "")


async def test_reclaimed_expired_lease_without_a_request_is_ready_again(env: Env) -> None:
    await env.claim_one("a", lease=1_000)
    (again,) = (await env.claim(n=1, now=NOW + 1_000, owner="w2")).tasks
    assert again.task_id == "a"
    assert (await env.task("a"))["status"] == "processing"


async def test_release_of_a_cancel_requested_task_ends_cancelled(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    (a, b) = (await env.claim(n=2)).tasks
    assert await env.cancel("a", retention=KEEP) == (OK, "requested")
    await env.clear_wake()
    assert await env.release([("a", a.fence), ("b", b.fence)], now=LATER) == 1  # only b
    h = await env.task("a")
    _assert_cancelled(h, LATER)
    assert "fence" not in h
    await _kept_for(env, "a", KEEP)
    assert await env.leased() == []
    assert await env.ready() == ["b"]
    assert await env.wake_len() == 1  # for b


async def test_release_of_only_cancel_requested_tasks_hands_nothing_back(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    await env.clear_wake()
    assert await env.release([("a", fence)], now=LATER) == 0
    assert (await env.task("a"))["status"] == "cancelled"
    assert await env.ready() == []
    assert await env.leased() == []
    assert await env.wake_len() == 0


async def test_release_of_a_cancel_requested_task_publishes_the_event(env: Env) -> None:
    """Every script that ends a task publishes "<status> <id>" (events.py; wait_for_task in
    another process relies on it), so a task that release-5 ends CANCELLED must too."""
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    reply, events = await published(env, env.release([("a", fence)], now=LATER))
    assert reply == 0
    assert events == [b"cancelled a"]


async def test_reclaim_of_a_cancel_requested_task_publishes_the_event(env: Env) -> None:
    """As above, for the reclaim of an expired lease in claim-8."""
    await env.claim_one("a", lease=1_000)
    assert await env.cancel("a") == (OK, "requested")
    reply, events = await published(env, env.claim(n=1, now=NOW + 1_000, owner="w2"))
    assert reply.tasks == []
    assert (await env.task("a"))["status"] == "cancelled"
    assert events == [b"cancelled a"]


async def test_failed_attempt_of_a_cancel_requested_task_is_not_retried(env: Env) -> None:
    """The run failed before its owner saw the request: running it again would ignore the
    cancellation (reclaim and release end such a task CANCELLED instead of rerunning it)."""
    fence = await env.claim_one("a")
    assert await env.cancel("a", retention=KEEP) == (OK, "requested")
    assert (await env.fail("a", fence, now=LATER, retry_due=NOW + 10_000))[0] == OK
    assert await env.claim_ids(now=NOW + 10_000) == []
    assert (await env.task("a"))["status"] == "cancelled"
