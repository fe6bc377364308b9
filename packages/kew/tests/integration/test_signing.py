"""Signed payloads (design.md §6): with a signing key, a blob whose HMAC is missing or wrong is
never unpickled. The tampering test writes a malicious pickle straight into the task's record,
as someone with write access to Redis could, and checks that the file it would create never
appears."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from kew import QueueConfig, QueuePriority, SignatureError, TaskStatus
from kew.connection import create_client
from kew.keys import QueueKeys
from kew.signing import Signer, signer_from

Q = "signed"
P = QueuePriority.MEDIUM
KEY = "k" * 32
OLD_KEY = "o" * 32


async def add(a: int, b: int) -> int:
    return a + b


class _Exploit:
    """Unpickling this runs ``os.system("touch <path>")``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_sign_and_verify_round_trip_and_rotation() -> None:
    old, new = signer_from(OLD_KEY), signer_from([KEY, OLD_KEY])
    blob = b"pdata"
    assert new.verify(old.sign(blob)) == blob  # signed with the old key, verified after rotation
    assert new.sign(blob) != old.sign(blob)  # the first key signs
    with pytest.raises(SignatureError):
        signer_from(KEY).verify(old.sign(blob))  # the old key was dropped
    with pytest.raises(SignatureError):
        new.verify(blob)  # unsigned
    assert Signer().verify(new.sign(blob)) == blob  # no keys: signed data is read unchecked


@pytest.mark.parametrize("bad", ["short", b"", 42, [], [KEY, 3]])
def test_bad_signing_keys_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        signer_from(bad)


async def test_signed_tasks_run_and_results_come_back(kew_manager_factory: Any) -> None:
    m = await kew_manager_factory(signing_key=KEY)
    await m.create_queue(QueueConfig(Q, max_workers=2))
    await m.submit_task("t", Q, "add", add, P, 2, 3)
    info = await m.wait_for_task("t", timeout=10)
    assert (info.status, info.result) == (TaskStatus.COMPLETED, 5)


async def test_a_tampered_payload_is_never_unpickled(
    kew_manager_factory: Any, kew_redis_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    m = await kew_manager_factory(signing_key=KEY)
    await m.create_queue(QueueConfig(Q, max_workers=1, max_circuit_breaker_failures=100))
    await m.submit_task("victim", Q, "add", add, P, 1, 2, _defer_by=3600)
    # an attacker with write access to Redis replaces the arguments with a malicious pickle
    evil = b"p" + pickle.dumps(((_Exploit(marker),), {}))
    client = create_client(kew_redis_url)
    try:
        key = QueueKeys(m.namespace, Q).task("victim")
        assert await client.hset(key, "args", evil) == 0
        assert await client.hset(key, "due", 1) == 0
        await client.zadd(QueueKeys(m.namespace, Q).scheduled, {"victim": 1})
        await client.lpush(QueueKeys(m.namespace, Q).wake, b"1")
    finally:
        await client.aclose()
    info = await m.wait_for_task("victim", timeout=10)
    assert info.status is TaskStatus.FAILED
    assert "not signed" in (info.error or "")
    assert not marker.exists()  # the pickle was never loaded
    assert [d.task_id for d in await m.list_dead(Q)] == ["victim"]


async def test_a_payload_signed_with_another_key_fails_for_good(kew_manager_factory: Any) -> None:
    consumer = await kew_manager_factory(signing_key=KEY)
    stranger = await kew_manager_factory(signing_key=OLD_KEY)
    await consumer.create_queue(QueueConfig(Q, max_workers=1, max_retries=3))
    await stranger.pause_queue(Q)  # the stranger submits but must not run the task itself
    await stranger.create_queue(QueueConfig(Q, max_workers=1, max_retries=3))
    await stranger.submit_task("alien", Q, "add", add, P, 1, 1)
    await stranger.shutdown()
    await consumer.resume_queue(Q)
    info = await consumer.wait_for_task("alien", timeout=10)
    assert info.status is TaskStatus.FAILED and info.retry_count == 0  # no retry: it never can
    assert "signature does not match" in (info.error or "")


# -- by reference only (allow_pickled_functions=False) ----------------------------------------


async def echo(*args: Any, **kwargs: Any) -> Any:
    return [list(args), kwargs]


async def typed(value: Any) -> Any:
    return value


async def test_by_reference_only_round_trips_json_and_documented_types(
    kew_manager_factory: Any,
) -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    m = await kew_manager_factory(allow_pickled_functions=False)
    await m.create_queue(QueueConfig(Q, max_workers=2))
    value = {
        "when": dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 1),
        "amount": Decimal("12.50"),
        "id": uuid.UUID(int=7),
        "raw": b"\x00\xff",
        "pair": (1, "a"),
        "list": [1, 2.5, None, True, "x"],
    }
    await m.submit_task("t", Q, "typed", typed, P, value)
    info = await m.wait_for_task("t", timeout=10)
    assert (info.status, info.result) == (TaskStatus.COMPLETED, value)


