"""Dead letters: fail-8.lua keeps tasks failed for good (and every attempt's error);
requeue_dead-5.lua runs them again; purge_dead-2.lua deletes them."""

from __future__ import annotations

from kew.models import TaskStatus

from ._support import NOW, OK, Env, ready_score, row

DEAD_KEEP = 604_800_000  # dead-letter retention, ms (7 days; longer than RETENTION)


async def _dead_letter(env: Env, task_id: str, *, now: int = NOW, error: str = "boom") -> None:
    """Submit, claim and fail ``task_id`` for good at ``now``."""
    await env.submit(row(task_id), now=now)
    (t,) = (await env.claim(n=1, now=now)).tasks
    assert t.task_id == task_id
    code, _ = await env.fail(task_id, t.fence, now=now, error=error, retention=DEAD_KEEP)
    assert code == OK


# -- fail-8 -------------------------------------------------------------------------------------


async def test_final_failure_is_a_dead_letter(env: Env) -> None:
    fence = await env.claim_one("a")
    code, _ = await env.fail("a", fence, now=NOW + 100, error="boom", retention=DEAD_KEEP)
    assert code == OK
    assert await env.dead() == [("a", float(NOW + 100))]
    h = await env.task("a")
    assert h["status"] == "failed"
    assert h["func"] == "rmod:fn"  # kept: a requeue needs it
    ttl = await env.pttl(env.qk.task("a"))
    assert DEAD_KEEP - 5_000 < ttl <= DEAD_KEEP  # the dead-letter retention
    assert (await env.store.counts(env.qk, NOW, DEAD_KEEP))["dead"] == 1


async def test_retry_is_not_a_dead_letter(env: Env) -> None:
    fence = await env.claim_one("a")
    assert (await env.fail("a", fence, retry_due=NOW + 10))[0] == OK
    assert await env.dead() == []


async def test_stale_fence_makes_no_dead_letter(env: Env) -> None:
    await env.claim_one("a")
    assert (await env.fail("a", b"9", retry_due=0))[0] != OK
    assert await env.dead() == []


async def test_errors_history_keeps_every_attempt(env: Env) -> None:
    fence = await env.claim_one("a")
    assert (await env.fail("a", fence, now=NOW + 1, retry_due=NOW + 10, error="e1"))[0] == OK
    assert (await env.task("a"))["errors"] == "e1"
    (t,) = (await env.claim(now=NOW + 10)).tasks
    assert (await env.fail("a", t.fence, now=NOW + 11, retry_due=NOW + 20, error="e2"))[0] == OK
    (t,) = (await env.claim(now=NOW + 20)).tasks
    assert (await env.fail("a", t.fence, now=NOW + 21, retry_due=0, error="e 3: ✗"))[0] == OK
    h = await env.task("a")
    assert h["errors"] == "e1\x1ee2\x1ee 3: ✗"
    assert h["error"] == "e 3: ✗"  # the last one
    info = await env.info("a")
    assert info.status is TaskStatus.FAILED
    assert info.errors == ["e1", "e2", "e 3: ✗"]
    assert (info.error, info.retry_count, info.attempts) == ("e 3: ✗", 2, 3)


async def test_dead_letters_older_than_their_retention_are_dropped(env: Env) -> None:
    """A failure also forgets dead-letter entries whose records have expired."""
    await _dead_letter(env, "old", now=NOW)
    await _dead_letter(env, "mid", now=NOW + 10)
    await _dead_letter(env, "new", now=NOW + DEAD_KEEP)  # "old" failed exactly DEAD_KEEP ago
    assert [m for m, _ in await env.dead()] == ["mid", "new"]


async def test_dead_ids_newest_first_and_prune(env: Env) -> None:
    for i, task_id in enumerate(["x", "y", "z"]):
        await _dead_letter(env, task_id, now=NOW + i)
    assert await env.store.dead_ids(env.qk, 0, 10) == ["z", "y", "x"]
    assert await env.store.dead_ids(env.qk, 1, 1) == ["y"]
    await env.store.prune_dead(env.qk, ["y"])
    await env.store.prune_dead(env.qk, [])
    assert await env.store.dead_ids(env.qk, 0, 10) == ["z", "x"]
    assert await env.client.exists(env.qk.task("y")) == 1  # only the entry is forgotten


