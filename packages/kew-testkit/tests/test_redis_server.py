"""The throwaway redis-server: it starts, answers, persists nothing, and is always gone after,
whether the context ends, a pytest session ends, or the run is interrupted (SIGINT = Ctrl-C,
SIGTERM, even SIGKILL of the parent)."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis
from kew_testkit import RedisServer, RedisServerError, redis_server_version

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(
    redis_server_version() is None, reason="no redis-server binary on PATH"
)


def test_server_starts_answers_and_is_gone_after_the_context(procs: Any) -> None:
    with RedisServer() as server:
        port, workdir = server.port, server._dir
        assert server.running
        assert server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        assert str(client.info("server")["redis_version"]) == server.version
        client.close()
        assert procs.redis_pids(port) == [server.pid]
    assert not server.running
    assert procs.wait_gone(port)
    assert workdir is not None and not workdir.exists()


def test_persistence_is_off(private_redis: RedisServer) -> None:
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        client.close()


def test_each_server_gets_its_own_port(private_redis: RedisServer) -> None:
    with RedisServer() as other:
        assert other.port != private_redis.port


def test_a_taken_port_is_reported_with_the_servers_log(private_redis: RedisServer) -> None:
    with pytest.raises(RedisServerError, match="Address already in use"):
        RedisServer(port=private_redis.port, startup_timeout=5).start()


def test_a_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(RedisServerError, match="no 'no-such-redis-server' binary found on PATH"):
        RedisServer("no-such-redis-server").start()


def test_stop_twice_is_harmless(procs: Any) -> None:
    server = RedisServer().start()
    server.stop()
    server.stop()
    assert procs.wait_gone(server.port)
    assert "stopped" in repr(server)


_HOLDER = """
import sys, time
from pathlib import Path
from kew_testkit import redis_server

with redis_server(backend="redis") as backend:
    Path(sys.argv[1]).write_text(backend.url + "\\n")
    time.sleep(120)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_server_survives_a_signal_to_its_owner(
    signum: signal.Signals, tmp_path: Path, procs: Any
) -> None:
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    url_file = tmp_path / "url.txt"
    owner = subprocess.Popen([sys.executable, str(script), str(url_file)])
    try:
        port = int(procs.wait_for_file(url_file).strip().rsplit(":", 1)[1].split("/")[0])
        server_pids = procs.redis_pids(port)
        assert server_pids, "the server should be running while its owner runs"
        owner.send_signal(signum)
        owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert procs.wait_gone(port), f"redis-server on port {port} outlived its owner ({signum.name})"
    with RedisServer():  # the next start sweeps the directory a killed run left behind
        pass
    for directory in Path(tempfile.gettempdir()).glob("kew-redis-*"):
        pids = directory / "pids"
        assert not (pids.exists() and str(server_pids[0]) in pids.read_text().split())


_SESSION_TEST = """
import time
from pathlib import Path

def test_uses_the_server(kew_redis_url):
    Path({path!r}).write_text(kew_redis_url + "\\n")
    {body}
"""


def _port(url: str) -> int:
    return int(url.strip().rsplit(":", 1)[1].split("/")[0])


def test_server_is_gone_after_a_pytester_session(pytester: pytest.Pytester, procs: Any) -> None:
    url_file = pytester.path / "url.txt"
    body = f"assert Path({str(url_file)!r}).exists()"
    pytester.makepyfile(textwrap.dedent(_SESSION_TEST.format(path=str(url_file), body=body)))
    result = pytester.runpytest_subprocess("--kew-backend=redis", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert procs.wait_gone(_port(url_file.read_text()))


def test_ctrl_c_during_a_session_leaves_no_server(pytester: pytest.Pytester, procs: Any) -> None:
    url_file = pytester.path / "url.txt"
    source = _SESSION_TEST.format(path=str(url_file), body="time.sleep(120)")
    pytester.makepyfile(textwrap.dedent(source))
    run = pytester.popen(
        [sys.executable, "-m", "pytest", "--kew-backend=redis", "-p", "no:cacheprovider"],
        stdin=subprocess.DEVNULL,
    )
    try:
        port = _port(procs.wait_for_file(url_file))
        assert procs.redis_pids(port)
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert b"KeyboardInterrupt" in out
    assert procs.wait_gone(port), f"redis-server on port {port} outlived the interrupted run"
