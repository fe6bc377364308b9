"""complete-6.lua: fence check, result and retention, cleanup of the payload, breaker reset,
wake-ups."""

from __future__ import annotations

import asyncio

from ._support import LEASE_LOST, NOW, OK, Env, row

DONE = NOW + 5_000
KEEP = 3_600_000  # retention, ms


async def _claimed(env: Env, *ids: str) -> dict[str, bytes]:
    await env.submit(*(row(i, args=b"pARGS") for i in ids))
    return {t.task_id: t.fence for t in (await env.claim(n=len(ids))).tasks}


async def test_completes_with_result_and_retention(env: Env) -> None:
    fences = await _claimed(env, "a")
    codes = await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b'j{"x":1}')])
    assert codes == [OK]
    h = await env.task("a")
    assert h["status"] == "completed"
    assert h["completed"] == str(DONE)
    assert h["result"] == 'j{"x":1}'
    assert h["owner"] == ""
    assert "func" not in h
    assert "args" not in h
    assert "error" not in h
    assert h["started"] == str(NOW)
    assert await env.leased() == []
    assert await env.ready() == []
    assert KEEP - 5_000 < await env.pttl(env.qk.task("a")) <= KEEP


async def test_wrong_fence_is_lease_lost_and_changes_nothing(env: Env) -> None:
    fences = await _claimed(env, "a")
    before = await env.task("a")
    wrong = fences["a"] + b"0"
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", wrong, b"jx")]) == [LEASE_LOST]
    assert await env.task("a") == before
    assert [m for m, _ in await env.leased()] == ["a"]
    assert await env.pttl(env.qk.task("a")) == -1