# -- requeue_dead-5 -----------------------------------------------------------------------------


async def test_requeue_all(env: Env) -> None:
    await _dead_letter(env, "a")
    await _dead_letter(env, "b", now=NOW + 1)
    await env.clear_wake()
    assert await env.store.requeue_dead(env.qk, []) == 2
    assert await env.dead() == []
    assert await env.ready() == ["a", "b"]
    assert await env.wake_len() == 1
    assert {(await env.task(i))["status"] for i in "ab"} == {"queued"}


async def test_requeue_by_ids(env: Env) -> None:
    for i, task_id in enumerate(["a", "b", "c"]):
        await _dead_letter(env, task_id, now=NOW + i)
    assert await env.store.requeue_dead(env.qk, ["c", "a"]) == 2
    assert await env.ready() == ["c", "a"]  # in the order asked
    assert await env.dead() == [("b", float(NOW + 1))]
    assert (await env.task("b"))["status"] == "failed"


async def test_requeue_skips_what_is_not_a_dead_letter(env: Env) -> None:
    await _dead_letter(env, "dead")
    fence = await env.claim_one("done")
    assert await env.complete("done", fence) == [OK]
    await env.claim_one("running")
    await env.submit(row("queued"))
    before = {i: await env.task(i) for i in ("queued", "done", "running")}
    await env.clear_wake()
    assert await env.store.requeue_dead(env.qk, ["queued", "ghost", "done", "running"]) == 0
    assert await env.wake_len() == 0
    assert {i: await env.task(i) for i in ("queued", "done", "running")} == before
    assert await env.client.exists(env.qk.task("ghost")) == 0
    assert await env.ready() == ["queued"]
    assert [m for m, _ in await env.leased()] == ["running"]
    assert await env.dead() == [("dead", float(NOW))]
    assert await env.store.requeue_dead(env.qk, ["ghost", "dead"]) == 1


async def test_requeue_of_nothing(env: Env) -> None:
    await env.clear_wake()
    assert await env.store.requeue_dead(env.qk, []) == 0
    assert await env.wake_len() == 0


async def test_requeue_twice_counts_once(env: Env) -> None:
    await _dead_letter(env, "a")
    assert await env.store.requeue_dead(env.qk, ["a", "a"]) == 1
    assert await env.store.requeue_dead(env.qk, ["a"]) == 0
    assert await env.ready() == ["a"]


async def test_expired_dead_letter_is_forgotten_not_requeued(env: Env) -> None:
    await _dead_letter(env, "a")
    await env.expire_record("a")  # its record expired
    assert await env.store.requeue_dead(env.qk, []) == 0
    assert await env.dead() == []
    assert await env.ready() == []
    assert await env.client.exists(env.qk.task("a")) == 0  # not resurrected as a stub


async def test_requeue_skips_a_reused_id(env: Env) -> None:
    """An entry whose id now belongs to a new task (the dead record expired, the id was
    submitted again) is forgotten; the new task is left alone."""
    await _dead_letter(env, "a")
    await env.expire_record("a")
    assert await env.submit(row("a", priority=1), now=NOW + 5) == [OK]
    before = await env.task("a")
    assert await env.store.requeue_dead(env.qk, []) == 0
    assert await env.dead() == []
    assert await env.task("a") == before
    assert await env.ready() == ["a"]


