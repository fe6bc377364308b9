"""Integration tests of the ``kew`` command line: the shop demo end to end (on the test session's
Redis and on the embedded ``memory://``), the message when rich is missing, and ``--version``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap

import kew
import pytest
from kew import demo
from kew.cli import main, resolve_redis_url
from kew.connection import create_client, mask_url
from kew.models import TaskInfo, TaskStatus

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def _run_demo(capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["demo"])
    out = ANSI.sub("", capsys.readouterr().out)
    assert code == 0, out
    return out


def _assert_summary(out: str) -> None:
    assert "status counts: completed 22, failed 1" in out
    assert "ok   orders: 20/20 completed" in out
    delay = re.search(r"ok   reminder: completed, ran (\d+\.\d+) s after submit", out)
    assert delay is not None, out
    assert float(delay.group(1)) >= demo.REMINDER_DELAY - 0.001
    assert "ok   flaky payment: completed, retry_count 2, result 'charged on attempt 3'" in out
    assert "ok   bad shipment: failed after 2 retries, error: no carrier delivers to" in out
    assert "all as expected" in out


async def _namespace_keys(url: str, namespace: str) -> list[bytes]:
    client = create_client(url)
    try:
        return [k async for k in client.scan_iter(match=f"{namespace}:*")]
    finally:
        await client.aclose()


def test_demo_on_the_session_redis(
    kew_redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEW_REDIS_URL", kew_redis_url)
    out = _run_demo(capsys)
    assert f"Redis: {mask_url(kew_redis_url)}" in out
    assert "from KEW_REDIS_URL" in out
    _assert_summary(out)
    found = re.search(r"namespace: (kew-demo-[0-9a-f]+)", out)
    assert found is not None
    assert asyncio.run(_namespace_keys(kew_redis_url, found.group(1))) == []


def test_demo_on_the_embedded_redis_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KEW_REDIS_URL", raising=False)
    out = _run_demo(capsys)
    assert "Redis: memory:// (embedded in-process Redis; no --redis-url" in out
    _assert_summary(out)


def test_redis_url_option_then_environment_then_memory() -> None:
    env = {"KEW_REDIS_URL": "redis://env:6379"}
    assert resolve_redis_url("redis://opt:6379", env) == ("redis://opt:6379", "--redis-url")
    assert resolve_redis_url(None, env) == ("redis://env:6379", "KEW_REDIS_URL")
    assert resolve_redis_url(None, {}) == ("memory://", "default")
    assert resolve_redis_url(None, {"KEW_REDIS_URL": ""}) == ("memory://", "default")


def test_unreachable_redis_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--redis-url", "redis://user:pw@127.0.0.1:1"]) == 1
    out = ANSI.sub("", capsys.readouterr().out)
    assert "kew demo failed: KewConnectionError" in out
    assert "user:***@" in out
    assert ":pw@" not in out


def test_missing_rich_tells_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # makes `import rich` raise ImportError
    assert main(["demo"]) == 2
    captured = capsys.readouterr()
    assert "pip install 'kew[cli]'" in captured.err
    assert "namespace" not in captured.out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"kew {kew.__version__}\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_the_library_never_imports_rich() -> None:
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import kew
        for m in pkgutil.iter_modules(kew.__path__):
            if m.name != "demo":
                importlib.import_module("kew." + m.name)
        assert not [m for m in sys.modules if m.split(".")[0] == "rich"], "rich imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _info(task_id: str, status: TaskStatus, retries: int = 0, error: str | None = None) -> TaskInfo:
    return TaskInfo(task_id, "t", demo.QUEUE, 2, status=status, retry_count=retries, error=error)


def test_evaluate_flags_each_wrong_fact() -> None:
    good = {t: _info(t, TaskStatus.COMPLETED) for t in demo.ORDER_IDS}
    good[demo.REMINDER] = _info(demo.REMINDER, TaskStatus.COMPLETED)
    good[demo.FLAKY] = _info(demo.FLAKY, TaskStatus.COMPLETED, 2)
    good[demo.BAD] = _info(demo.BAD, TaskStatus.FAILED, 2, error=f"x {demo.BAD_ERROR}")
    assert all(c.ok for c in demo.evaluate(good, 2.01))
    assert [c.ok for c in demo.evaluate(good, 1.5)] == [True, False, True, True]
    assert [c.ok for c in demo.evaluate(good, None)] == [True, False, True, True]
    bad = dict(good)
    bad["order-07"] = _info("order-07", TaskStatus.FAILED)
    bad[demo.FLAKY] = _info(demo.FLAKY, TaskStatus.COMPLETED, 1)
    bad[demo.BAD] = _info(demo.BAD, TaskStatus.COMPLETED)
    assert [c.ok for c in demo.evaluate(bad, 2.01)] == [False, True, False, False]
