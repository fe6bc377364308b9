"""submit.lua: modes 'each', 'stage' and 'commit' (raw ARGV through RedisStore)."""

from __future__ import annotations

from ._support import (
    DUPLICATE,
    NOT_FOUND,
    NOW,
    OK,
    QUEUE_FULL,
    STAGING_TTL,
    Env,
    ready_score,
    row,
)

# -- mode 'each' ----------------------------------------------------------------------------------


async def test_each_writes_the_task_hash_and_ready_entry(env: Env) -> None:
    codes = await env.submit(row("a", priority=1, task_type="email", func=b"rm:f", args=b"pX"))
    assert codes == [OK]
    assert await env.task("a") == {
        "id": "a",
        "queue": "q",
        "type": "email",
        "priority": "1",
        "status": "queued",
        "queued": str(NOW),
        "func": "rm:f",
        "args": "pX",
        "seq": "1",
    }  # counters a new task does not need yet (retries, attempts, fence) read as 0
    assert await env.zset(env.qk.ready) == [("a", ready_score(1, 1))]
    assert await env.scheduled() == []
    assert await env.pttl(env.qk.task("a")) == -1  # a waiting task never expires


async def test_each_ready_scores_are_priority_then_sequence(env: Env) -> None:
    codes = await env.submit(row("m1", 2), row("l1", 3), row("h1", 1), row("m2", 2))
    assert codes == [OK] * 4
    assert await env.zset(env.qk.ready) == [
        ("h1", ready_score(1, 3)),
        ("m1", ready_score(2, 1)),
        ("m2", ready_score(2, 4)),
        ("l1", ready_score(3, 2)),
    ]
    assert await env.client.hget(env.qk.meta, "seq") == b"4"


async def test_each_pushes_one_wake_token(env: Env) -> None:
    await env.submit(row("a"))
    await env.submit(row("b"))
    assert await env.wake_len() == 1
    assert 0 < await env.pttl(env.qk.wake) <= 600_000


async def test_each_duplicate_is_rejected_and_the_record_kept(env: Env) -> None:
    assert await env.submit(row("a", task_type="first")) == [OK]
    assert await env.submit(row("a", task_type="second", priority=1)) == [DUPLICATE]
    t = await env.task("a")
    assert t["type"] == "first"
    assert t["priority"] == "2"
    assert await env.ready() == ["a"]


async def test_each_duplicate_within_one_call(env: Env) -> None:
    assert await env.submit(row("a"), row("b"), row("a", task_type="x")) == [OK, OK, DUPLICATE]
    assert (await env.task("a"))["type"] == "t"
    assert await env.ready() == ["a", "b"]


async def test_each_duplicate_of_running_task(env: Env) -> None:
    await env.submit(row("a"))
    assert await env.claim_ids() == ["a"]
    assert await env.submit(row("a")) == [DUPLICATE]
    assert (await env.task("a"))["status"] == "processing"
    assert await env.ready() == []


async def test_each_queue_full_counts_ready_and_scheduled(env: Env) -> None:
    codes = await env.submit(row("r1"), row("d1", due=NOW + 5_000), max_size=2)
    assert codes == [OK, OK]
    assert await env.submit(row("x"), max_size=2) == [QUEUE_FULL]
    assert await env.submit(row("y", due=NOW + 1), max_size=2) == [QUEUE_FULL]
    assert await env.client.exists(env.qk.task("x"), env.qk.task("y")) == 0
    assert await env.ready() == ["r1"]
    assert [m for m, _ in await env.scheduled()] == ["d1"]


async def test_each_queue_full_within_one_call(env: Env) -> None:
    codes = await env.submit(row("a"), row("b"), row("c"), max_size=2)
    assert codes == [OK, OK, QUEUE_FULL]
    assert await env.client.exists(env.qk.task("c")) == 0


async def test_each_leased_tasks_do_not_count_toward_max_size(env: Env) -> None:
    await env.submit(row("a"), row("b"), max_size=2)
    assert await env.claim_ids(n=2) == ["a", "b"]
    assert await env.submit(row("c"), row("d"), max_size=2) == [OK, OK]
    assert await env.submit(row("e"), max_size=2) == [QUEUE_FULL]


