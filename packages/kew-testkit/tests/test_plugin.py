"""The pytest plugin, tested the way users meet it: a sample project run through ``pytester``.

The sample has no conftest.py; installing kew-testkit is all it needs. It runs on the
redis-server backend and on the embedded ``memory://`` backend.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
import redis
from kew.connection import create_client
from kew_testkit import RedisServer, docker_available, namespace_keys

pytest_plugins = ["pytester"]

HAS_REDIS_SERVER = shutil.which("redis-server") is not None
BACKENDS = [
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not HAS_REDIS_SERVER, reason="no redis-server on PATH"),
    ),
    "memory",
]

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""

SAMPLE = '''
"""A user's test file: kew-testkit's fixtures, no conftest.py, pytest-asyncio strict mode."""

import asyncio

import pytest
from kew import QueueConfig, QueuePriority, TaskStatus

from kew_testkit import (
    assert_task_completed,
    assert_task_failed,
    drain,
    wait_for_status,
    wait_until,
)

pytestmark = pytest.mark.asyncio

STATE = {"clock": None, "runs": []}  # (name, virtual time) of every attempt


def now():
    return STATE["clock"].now() if STATE["clock"] is not None else 0.0


async def work(name):
    STATE["runs"].append((name, now()))
    return name.upper()


async def always_fails(name):
    STATE["runs"].append((name, now()))
    raise RuntimeError(f"boom {len(STATE['runs'])}")


async def fails_twice(name):
    STATE["runs"].append((name, now()))
    if len(STATE["runs"]) < 3:
        raise RuntimeError("not yet")
    return "third time lucky"


@pytest.fixture(autouse=True)
def fresh_state():
    STATE["clock"] = None
    STATE["runs"] = []


async def test_roundtrip(kew_manager):
    await kew_manager.create_queue(QueueConfig("emails", max_workers=2))
    await kew_manager.submit_task("t1", "emails", "send", work, QueuePriority.HIGH, "hi")
    info = await wait_for_status(kew_manager, "t1", TaskStatus.COMPLETED, timeout=10)
    assert_task_completed(info, result="HI")


async def test_deferral_of_300_seconds(kew_manager, fake_clock):
    STATE["clock"] = fake_clock
    start = fake_clock.now()
    await kew_manager.create_queue(QueueConfig("later", max_workers=1))
    await kew_manager.submit_task(
        "d1", "later", "remind", work, QueuePriority.MEDIUM, "d1", _defer_by=300
    )
    await fake_clock.advance(299.999)
    assert STATE["runs"] == []
    assert (await kew_manager.get_task_status("d1")).status is TaskStatus.QUEUED
    await fake_clock.advance(0.001)
    info = await wait_for_status(kew_manager, "d1", TaskStatus.COMPLETED, timeout=10)
    assert_task_completed(info, result="D1")
    assert STATE["runs"] == [("d1", start + 300)]


async def _attempts(count):
    await wait_until(lambda: len(STATE["runs"]) >= count, timeout=10)
    return [t for _, t in STATE["runs"]]


async def test_three_retries_back_off_1_2_4_seconds_exactly(kew_manager, fake_clock):
    STATE["clock"] = fake_clock
    t0 = fake_clock.now()
    await kew_manager.create_queue(QueueConfig(
        "flaky", max_workers=1, max_retries=3, retry_delay=1.0, max_circuit_breaker_failures=10
    ))
    await kew_manager.submit_task("r1", "flaky", "charge", always_fails, QueuePriority.MEDIUM, "r1")
    info = await wait_for_status(kew_manager, "r1", TaskStatus.RETRY, timeout=10)
    assert info.due_time.timestamp() == t0 + 1
    assert await _attempts(1) == [t0]
    for n, delay in enumerate([1, 2, 4], start=2):
        await fake_clock.advance(delay - 0.001)
        assert len(STATE["runs"]) == n - 1, f"attempt {n} ran a millisecond early"
        await fake_clock.advance(0.001)
        assert (await _attempts(n))[-1] == t0 + sum([1, 2, 4][: n - 1])
    info = await wait_for_status(kew_manager, "r1", TaskStatus.FAILED, timeout=10)
    assert_task_failed(info, error_contains="boom 4", retry_count=3)
    assert [t - t0 for _, t in STATE["runs"]] == [0, 1, 3, 7]


async def test_one_big_advance_keeps_every_retry_on_time(kew_manager, fake_clock):
    STATE["clock"] = fake_clock
    t0 = fake_clock.now()
    await kew_manager.create_queue(QueueConfig(
        "flaky", max_workers=1, max_retries=3, retry_delay=1.0, max_circuit_breaker_failures=10
    ))
    await kew_manager.submit_task("r2", "flaky", "charge", always_fails, QueuePriority.MEDIUM, "r2")
    await wait_for_status(kew_manager, "r2", TaskStatus.RETRY, timeout=10)
    await fake_clock.advance(60)
    info = await wait_for_status(kew_manager, "r2", TaskStatus.FAILED, timeout=10)
    assert_task_failed(info, retry_count=3)
    assert [t - t0 for _, t in STATE["runs"]] == [0, 1, 3, 7]


async def test_drain_waits_for_due_work_only(kew_manager, fake_clock):
    STATE["clock"] = fake_clock
    await kew_manager.create_queue(QueueConfig("batch", max_workers=3))
    for i in range(10):
        await kew_manager.submit_task(f"b{i}", "batch", "w", work, QueuePriority.LOW, f"b{i}")
    await kew_manager.submit_task(
        "late", "batch", "w", work, QueuePriority.LOW, "late", _defer_by=60
    )
    await drain(kew_manager, timeout=10)
    assert sorted(n for n, _ in STATE["runs"]) == sorted(f"b{i}" for i in range(10))
    assert (await kew_manager.get_task_status("late")).status is TaskStatus.QUEUED
    await fake_clock.advance(60)
    await drain(kew_manager, "batch", timeout=10)
    assert (await kew_manager.get_task_status("late")).status is TaskStatus.COMPLETED


async def test_factory_managers_share_one_namespace(kew_manager, kew_manager_factory):
    other = await kew_manager_factory()
    assert other.namespace == kew_manager.namespace
    for m in (kew_manager, other):
        await m.create_queue(QueueConfig("shared", max_workers=1))
    await kew_manager.submit_task("s1", "shared", "w", work, QueuePriority.MEDIUM, "s1")
    info = await wait_for_status(other, "s1", TaskStatus.COMPLETED, timeout=10)
    assert_task_completed(info, result="S1")


async def test_eager_manager_returns_the_final_status(kew_eager_manager):
    await kew_eager_manager.create_queue(QueueConfig("eager", max_retries=3, retry_delay=5.0))
    info = await kew_eager_manager.submit_task(
        "e1", "eager", "try", fails_twice, QueuePriority.MEDIUM, "e1"
    )
    assert_task_completed(info, result="third time lucky")
    assert info.retry_count == 2
'''


def _run(pytester: pytest.Pytester, backend: str, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    # one module name per backend: kew caches task functions by "module:qualname", and two
    # in-process runs must not share a name
    pytester.makepyfile(**{f"test_sample_{backend}": SAMPLE})
    return pytester.runpytest("--kew-backend", backend, "-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_project(pytester: pytest.Pytester, backend: str) -> None:
    result = _run(pytester, backend)
    result.assert_outcomes(passed=7)
    if backend == "redis":
        result.stdout.fnmatch_lines(
            [
                "kew-testkit: backend=redis (redis-server 7.*, started on first use)",
                "kew-testkit: tests ran on redis-server 7.* at redis://127.0.0.1:*",
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "kew-testkit: backend=memory (embedded fakeredis *)",
                "kew-testkit: tests ran on memory:// (embedded fakeredis *)",
            ]
        )


LEAKY = """
import asyncio
import pytest
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import wait_for_status

