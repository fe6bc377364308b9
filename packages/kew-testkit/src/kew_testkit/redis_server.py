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

The same class also runs a Redis Cluster node (``cluster_node_timeout=``) or a Sentinel
(``sentinel_config=``); :mod:`kew_testkit.cluster` and :mod:`kew_testkit.sentinel` build whole
topologies out of them.
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
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, BinaryIO, Final, Self

__all__ = ["RedisServer", "RedisServerError", "find_free_port", "redis_server_version"]

_LOOPBACK: Final = "127.0.0.1"
_PORT_ATTEMPTS: Final = 3
_STOP_TIMEOUT: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1
_DIR_PREFIX: Final = "kew-redis-"
_PIDS_FILE: Final = "pids"  # "<owner pid> <server pid>", for the sweep of killed runs
_CLUSTER_BUS_OFFSET: Final = 10000  # a cluster node also listens on port + 10000
_MAX_CLUSTER_PORT: Final = 65535 - _CLUSTER_BUS_OFFSET
_SENTINEL_CONF: Final = "sentinel.conf"

_live: set[RedisServer] = set()
_live_lock = threading.Lock()
_hooks_installed = False


class RedisServerError(RuntimeError):
    """A ``redis-server`` could not be found, started, or did not answer PING in time."""


class _ReplyError(Exception):
    """An error reply (``-ERR ...``) from a server."""


def _read_reply(stream: BinaryIO) -> Any:
    """One RESP2 reply: str, int, None or a list of them; raises _ReplyError for ``-ERR``."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise _ReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind in (b"$", b"*") and int(body) < 0:
        return None
    if kind == b"$":
        data = stream.read(int(body) + 2)
        if len(data) != int(body) + 2:
            raise ConnectionError("connection closed in the middle of a reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        return [_read_reply(stream) for _ in range(int(body))]
    raise ConnectionError(f"not a RESP reply: {line[:40]!r}")


def _call(host: str, port: int, *args: object, timeout: float = 1.0) -> Any:
    """Send one command on a fresh connection and return its reply (see :func:`_read_reply`).

    Raises:
        OSError: the server does not answer (refused, closed, timed out).
        _ReplyError: the server answered with an error.
    """
    parts = [str(arg).encode() for arg in args]
    request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as stream:
            return _read_reply(stream)


def _info(host: str, port: int, section: str, timeout: float = 1.0) -> dict[str, str]:
    """``INFO <section>`` (or ``CLUSTER INFO`` for section ``"cluster-info"``) as a dict."""
    args = ("CLUSTER", "INFO") if section == "cluster-info" else ("INFO", section)
    text = _call(host, port, *args, timeout=timeout)
    pairs = (line.split(":", 1) for line in str(text).splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _wait_for(
    check: Callable[[], str | None], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` (None: done; else why not yet) until done or ``timeout`` seconds pass.

    Raises:
        TimeoutError: naming ``what`` and the last reason ``check`` gave.
    """
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while True:
        try:
            reason = check() or ""
        except (OSError, _ReplyError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if not reason:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} within {timeout} s; last seen: {reason}")
        time.sleep(interval)


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


def _find_cluster_port(host: str) -> int:
    """A free port ``p <= 55535`` whose cluster bus port ``p + 10000`` is free too."""
    for _ in range(100):
        port = find_free_port(host)
        if port > _MAX_CLUSTER_PORT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port + _CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RedisServerError(f"no free port pair (p, p + {_CLUSTER_BUS_OFFSET}) found on {host}")


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
        pid = _info(host, port, "server", timeout=timeout).get("process_id", "")
    except (OSError, _ReplyError):
        return None
    return int(pid) if pid.isdigit() else None


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
    _stop_many(servers)


def _stop_many(servers: Iterable[RedisServer]) -> None:
    """Stop several servers at once: SIGTERM to all first, then wait for each."""
    servers = list(servers)
    for server in servers:
        server._terminate()
    for server in servers:
        server.stop()


