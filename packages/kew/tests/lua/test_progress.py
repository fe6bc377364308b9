"""progress-2.lua: only the run that owns the task (its fence, still leased) writes progress."""

from __future__ import annotations

from ._support import LEASE_LOST, NOW, OK, Env, row


async def _report(env: Env, task_id: str, fence: bytes, value: float, message: str = "") -> int:
    return await env.store.progress(env.qk, task_id, fence, value, message)


async def test_owner_writes_progress(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await _report(env, "a", fence, 0.25, "row 5 of 20") == OK
    h = await env.task("a")
    assert (h["progress"], h["progress_message"]) == ("0.25", "row 5 of 20")
    assert await _report(env, "a", fence, 0.5, "") == OK  # overwritten, message too
    info = await env.info("a")
    assert (info.progress, info.progress_message) == (0.5, "")


async def test_values_round_trip(env: Env) -> None:
    fence = await env.claim_one("a")
    for value in (0.0, 1.0, 1 / 3, 12345.0, -2.5, 1e-9):
        assert await _report(env, "a", fence, value, "é ✓") == OK
        info = await env.info("a")
        assert (info.progress, info.progress_message) == (value, "é ✓")


async def test_stale_fence_is_lease_lost_and_writes_nothing(env: Env) -> None:
    fence = await env.claim_one("a")
    before = await env.task("a")
    assert await _report(env, "a", fence + b"0", 0.5, "x") == LEASE_LOST
    assert await _report(env, "a", b"", 0.5, "x") == LEASE_LOST
    assert await env.task("a") == before


async def test_reclaimed_run_is_lease_lost_and_the_new_run_owns_it(env: Env) -> None:
    old = await env.claim_one("a", lease=1_000)
    (new,) = (await env.claim(n=1, now=NOW + 1_000, owner="w2")).tasks
    assert await _report(env, "a", old, 0.9, "old") == LEASE_LOST
    assert "progress" not in await env.task("a")
    assert await _report(env, "a", new.fence, 0.1, "new") == OK
    assert (await env.task("a"))["progress_message"] == "new"


async def test_finished_task_is_lease_lost(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await _report(env, "a", fence, 0.5, "half") == OK
    assert await env.complete("a", fence) == [OK]
    before = await env.task("a")
    assert await _report(env, "a", fence, 1.0, "late") == LEASE_LOST
    assert await env.task("a") == before


async def test_waiting_task_is_lease_lost(env: Env) -> None:
    await env.submit(row("a"))
    assert await _report(env, "a", b"0", 0.5, "x") == LEASE_LOST
    assert "progress" not in await env.task("a")


async def test_unknown_task_is_lease_lost_and_not_created(env: Env) -> None:
    assert await _report(env, "ghost", b"1", 0.5, "x") == LEASE_LOST
    assert await env.client.exists(env.qk.task("ghost")) == 0


async def test_cancel_requested_run_may_still_report(env: Env) -> None:
    fence = await env.claim_one("a")
    assert await env.cancel("a") == (OK, "requested")
    assert await _report(env, "a", fence, 0.7, "stopping") == OK