async def test_a_repeated_ack_of_the_same_run_is_ok_and_writes_nothing(env: Env) -> None:
    """The ack was applied but its reply was lost (dropped connection, failover): the retry
    must not report the lease lost (the run's hook would never fire) nor write again."""
    fences = await _claimed(env, "a")
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    assert await env.store.complete(env.qk, DONE + 1, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    h = await env.task("a")
    assert h["result"] == "j1"
    assert h["completed"] == str(DONE)


async def test_an_ack_of_an_older_run_after_completion_is_lease_lost(env: Env) -> None:
    await env.submit(row("a"))
    (old,) = (await env.claim(n=1, lease=1_000)).tasks
    (new,) = (await env.claim(n=1, now=NOW + 1_000, owner="w2")).tasks  # reclaimed
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", new.fence, b"j1")]) == [OK]
    assert await env.store.complete(env.qk, DONE + 1, KEEP, [("a", old.fence, b"j2")]) == [
        LEASE_LOST
    ]
    assert (await env.task("a"))["result"] == "j1"


async def test_a_claim_lost_in_a_failover_never_shares_its_fence(env: Env) -> None:
    """A failover can lose a claim's write: the new primary still has the task ready and
    leases it again. The first run (its claim reply had arrived) must not be able to complete
    the task as well; with a fence counted in Redis both runs held fence 1, and both acks
    answered OK (the task's completion hook fired twice)."""
    await env.submit(row("a"))
    keys = [k async for k in env.client.scan_iter(match=f"{env.ns}:*")]
    snapshot = {k: await env.client.dump(k) for k in keys}
    (lost,) = (await env.claim(n=1)).tasks
    for k in [k async for k in env.client.scan_iter(match=f"{env.ns}:*")]:
        await env.client.delete(k)
    for k, dumped in snapshot.items():  # the state the promoted replica had
        await env.client.restore(k, 0, dumped, replace=True)
    (again,) = (await env.claim(n=1, owner="w2")).tasks
    assert again.fence != lost.fence
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", again.fence, b"j1")]) == [OK]
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", lost.fence, b"j2")]) == [LEASE_LOST]
    assert (await env.task("a"))["result"] == "j1"


async def test_unknown_task_is_lease_lost(env: Env) -> None:
    assert await env.store.complete(env.qk, DONE, KEEP, [("ghost", b"1", b"j1")]) == [LEASE_LOST]
    assert await env.client.exists(env.qk.task("ghost")) == 0


async def test_batch_has_one_code_per_task(env: Env) -> None:
    fences = await _claimed(env, "a", "b", "c")
    codes = await env.store.complete(
        env.qk,
        DONE,
        KEEP,
        [("a", fences["a"], b"ja"), ("b", b"99", b"jb"), ("c", fences["c"], b"jc")],
    )
    assert codes == [OK, LEASE_LOST, OK]
    assert (await env.task("a"))["status"] == "completed"
    assert (await env.task("b"))["status"] == "processing"
    assert (await env.task("c"))["result"] == "jc"
    assert [m for m, _ in await env.leased()] == ["b"]


async def test_success_closes_the_breaker(env: Env) -> None:
    fences = await _claimed(env, "a")
    for _ in range(2):
        await env.store.breaker_failure(env.qk, NOW, 3, 60_000, 600_000)
    assert (await env.breaker())["failures"] == "2"
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    assert await env.client.exists(env.qk.breaker) == 0


async def test_lease_lost_leaves_the_breaker(env: Env) -> None:
    await _claimed(env, "a")
    await env.store.breaker_failure(env.qk, NOW, 3, 60_000, 600_000)
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", b"0", b"j1")]) == [LEASE_LOST]
    assert (await env.breaker())["failures"] == "1"


async def test_success_after_a_retry_drops_the_error(env: Env) -> None:
    fences = await _claimed(env, "a")
    assert (await env.fail("a", fences["a"], retry_due=NOW + 10, error="first"))[0] == OK
    t = (await env.claim(n=1, now=NOW + 10)).tasks[0]
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", t.fence, b"jok")]) == [OK]
    h = await env.task("a")
    assert h["status"] == "completed"
    assert h["retries"] == "1"
    assert "error" not in h


async def test_publishes_completed_event(env: Env) -> None:
    fences = await _claimed(env, "a")
    async with env.store.subscribe([env.qk.events]) as pubsub:
        assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                break
            await asyncio.sleep(0)
    assert message is not None
    assert message["channel"] == env.qk.events.encode()
    assert message["data"] == b"completed a"


async def test_closing_an_open_breaker_wakes_idle_workers(env: Env) -> None:
    fences = await _claimed(env, "a")
    await env.submit(row("waiting"))  # held back by the open breaker
    for _ in range(3):
        await env.store.breaker_failure(env.qk, NOW, 3, 60_000, 600_000)
    assert (await env.breaker())["state"] == "open"
    await env.clear_wake()
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    assert await env.client.exists(env.qk.breaker) == 0
    assert await env.wake_len() == 1


async def test_success_wakes_idle_workers_when_ready_tasks_wait(env: Env) -> None:
    """A finished task frees a slot (e.g. of global_max_workers): idle workers are woken, with a
    closed breaker too, as long as some ready task waits."""
    fences = await _claimed(env, "a")
    await env.submit(row("waiting"))
    await env.clear_wake()
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    assert await env.wake_len() == 1


async def test_success_without_ready_tasks_wakes_nobody(env: Env) -> None:
    fences = await _claimed(env, "a")
    for _ in range(3):  # even closing an open breaker: there is nothing to claim
        await env.store.breaker_failure(env.qk, NOW, 3, 60_000, 600_000)
    await env.clear_wake()
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    assert await env.client.exists(env.qk.breaker) == 0
    assert await env.wake_len() == 0


async def test_lease_lost_wakes_nobody(env: Env) -> None:
    await _claimed(env, "a")
    await env.submit(row("waiting"))
    await env.clear_wake()
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", b"9", b"j1")]) == [LEASE_LOST]
    assert await env.wake_len() == 0


async def test_completion_clears_a_cancel_request(env: Env) -> None:
    fences = await _claimed(env, "a")
    assert await env.cancel("a") == (OK, "requested")
    assert await env.store.complete(env.qk, DONE, KEEP, [("a", fences["a"], b"j1")]) == [OK]
    h = await env.task("a")
    assert h["status"] == "completed"
    assert "cancel" not in h
