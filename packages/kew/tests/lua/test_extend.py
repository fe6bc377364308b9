"""extend-2.lua: renew leases of this worker's runs; report the ones it lost (and, since cancel,
the ones whose cancellation was asked: see test_cancel.py)."""

from __future__ import annotations

from ._support import LEASE, NOW, OK, Env, row


async def test_renews_matching_fence_only(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    claimed = {t.task_id: t.fence for t in (await env.claim(n=2)).tasks}
    reply = await env.store.extend(env.qk, NOW + 99_000, [("a", claimed["a"]), ("b", b"7")])
    assert reply == (["b"], [])  # (lost, cancel requested)
    assert await env.leased() == [("b", float(NOW + LEASE)), ("a", float(NOW + 99_000))]


async def test_renew_all(env: Env) -> None:
    await env.submit(row("a"), row("b"))
    owned = [(t.task_id, t.fence) for t in (await env.claim(n=2)).tasks]
    assert await env.store.extend(env.qk, NOW + 45_000, owned) == ([], [])
    assert await env.leased() == [("a", float(NOW + 45_000)), ("b", float(NOW + 45_000))]


async def test_reclaimed_task_is_reported_lost(env: Env) -> None:
    await env.submit(row("a"))
    old = (await env.claim(n=1, lease=1_000)).tasks[0]
    new = (await env.claim(n=1, now=NOW + 1_000, owner="w2")).tasks[0]
    assert await env.store.extend(env.qk, NOW + 1_000 + 99_000, [("a", old.fence)]) == (["a"], [])
    # the new run's lease is untouched by the stale renewal
    assert await env.leased() == [("a", float(NOW + 1_000 + LEASE))]
    assert await env.store.extend(env.qk, NOW + 77_777, [("a", new.fence)]) == ([], [])
    assert await env.leased() == [("a", float(NOW + 77_777))]


async def test_finished_task_is_lost_and_not_leased_again(env: Env) -> None:
    await env.submit(row("a"))
    t = (await env.claim(n=1)).tasks[0]
    assert await env.store.complete(env.qk, NOW, 1_000, [("a", t.fence, b"j1")]) == [OK]
    assert await env.store.extend(env.qk, NOW + 99_000, [("a", t.fence)]) == (["a"], [])
    assert await env.leased() == []


async def test_deleted_task_is_lost(env: Env) -> None:
    await env.submit(row("a"))
    t = (await env.claim(n=1)).tasks[0]
    await env.client.delete(env.qk.task("a"))
    assert await env.store.extend(env.qk, NOW + 99_000, [("a", t.fence)]) == (["a"], [])
    assert await env.leased() == [("a", float(NOW + LEASE))]


async def test_unknown_task_is_lost(env: Env) -> None:
    assert await env.store.extend(env.qk, NOW, [("nope", b"1")]) == (["nope"], [])
    assert await env.leased() == []


async def test_nothing_to_renew(env: Env) -> None:
    assert await env.store.extend(env.qk, NOW, []) == ([], [])