async def test_each_deferred_goes_to_scheduled(env: Env) -> None:
    due = NOW + 60_000
    assert await env.submit(row("d", due=due)) == [OK]
    assert await env.scheduled() == [("d", float(due))]
    assert await env.ready() == []
    t = await env.task("d")
    assert t["due"] == str(due)
    assert t["status"] == "queued"
    assert "seq" not in t
    assert await env.pttl(env.qk.task("d")) == -1


async def test_each_due_not_in_the_future_is_ready(env: Env) -> None:
    assert await env.submit(row("now", due=NOW), row("past", due=NOW - 1)) == [OK, OK]
    assert await env.ready() == ["now", "past"]
    assert await env.scheduled() == []


# -- modes 'stage' / 'commit' ---------------------------------------------------------------------


async def test_single_chunk_commit(env: Env) -> None:
    code = await env.commit("b1", row("a"), row("d", due=NOW + 10), row("h", priority=1))
    assert code == (OK, 0)
    assert await env.zset(env.qk.ready) == [("h", ready_score(1, 2)), ("a", ready_score(2, 1))]
    assert await env.scheduled() == [("d", float(NOW + 10))]
    assert await env.wake_len() == 1
    assert await env.pttl(env.qk.task("a")) == -1


async def test_staged_chunks_are_invisible_until_commit(env: Env) -> None:
    assert await env.stage("b1", row("a"), row("b", due=NOW + 10)) == (OK, 0)
    assert await env.stage("b1", row("c")) == (OK, 0)
    # kept aside as rows: no task record, nothing a worker can claim
    assert await env.client.exists(*(env.qk.task(t) for t in "abc")) == 0
    assert await env.client.lrange(env.qk.staging("b1"), 0, -1) == [
        str(v).encode() if not isinstance(v, bytes) else v
        for r in (row("a"), row("b", due=NOW + 10), row("c"))
        for v in r
    ]
    assert 0 < await env.pttl(env.qk.staging("b1")) <= STAGING_TTL
    assert await env.ready() == []
    assert await env.scheduled() == []
    assert await env.wake_len() == 0
    assert (await env.claim()).tasks == []

    assert await env.commit("b1", row("d")) == (OK, 0)
    assert await env.ready() == ["a", "c", "d"]
    assert await env.scheduled() == [("b", float(NOW + 10))]
    for tid in ("a", "b", "c", "d"):
        assert await env.pttl(env.qk.task(tid)) == -1, tid
        assert (await env.task(tid))["status"] == "queued"
    assert await env.client.exists(env.qk.staging("b1")) == 0
    assert await env.wake_len() == 1
    assert await env.claim_ids() == ["a", "c", "d"]


async def test_a_committed_batch_leaves_the_same_records_as_one_call(env: Env) -> None:
    rows = [row("a", 1, task_type="x", args=b"p1"), row("b", due=NOW + 10), row("c", 3)]
    assert await env.stage("b1", *rows[:2]) == (OK, 0)
    assert await env.commit("b1", rows[2]) == (OK, 0)
    chunked = {t: await env.task(t) for t in "abc"}
    await env.store.delete_namespace(env.ns)
    assert await env.commit("b2", *rows) == (OK, 0)
    assert {t: await env.task(t) for t in "abc"} == chunked


async def test_commit_duplicate_aborts_and_deletes_staged(env: Env) -> None:
    await env.submit(row("x", task_type="existing"))
    assert await env.stage("b1", row("a"), row("b")) == (OK, 0)
    assert await env.commit("b1", row("c"), row("x")) == (DUPLICATE, 4)  # 4th of the batch
    assert await env.client.exists(env.qk.task("a"), env.qk.task("b"), env.qk.task("c")) == 0
    assert await env.client.exists(env.qk.staging("b1")) == 0
    assert (await env.task("x"))["type"] == "existing"
    assert await env.ready() == ["x"]


async def test_a_staged_id_taken_before_the_commit_aborts_it(env: Env) -> None:
    assert await env.stage("b1", row("a"), row("b")) == (OK, 0)
    await env.submit(row("b", task_type="raced"))  # another client wins the id meanwhile
    assert await env.commit("b1", row("c")) == (DUPLICATE, 2)
    assert await env.client.exists(env.qk.task("a"), env.qk.task("c")) == 0
    assert (await env.task("b"))["type"] == "raced"
    assert await env.ready() == ["b"]