RELEASE = asyncio.Event()

async def blocked():
    await asyncio.Event().wait()

@pytest.mark.asyncio
async def test_leaves_a_task_running(kew_manager):
    await kew_manager.create_queue(QueueConfig("q"))
    await kew_manager.submit_task("stuck", "q", "t", blocked, QueuePriority.MEDIUM)
    await wait_for_status(kew_manager, "stuck", TaskStatus.PROCESSING, timeout=10)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_left_running_fails_the_test(pytester: pytest.Pytester, backend: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest("--kew-backend", backend, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*LeakedTasksError: 1 kew task(s) were still running when the test ended: stuck*"]
    )


NAMESPACE = """
import pytest
from pathlib import Path
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import wait_for_status

async def work():
    return 1

@pytest.mark.asyncio
async def test_writes_into_its_namespace(kew_manager):
    Path("namespace.txt").write_text(kew_manager.namespace)
    await kew_manager.create_queue(QueueConfig("q"))
    await kew_manager.submit_task("n1", "q", "t", work, QueuePriority.MEDIUM)
    await wait_for_status(kew_manager, "n1", TaskStatus.COMPLETED, timeout=10)
"""


@pytest.mark.skipif(not HAS_REDIS_SERVER, reason="no redis-server on PATH")
def test_url_backend_deletes_only_the_tests_namespace(pytester: pytest.Pytester) -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("someone-elses-key", b"keep me")
        pytester.makeini(INI)
        pytester.makepyfile(test_ns=NAMESPACE)
        result = pytester.runpytest("--kew-redis-url", server.url, "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["kew-testkit: backend=url (redis://127.0.0.1:*"])
        namespace = (pytester.path / "namespace.txt").read_text()
        assert asyncio.run(_keys(server.url, namespace)) == []
        assert client.get("someone-elses-key") == b"keep me"
        client.close()


async def _keys(url: str, namespace: str) -> list[bytes]:
    client: Any = create_client(url)
    try:
        return await namespace_keys(client, namespace)
    finally:
        await client.aclose()


def test_forced_unavailable_backends_stop_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEW_REDIS_URL", raising=False)  # CI sets it; this run must not see it
    pytester.makeini(INI)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--kew-backend=redis", "-o", "kew_redis_server=no-such-redis-server"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*kew-testkit: --kew-backend=redis: no 'no-such-redis-server' binary on PATH*"]
    )
    result = pytester.runpytest("--kew-backend=url")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*kew backend 'url' needs a Redis URL*"])
    docker_ok, reason = docker_available()
    if not docker_ok:
        result = pytester.runpytest("--kew-backend=docker")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"kew-testkit: --kew-backend=docker: {reason}" in result.stderr.str()


def test_options_are_listed_in_help(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--kew-backend=*", "*--kew-redis-url=*", "*kew_redis_image*"])


def test_tests_that_use_no_kew_fixture_start_no_server(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "tests ran on" not in result.stdout.str()
