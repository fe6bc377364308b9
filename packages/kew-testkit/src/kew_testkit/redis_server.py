"""Spawn and stop a throwaway ``redis-server`` process. No pytest here.

This module owns the lifecycle of the servers the testkit starts: a free loopback port, persistence
off (``--save "" --appendonly no``), a private temporary directory, a wait until the server answers
PING, and a stop that also runs when the run is interrupted:

- Ctrl-C / ``KeyboardInterrupt``: the context manager (or pytest's session teardown) stops it;
- normal interpreter exit: an ``atexit`` hook stops every server still running;
- SIGTERM / SIGHUP while Python's default handler is in place: a handler stops the servers, then
  lets the signal take its default course;
- the parent killed outright (SIGKILL): on Linux the server is started with a parent-death signal,
  so the kernel sends it SIGTERM; its temporary directory is removed by the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final

__all__ = ["RedisServer", "RedisServerError", "find_free_port", "redis_server_version"]

_LOOPBACK: Final = "127.0.0.1"
_PORT_ATTEMPTS: Final = 3
_STOP_TIMEOUT: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1
_DIR_PREFIX: Final = "kew-redis-"
_PIDS_FILE: Final = "pids"  # "<owner pid> <server pid>", for the sweep of killed runs

_live: set[RedisServer] = set()
_live_lock = threading.Lock()
_hooks_installed = False


class RedisServerError(RuntimeError):
    """A ``redis-server`` could not be found, started, or did not answer PING in time."""


def find_free_port(host: str = _LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it).

    Args:
        host: interface to probe. Default ``"127.0.0.1"``.

    Returns:
        A port number; another process may still take it before it is used, so callers retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_version(executable: str = "redis-server") -> str | None:
    """Return the version of a ``redis-server`` binary (e.g. ``"7.0.15"``) without starting it.

    Args:
        executable: binary name on PATH or a path. Default ``"redis-server"``.

    Returns:
        The version string, or None when the binary is missing or does not say.
    """
    path = shutil.which(executable)
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v=(\S+)", out)
    return match.group(1) if match else None


def _server_pid(host: str, port: int, timeout: float = 0.5) -> int | None:
    """The ``process_id`` of the Redis answering on ``host:port`` (INFO), or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    match = re.search(rb"process_id:(\d+)", reply)
    return int(match.group(1)) if match else None


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that asks Linux to SIGTERM the child when this thread dies."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def _alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie (killed, not yet reaped) counts as dead
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _sweep_stale_dirs() -> None:
    """Remove the directories of servers whose owner and server were both killed outright."""
    for directory in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        try:
            pids = [int(p) for p in (directory / _PIDS_FILE).read_text().split()]
        except (OSError, ValueError):
            continue
        if pids and not any(_alive(pid) for pid in pids):
            shutil.rmtree(directory, ignore_errors=True)


def _stop_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)


class RedisServer:
    """One ``redis-server`` process on a loopback port, for tests. Also a context manager.

    Example::

        with RedisServer() as server:
            print(server.url)        # redis://127.0.0.1:<port>/0

    Args:
        executable: binary name on PATH or a path. Default ``"redis-server"``.
        port: TCP port; None (default) picks a free one (and retries another if it was taken).
        startup_timeout: seconds (float) to wait for the server to answer PING. Default 10.0.
        extra_args: more ``--option value`` arguments for ``redis-server``. Default none.

    Raises:
        RedisServerError: from :meth:`start` when the binary is missing, exits early or does
            not answer PING within ``startup_timeout`` (the message carries its log's tail).
    """

    host: str = _LOOPBACK

    def __init__(
        self,
        executable: str = "redis-server",
        *,
        port: int | None = None,
        startup_timeout: float = 10.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self._fixed_port = port
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._owner = os.getpid()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (str); valid once started."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id (int), or None when not started."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def version(self) -> str | None:
        """The server's version (``"7.0.15"``), read from ``redis-server --version``."""
        return redis_server_version(self.executable)

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING.

        Returns:
            self, running.

        Raises:
            RedisServerError: see the class docstring.
        """
        path = shutil.which(self.executable)
        if path is None:
            raise RedisServerError(f"no {self.executable!r} binary found on PATH")
        _install_hooks()
        _sweep_stale_dirs()
        for attempt in range(_PORT_ATTEMPTS):
            self.port = self._fixed_port or find_free_port(self.host)
            self._dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
            try:
                self._spawn(path)
                error = self._wait_ready()
            except BaseException:  # KeyboardInterrupt while waiting too: leave nothing behind
                self.stop()
                raise
            if error is None:
                return self
            self.stop()
            in_use = "Address already in use" in error
            if not in_use or self._fixed_port or attempt == _PORT_ATTEMPTS - 1:
                raise RedisServerError(f"redis-server on port {self.port} did not start: {error}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, path: str) -> None:
        assert self._dir is not None
        args = [
            path,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--daemonize", "no",
            "--logfile", str(self._dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a terminal Ctrl-C reaches us; we stop it in order
                preexec_fn=_parent_death_signal(),
            )
        except OSError as exc:
            raise RedisServerError(f"cannot run {path}: {exc}") from exc
        with _live_lock:
            _live.add(self)
        (self._dir / _PIDS_FILE).write_text(f"{self._owner} {self._proc.pid}\n")

    def _wait_ready(self) -> str | None:
        """Wait for PING; None when up, else the reason (with the log's tail)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return f"exited with code {self._proc.returncode}; log: {self._log_tail()}"
            if _server_pid(self.host, self.port) == self._proc.pid:  # ours, not a squatter
                return None
            time.sleep(0.01)
        return f"no PING answer within {self.startup_timeout} s; log: {self._log_tail()}"

    def _log_tail(self) -> str:
        if self._dir is None:
            return "(no log)"
        try:
            lines = (self._dir / "redis.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:])

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove its
        temporary directory. Safe to call twice; does nothing in a forked child process.

        Args:
            timeout: seconds (float) to wait for a graceful exit. Default 5.0.
        """
        if os.getpid() != self._owner:
            return
        with _live_lock:
            _live.discard(self)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.url} pid={self.pid} {state}>"