async def test_stage_refuses_an_id_already_taken(env: Env) -> None:
    await env.submit(row("x"))
    assert await env.stage("b1", row("a")) == (OK, 0)
    assert await env.stage("b1", row("b"), row("x")) == (DUPLICATE, 3)  # 3rd of the batch
    assert await env.client.exists(env.qk.staging("b1")) == 0
    assert await env.client.exists(env.qk.task("a"), env.qk.task("b")) == 0


async def test_an_id_twice_in_one_batch_aborts_at_commit(env: Env) -> None:
    assert await env.stage("b1", row("a")) == (OK, 0)
    assert await env.stage("b1", row("b"), row("a")) == (OK, 0)
    assert await env.commit("b1", row("c")) == (DUPLICATE, 3)
    assert await env.client.exists(*(env.qk.task(t) for t in "abc")) == 0
    assert await env.client.exists(env.qk.staging("b1")) == 0
    assert await env.ready() == []


async def test_stage_refuses_a_batch_already_over_max_size(env: Env) -> None:
    await env.submit(row("w"), max_size=3)
    assert await env.stage("b1", row("a"), max_size=3) == (OK, 0)
    assert await env.stage("b1", row("b"), row("c"), max_size=3) == (QUEUE_FULL, 0)
    assert await env.client.exists(env.qk.staging("b1")) == 0


async def test_commit_queue_full_counts_staged_and_waiting(env: Env) -> None:
    await env.submit(row("w", due=NOW + 100), max_size=4)
    assert await env.stage("b1", row("a"), row("b"), max_size=4) == (OK, 0)
    assert await env.commit("b1", row("c"), row("d"), max_size=4) == (QUEUE_FULL, 0)
    assert await env.client.exists(*(env.qk.task(t) for t in "abcd")) == 0
    assert await env.client.exists(env.qk.staging("b1")) == 0
    assert await env.ready() == []
    assert [m for m, _ in await env.scheduled()] == ["w"]


async def test_commit_exactly_max_size_fits(env: Env) -> None:
    assert await env.stage("b1", row("a"), row("b"), max_size=3) == (OK, 0)
    assert await env.commit("b1", row("c"), max_size=3) == (OK, 0)
    assert await env.ready() == ["a", "b", "c"]


async def test_commit_with_expired_staged_chunk_publishes_nothing(env: Env) -> None:
    assert await env.stage("b1", row("a"), row("b")) == (OK, 0)
    await env.client.delete(env.qk.staging("b1"))  # as if its staging ttl ran out
    assert await env.commit("b1", row("c")) == (NOT_FOUND, 0)
    assert await env.client.exists(*(env.qk.task(t) for t in "abc")) == 0
    assert await env.ready() == []


async def test_a_chunk_after_an_expired_one_is_refused(env: Env) -> None:
    assert await env.stage("b1", row("a")) == (OK, 0)
    await env.client.delete(env.qk.staging("b1"))
    assert await env.stage("b1", row("b")) == (NOT_FOUND, 0)
    assert await env.client.exists(env.qk.staging("b1")) == 0


async def test_a_chunk_sent_twice_is_staged_once(env: Env) -> None:
    # a retried call whose first reply was lost: the repeat must not stage the rows again
    assert await env.stage("b1", row("a"), row("b")) == (OK, 0)
    env.staged["b1"] = 0  # the retry carries the same arguments as the first try
    assert await env.stage("b1", row("a"), row("b")) == (OK, 0)
    assert await env.client.llen(env.qk.staging("b1")) == 2 * 6
    assert await env.commit("b1", row("c")) == (OK, 0)
    assert await env.ready() == ["a", "b", "c"]


async def test_a_batch_larger_than_one_unpack_slice(env: Env) -> None:
    # past the script's slices (4000 values per RPUSH / EXISTS / ZADD call)
    rows = [row(f"t{i}", due=NOW + 5 if i % 3 == 0 else 0) for i in range(5000)]
    assert await env.stage("b1", *rows[:2500], max_size=10_000) == (OK, 0)
    assert await env.commit("b1", *rows[2500:], max_size=10_000) == (OK, 0)
    ready = await env.ready()
    assert ready == [f"t{i}" for i in range(5000) if i % 3]
    assert len(await env.scheduled()) == 5000 - len(ready)
    assert await env.client.hget(env.qk.meta, "seq") == b"5000"


async def test_batches_are_independent(env: Env) -> None:
    assert await env.stage("b1", row("a")) == (OK, 0)
    assert await env.stage("b2", row("z")) == (OK, 0)
    assert await env.commit("b2") == (OK, 0)
    assert await env.ready() == ["z"]
    assert (await env.client.lrange(env.qk.staging("b1"), 0, -1))[0] == b"a"