_HANDLED = (signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # a second delivery while stopping (``timeout`` signals the process group and ``uv run``
    # forwards it too) must not re-enter and wait forever on the lock the first one holds
    for sig in _HANDLED:
        signal.signal(sig, signal.SIG_IGN)
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
    for signum in _HANDLED:
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)


class _StartStop:
    """``with X(...) as x``: :meth:`start` on entry (returning self), :meth:`stop` on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_StartStop):
    """One ``redis-server`` process on a loopback port, for tests. Also a context manager.

    Example::

        with RedisServer() as server:
            print(server.url)        # redis://127.0.0.1:<port>/0

    Args:
        executable: binary name on PATH or a path. Default ``"redis-server"``.
        port: TCP port; None (default) picks a free one (and retries another if it was taken).
        startup_timeout: seconds (float) to wait for the server to answer PING. Default 10.0.
        extra_args: more ``--option value`` arguments for ``redis-server``. Default none.
        cluster_node_timeout: when set, start a Redis Cluster node (``--cluster-enabled yes``)
            with this ``cluster-node-timeout`` in milliseconds (int > 0) and its
            ``nodes-<port>.conf`` in the server's temporary directory. A picked port is at most
            55535 with ``port + 10000`` (the cluster bus) free as well. Default None.
        sentinel_config: when set, start a Sentinel (``redis-server <file> --sentinel``): this
            text (``sentinel monitor ...`` lines, str) is written to ``sentinel.conf`` in the
            server's temporary directory, which Sentinel rewrites as it learns. Default None.

    Raises:
        ValueError: both ``cluster_node_timeout`` and ``sentinel_config`` given, a
            non-positive ``cluster_node_timeout``, or a fixed ``port`` above 55535 for a cluster
            node.
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
        cluster_node_timeout: int | None = None,
        sentinel_config: str | None = None,
    ) -> None:
        if cluster_node_timeout is not None and sentinel_config is not None:
            raise ValueError("a server is a cluster node or a sentinel, not both")
        if cluster_node_timeout is not None:
            if cluster_node_timeout <= 0:
                raise ValueError(f"cluster_node_timeout must be > 0 ms, got {cluster_node_timeout}")
            if port is not None and port > _MAX_CLUSTER_PORT:
                raise ValueError(f"a cluster node's port must be <= {_MAX_CLUSTER_PORT}: {port}")
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.cluster_node_timeout = cluster_node_timeout
        self.sentinel_config = sentinel_config
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
    def address(self) -> tuple[str, int]:
        """``("127.0.0.1", port)``: the server's (host, port); valid once started."""
        return (self.host, self.port)

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
            self.port = self._fixed_port or self._free_port()
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

    def _free_port(self) -> int:
        if self.cluster_node_timeout is not None:
            return _find_cluster_port(self.host)
        return find_free_port(self.host)

    def _mode_args(self, path: str) -> tuple[list[str], list[str]]:
        """(arguments before the options, options after them) for a cluster node or sentinel."""
        assert self._dir is not None
        if self.sentinel_config is not None:
            config = self._dir / _SENTINEL_CONF
            config.write_text(self.sentinel_config.rstrip("\n") + "\n")
            return [path, str(config), "--sentinel"], []
        if self.cluster_node_timeout is not None:
            return [path], [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self._dir / f"nodes-{self.port}.conf"),
                "--cluster-node-timeout", str(self.cluster_node_timeout),
            ]  # fmt: skip
        return [path], []

    def _spawn(self, path: str) -> None:
        assert self._dir is not None
        head, mode = self._mode_args(path)
        args = [
            *head,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--daemonize", "no",
            "--logfile", str(self._dir / "redis.log"),
            *mode,
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

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it; its temporary directory stays
        until :meth:`stop`. Does nothing when it is not running.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None or os.getpid() != self._owner:
            return
        proc.kill()
        proc.wait()

    def _terminate(self) -> None:
        """Send SIGTERM without waiting (the first half of :meth:`stop`)."""
        proc = self._proc
        if proc is not None and proc.poll() is None and os.getpid() == self._owner:
            proc.terminate()

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

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.url} pid={self.pid} {state}>"