async def test_by_reference_only_refuses_closures_and_unlisted_types(
    kew_manager_factory: Any,
) -> None:
    from kew import SerializationError

    m = await kew_manager_factory(allow_pickled_functions=False)
    await m.create_queue(QueueConfig(Q, max_workers=2))
    with pytest.raises(SerializationError, match="importable application function"):
        await m.submit_task("l", Q, "x", lambda: 1, P)
    with pytest.raises(SerializationError, match="set"):
        await m.submit_task("s", Q, "x", typed, P, {1, 2})
    assert (await m.get_queue_status(Q))["queued_tasks"] == 0


async def test_by_reference_only_never_unpickles_what_it_reads(
    kew_manager_factory: Any, tmp_path: Path
) -> None:
    """A worker in this mode refuses pickled arguments even when they are validly signed by a
    manager that allows pickling: nothing read from Redis is unpickled."""
    marker = tmp_path / "pwned"
    strict = await kew_manager_factory(allow_pickled_functions=False, signing_key=KEY)
    lax = await kew_manager_factory(signing_key=KEY)
    await strict.create_queue(QueueConfig(Q, max_workers=1))
    await lax.pause_queue(Q)
    await lax.create_queue(QueueConfig(Q, max_workers=1))
    await lax.submit_task("p", Q, "add", typed, P, _Exploit(marker))
    await lax.shutdown()
    await strict.resume_queue(Q)
    info = await strict.wait_for_task("p", timeout=10)
    assert info.status is TaskStatus.FAILED and "pickl" in (info.error or "")
    assert not marker.exists()


async def test_a_signed_payload_copied_into_another_task_is_refused(
    kew_manager_factory: Any, kew_redis_url: str
) -> None:
    """The HMAC covers the field and the task id: a validly signed blob replayed into another
    task (or another field) does not verify."""
    m = await kew_manager_factory(signing_key=KEY)
    await m.create_queue(QueueConfig(Q, max_workers=1, max_circuit_breaker_failures=100))
    await m.pause_queue(Q)
    await m.submit_task("admin-op", Q, "add", add, P, 100, 200)
    await m.submit_task("user-op", Q, "add", add, P, 1, 2)
    qk = QueueKeys(m.namespace, Q)
    client = create_client(kew_redis_url)
    try:
        admin_args = await client.hget(qk.task("admin-op"), "args")
        await client.hset(qk.task("user-op"), "args", admin_args)
    finally:
        await client.aclose()
    await m.resume_queue(Q)
    assert (await m.wait_for_task("admin-op", timeout=10)).result == 300
    info = await m.wait_for_task("user-op", timeout=10)
    assert info.status is TaskStatus.FAILED and "signature does not match" in (info.error or "")


def test_the_signature_binds_field_and_task() -> None:
    s = signer_from(KEY)
    blob = s.sign(b"pdata", b"args:a")
    assert s.verify(blob, context=b"args:a") == b"pdata"
    for other in (b"args:b", b"func:a", b"result:a"):
        with pytest.raises(SignatureError):
            s.verify(blob, context=other)


async def test_by_reference_only_refuses_builtins_and_standard_library_references(
    kew_manager_factory: Any, kew_redis_url: str, tmp_path: Path
) -> None:
    """Without pickles, a reference is still code: a writer naming os:system or builtins:exec
    must not get it run. Such references are refused at submit and when read."""
    from kew import SerializationError

    marker = tmp_path / "pwned"
    m = await kew_manager_factory(allow_pickled_functions=False)
    await m.create_queue(QueueConfig(Q, max_workers=1, max_circuit_breaker_failures=100))
    for func in (print, os.system, pickle.loads):
        with pytest.raises(SerializationError, match="application function"):
            await m.submit_task("x", Q, "t", func, P, "x")
    await m.pause_queue(Q)
    await m.submit_task("forged", Q, "t", typed, P, 1)
    qk = QueueKeys(m.namespace, Q)
    client = create_client(kew_redis_url)
    try:
        await client.hset(qk.task("forged"), "func", b"ros:system")
        await client.hset(qk.task("forged"), "args", f'J[["touch {marker}"],{{}}]'.encode())
    finally:
        await client.aclose()
    await m.resume_queue(Q)
    info = await m.wait_for_task("forged", timeout=10)
    assert info.status is TaskStatus.FAILED and "application function" in (info.error or "")
    assert not marker.exists()
