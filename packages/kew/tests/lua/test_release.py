"""release-5.lua: running tasks handed back at once (shutdown), at their old place."""

from __future__ import annotations

from ._support import NOW, Env, ready_score, row


async def test_hands_back_at_the_same_score(env: Env) -> None:
    await env.submit(row("a"), row("b"), row("h", priority=1))
    before = dict(await env.zset(env.qk.ready))
    (h, a) = (await env.claim(n=2)).tasks
    assert (h.task_id, a.task_id) == ("h", "a")
    await env.clear_wake()
    assert await env.release([("a", a.fence), ("h", h.fence)]) == 2
    after = dict(await env.zset(env.qk.ready))
    assert after == before
    assert after["a"] == ready_score(2, 1)
    assert await env.leased() == []
    assert await env.wake_len() == 1
    assert await env.claim_ids(n=3) == ["h", "a", "b"]


async def test_release_drops_the_fence_and_resets_the_run(env: Env) -> None:
    await env.submit(row("a"))
    (t,) = (await env.claim(n=1, owner="w1")).tasks
    assert await env.release([("a", t.fence)]) == 1
    h = await env.task("a")
    assert h["status"] == "queued"
    assert h["owner"] == ""
    assert "fence" not in h  # the released run can no longer ack
    assert h["attempts"] == "0"  # the handed-back run does not count as an attempt
    assert h.get("retries", "0") == "0"  # submit no longer writes the zero counter
    # the old run is fenced off
    assert await env.store.complete(env.qk, NOW, 1000, [("a", t.fence, b"j1")]) == [3]
    assert await env.store.extend(env.qk, NOW + 1, [("a", t.fence)]) == (["a"], [])
    (again,) = (await env.claim(n=1, owner="w2")).tasks
    assert again.fence != t.fence
    assert again.attempts == 1


async def test_stale_fence_is_skipped(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    (a, b) = (await env.claim(n=2)).tasks
    await env.clear_wake()
    assert await env.release([("a", b"99"), ("b", b.fence)]) == 1
    assert [m for m, _ in await env.leased()] == ["a"]
    assert (await env.task("a"))["status"] == "processing"
    assert (await env.task("a"))["fence"] == a.fence.decode()
    assert await env.ready() == ["b"]


async def test_nothing_released_pushes_no_wake(env: Env) -> None:
    await env.submit(row("a"))
    await env.claim(n=1)
    await env.clear_wake()
    assert await env.release([("a", b"7"), ("ghost", b"1")]) == 0
    assert await env.wake_len() == 0
    assert [m for m, _ in await env.leased()] == ["a"]


async def test_released_finished_task_is_not_requeued(env: Env) -> None:
    await env.submit(row("a"))
    (t,) = (await env.claim(n=1)).tasks
    assert await env.store.complete(env.qk, NOW, 1000, [("a", t.fence, b"j1")]) == [0]
    assert await env.release([("a", t.fence)]) == 0
    assert await env.ready() == []
    assert (await env.task("a"))["status"] == "completed"


async def test_released_retried_task_keeps_retry_count(env: Env) -> None:
    await env.submit(row("a"))
    (t,) = (await env.claim(n=1)).tasks
    await env.fail("a", t.fence, retry_due=NOW + 5)
    (t2,) = (await env.claim(n=1, now=NOW + 5)).tasks
    assert await env.release([("a", t2.fence)]) == 1
    h = await env.task("a")
    assert (h["status"], h["retries"], h["attempts"]) == ("queued", "1", "1")
    assert await env.ready() == ["a"]
