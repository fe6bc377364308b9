"""Shared fixtures of kew-testkit's own tests: a private redis-server, process inspection."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kew_testkit import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: starts a Redis Cluster or Sentinel, or waits for a failover (seconds)"
    )


class Processes:
    """Finds redis-server processes by the ``127.0.0.1:<port>`` in their process title."""

    @staticmethod
    def redis_pids(port: int) -> list[int]:
        """Live (non-zombie) redis-server processes serving ``port``."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if "redis-server" in cmdline and f":{port}" in cmdline and state != "Z":
                pids.append(int(entry.name))
        return pids

    @staticmethod
    def port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_gone(self, port: int, timeout: float = 15.0) -> bool:
        """True once no redis-server serves ``port`` (bounded poll), False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.redis_pids(port) and not self.port_open(port):
                return True
            time.sleep(0.05)
        return False

    def all_gone(self, ports: list[int], timeout: float = 15.0) -> list[int]:
        """The ports still served by a redis-server after a bounded wait (empty: all gone)."""
        return [port for port in ports if not self.wait_gone(port, timeout)]

    @staticmethod
    def wait_for_file(path: Path, timeout: float = 30.0) -> str:
        """The file's content once it exists and ends with a newline (bounded poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                text = path.read_text()
                if text.endswith("\n"):
                    return text
            time.sleep(0.02)
        raise TimeoutError(f"{path} was not written within {timeout} s")


@pytest.fixture
def procs() -> Processes:
    return Processes()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test module's own (skipped where there is no binary)."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary on PATH")
    with RedisServer() as server:
        yield server