# -- one task (enqueue-2.lua) and many (submit.lua 'each') agree -----------------------------------


async def _state(env: Env, ns: str) -> list[tuple[str, object]]:
    """Every key of namespace ``ns`` with its contents, the namespace renamed to ``NS``."""
    out: list[tuple[str, object]] = []
    async for raw in env.client.scan_iter(match=f"{ns}:*"):
        key = raw.decode()
        kind = (await env.client.type(key)).decode()
        if kind == "hash":
            value: object = sorted((await env.client.hgetall(key)).items())
        elif kind == "zset":
            value = await env.client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await env.client.lrange(key, 0, -1)
        else:
            value = await env.client.get(key)
        ttl = await env.client.pttl(key)
        out.append((key.replace(ns, "NS", 1), (kind, value, ttl > 0)))
    return sorted(out, key=lambda item: item[0])


async def _one_by_one(env: Env, rows: list[tuple[str, str, int, int, bytes, bytes]]) -> list[int]:
    """Each row alone (the enqueue script), as sequential submit_task calls send them."""
    codes: list[int] = []
    for r in rows:
        codes += await env.store.submit(env.qk, NOW, 3, [r])
    return codes


async def _each_script(env: Env, rows: list[tuple[str, str, int, int, bytes, bytes]]) -> list[int]:
    """Each row through the many-task script, one call per row."""
    keys = env.store._keys("submit", env.qk)
    codes: list[int] = []
    for r in rows:
        codes += await env.store._run("submit", keys, [NOW, 3, "each", 0, env.qk.queue, "-", 0, *r])
    return codes


async def test_the_one_task_script_leaves_the_same_state_as_the_many_task_script(
    env: Env,
) -> None:
    rows = [
        row("ready", priority=1, task_type="email", func=b"rm:f", args=b"pX"),
        row("later", due=NOW + 5_000),
        row("ready"),  # duplicate
        row("third", priority=3),
        row("fourth"),  # queue full (max_size 3)
    ]
    codes_one = await _one_by_one(env, rows)
    state_one = await _state(env, env.ns)
    await env.store.delete_namespace(env.ns)
    codes_many = await _each_script(env, rows)
    state_many = await _state(env, env.ns)
    assert codes_one == codes_many == [OK, OK, DUPLICATE, OK, QUEUE_FULL]
    assert state_one == state_many
    assert any(key.endswith(":task:later") for key, _ in state_one)
    assert not any(key.endswith((":task:fourth", ":id:fourth")) for key, _ in state_one)


# -- a call sent again after its reply was lost (review finding) ----------------------------------


async def test_a_commit_sent_again_answers_ok_and_writes_nothing_more(env: Env) -> None:
    assert await env.stage("b1", row("a")) == (OK, 0)
    assert await env.commit("b1", row("b")) == (OK, 0)
    seq = await env.client.hget(env.qk.meta, "seq")
    assert await env.commit("b1", row("b")) == (OK, 0)  # not DUPLICATE, not NOT_FOUND
    assert await env.client.hget(env.qk.meta, "seq") == seq
    assert await env.ready() == ["a", "b"]
    assert 0 < await env.pttl(env.qk.staging("b1") + ":outcome") <= STAGING_TTL


async def test_a_one_call_batch_sent_again_is_not_its_own_duplicate(env: Env) -> None:
    assert await env.commit("b1", row("a"), row("b")) == (OK, 0)
    assert await env.commit("b1", row("a"), row("b")) == (OK, 0)
    assert await env.ready() == ["a", "b"]


async def test_an_aborted_chunk_sent_again_gets_the_same_answer(env: Env) -> None:
    await env.submit(row("x"))
    assert await env.stage("b1", row("a")) == (OK, 0)
    assert await env.stage("b1", row("x")) == (DUPLICATE, 2)
    assert await env.stage("b1", row("x")) == (DUPLICATE, 2)  # not NOT_FOUND ("expired")
    assert await env.commit("b1") == (DUPLICATE, 2)
    assert await env.client.exists(env.qk.task("a")) == 0


async def test_another_batch_id_is_not_answered_from_an_earlier_outcome(env: Env) -> None:
    assert await env.commit("b1", row("a")) == (OK, 0)
    assert await env.commit("b2", row("a")) == (DUPLICATE, 1)