async def test_requeued_task_gets_fresh_retries_and_keeps_its_history(env: Env) -> None:
    await env.submit(row("a", priority=3))
    (t,) = (await env.claim(n=1)).tasks
    assert (await env.fail("a", t.fence, now=NOW + 1, retry_due=NOW + 10, error="e1"))[0] == OK
    (t,) = (await env.claim(n=1, now=NOW + 10)).tasks
    assert t.task_id == "a"
    assert (await env.fail("a", t.fence, now=NOW + 11, retry_due=0, error="e2"))[0] == OK
    await env.submit(row("b", priority=3), now=NOW + 12)
    old_seq = int((await env.task("a"))["seq"])
    assert await env.store.requeue_dead(env.qk, ["a"]) == 1

    h = await env.task("a")
    assert h["status"] == "queued"
    assert h["retries"] == "0"
    assert h["attempts"] == "2"
    assert h["errors"] == "e1\x1ee2"
    assert h["error"] == "e2"
    assert "completed" not in h
    assert "started" not in h
    assert await env.pttl(env.qk.task("a")) == -1  # waiting again: kept until it ends
    new_seq = int(h["seq"])
    assert new_seq > old_seq
    assert int((await env.task("b"))["seq"]) < new_seq
    # ready again at a new sequence: behind "b", which was submitted after it failed
    assert await env.zset(env.qk.ready) == [
        ("b", ready_score(3, int((await env.task("b"))["seq"]))),
        ("a", ready_score(3, new_seq)),
    ]
    info = await env.info("a")
    assert (info.status, info.retry_count, info.errors) == (TaskStatus.QUEUED, 0, ["e1", "e2"])
    assert info.completed_time is None

    b, a = (await env.claim(n=2, now=NOW + 20)).tasks
    assert (b.task_id, a.task_id) == ("b", "a")
    assert (a.retries, a.attempts) == (0, 3)
    assert (await env.fail("a", a.fence, now=NOW + 21, retry_due=0, error="e3"))[0] == OK
    assert (await env.task("a"))["errors"] == "e1\x1ee2\x1ee3"
    assert await env.dead() == [("a", float(NOW + 21))]


async def test_requeued_task_is_not_cancelled_by_an_old_request(env: Env) -> None:
    """A cancel request that its run never confirmed (it failed for good first) must not follow
    the task into its requeued run."""
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    assert (await env.fail("a", fence, retry_due=0))[0] == OK
    if await env.store.requeue_dead(env.qk, ["a"]) == 0:
        # (also right: the failure ended the cancel-requested task CANCELLED, not dead)
        assert (await env.task("a"))["status"] == "cancelled"
        return
    (t,) = (await env.claim(n=1, now=NOW + 10)).tasks
    assert await env.extend([("a", t.fence)]) == ([], [])


# -- purge_dead-2 -------------------------------------------------------------------------------


async def test_purge_by_cutoff(env: Env) -> None:
    for i, task_id in enumerate(["a", "b", "c"]):
        await _dead_letter(env, task_id, now=NOW + 10 * i)
    assert await env.store.purge_dead(env.qk, NOW + 10) == 2  # at or before the cutoff
    assert await env.dead() == [("c", float(NOW + 20))]
    assert await env.client.exists(env.qk.task("a"), env.qk.task("b")) == 0
    assert (await env.task("c"))["status"] == "failed"
    assert await env.store.purge_dead(env.qk, NOW + 19) == 0
    assert await env.dead() == [("c", float(NOW + 20))]


async def test_purge_all(env: Env) -> None:
    for i, task_id in enumerate(["a", "b"]):
        await _dead_letter(env, task_id, now=NOW + i)
    assert await env.store.purge_dead(env.qk, None) == 2
    assert await env.dead() == []
    assert await env.client.exists(env.qk.task("a"), env.qk.task("b")) == 0
    assert await env.store.purge_dead(env.qk, None) == 0


async def test_purge_leaves_other_tasks(env: Env) -> None:
    await _dead_letter(env, "dead")
    await env.submit(row("waiting"))
    assert await env.store.purge_dead(env.qk, None) == 1
    assert (await env.task("waiting"))["status"] == "queued"
    assert await env.ready() == ["waiting"]


async def test_purge_does_not_delete_a_reused_id(env: Env) -> None:
    """An entry whose id now belongs to a task that is not failed only loses its entry."""
    await _dead_letter(env, "a")
    await env.expire_record("a")
    assert await env.submit(row("a")) == [OK]  # the id is free again
    assert await env.store.purge_dead(env.qk, None) == 1
    assert await env.dead() == []
    assert (await env.task("a"))["status"] == "queued"
