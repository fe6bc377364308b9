"""The Redis a run uses, and what the harness asks of it (flush, command counts, ceilings).

Without ``--redis-url`` the run starts its own throwaway ``redis-server`` through kew-testkit
(a free loopback port, persistence off) and flushes it between measurements, since it is ours.
A server given by URL is never flushed: each measurement then works under fresh names, and
leftover keys stay.

The scale scenario also needs a Redis Cluster: :func:`start_cluster` starts 3 local masters
through kew-testkit for one measurement and tears them down after it, whatever ``--redis-url``
says (it is always ours, so it is flushed too).
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from kew_testkit import BackendUnavailableError, RedisClusterServer, TestkitConfig
from kew_testkit import redis_server as testkit_server

__all__ = ["ClusterServer", "Server", "acquire", "redis_benchmark", "start_cluster"]

_IGNORED = {"info", "flushall", "ping", "client|setname", "hello"}  # the harness's own calls


@dataclass
class Server:
    """A Redis for the run.

    Attributes:
        url: its URL.
        owned: True when this run started it (then, and only then, it is flushed).
        version: ``redis_version``.
        describe: one line for the report.
    """

    url: str
    owned: bool
    version: str
    describe: str

    def __post_init__(self) -> None:
        self._client: Any = redis.Redis.from_url(self.url, socket_timeout=30)

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 6379

    def flush(self) -> None:
        """FLUSHALL, only on a server this run started (never on a default-port server)."""
        if not self.owned:
            return
        if self.host_port[1] == 6379:
            raise RuntimeError("refusing to FLUSHALL a server on port 6379")
        self._client.flushall()

    def command_calls(self) -> dict[str, int]:
        """``{command: calls}`` from INFO commandstats (commands inside scripts included)."""
        stats = self._client.info("commandstats")
        out: dict[str, int] = {}
        for name, fields in stats.items():
            cmd = name.removeprefix("cmdstat_")
            if cmd not in _IGNORED:
                out[cmd] = int(fields["calls"])
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


class ClusterServer:
    """A Redis Cluster this run started (see :func:`start_cluster`); quacks like :class:`Server`
    for what a measurement needs: ``url``, ``flush()``, ``command_calls()``.
    """

    owned = True

    def __init__(self, cluster: RedisClusterServer) -> None:
        self._cluster = cluster
        self.url = cluster.url
        self.version = cluster.version or "?"
        self.describe = cluster.describe()
        self._clients: list[Any] = [
            redis.Redis(host=host, port=port, socket_timeout=30) for host, port in cluster.masters
        ]

    def flush(self) -> None:
        """FLUSHALL on every master (never on port 6379)."""
        if any(port == 6379 for _, port in self._cluster.masters):
            raise RuntimeError("refusing to FLUSHALL a server on port 6379")
        for client in self._clients:
            client.flushall()

    def command_calls(self) -> dict[str, int]:
        """``{command: calls}`` summed over the masters (INFO commandstats)."""
        out: dict[str, int] = {}
        for client in self._clients:
            for name, fields in client.info("commandstats").items():
                cmd = name.removeprefix("cmdstat_")
                if cmd not in _IGNORED and cmd != "cluster":
                    out[cmd] = out.get(cmd, 0) + int(fields["calls"])
        return out

    def spread(self, queues: Sequence[str]) -> dict[str, list[str]]:
        """``{"host:port": [queue, ...]}``: the master serving each queue's hash tag."""
        out: dict[str, list[str]] = {f"{h}:{p}": [] for h, p in self._cluster.masters}
        for q in queues:
            host, port = self._cluster.master_of("{" + q + "}")
            out.setdefault(f"{host}:{port}", []).append(q)
        return out

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()


@contextlib.contextmanager
def start_cluster(masters: int = 3) -> Iterator[ClusterServer]:
    """A fresh Redis Cluster of ``masters`` local masters, no replicas, stopped on exit.

    Raises:
        kew_testkit.RedisServerError, TimeoutError: it could not start (nothing is left
            running).
    """
    with RedisClusterServer(masters=masters, replicas=0) as cluster:
        server = ClusterServer(cluster)
        try:
            yield server
        finally:
            server.close()


def _version(url: str) -> str:
    client: Any = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


@contextlib.contextmanager
def acquire(url: str | None) -> Iterator[Server]:
    """The run's server: ``url`` as given (not owned), else one started for the run.

    Raises:
        RuntimeError: no way to start a Redis here (install redis-server, or pass a URL).
    """
    if url:
        server = Server(url, owned=False, version=_version(url), describe=f"Redis at {url}")
        try:
            yield server
        finally:
            server.close()
        return
    last: Exception | None = None
    for backend in ("redis", "docker"):
        try:
            cm = testkit_server(TestkitConfig(backend=backend))
            found = cm.__enter__()
        except BackendUnavailableError as exc:
            last = exc
            continue
        try:
            server = Server(
                found.url, found.owned, found.version or _version(found.url), found.describe()
            )
            yield server
        finally:
            server.close()
            cm.__exit__(None, None, None)
        return
    raise RuntimeError(f"cannot start a Redis for the benchmark ({last}); pass --redis-url")


_BENCH_KEY = "key:__rand_int__"  # the one key redis-benchmark -t set,get writes (no -r)


def redis_benchmark(server: Server, clients: int, n: int) -> dict[str, Any]:
    """``redis-benchmark -t set,get`` with ``clients`` connections: ``{"set": rps, "get": rps}``
    or ``{"error": reason}``. On a server given by URL its one key is deleted afterwards unless
    it existed before."""
    existed = bool(server._client.exists(_BENCH_KEY))
    try:
        return _redis_benchmark(server, clients, n)
    finally:
        if not existed:
            server._client.delete(_BENCH_KEY)


def _redis_benchmark(server: Server, clients: int, n: int) -> dict[str, Any]:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return {"error": "redis-benchmark not on PATH"}
    host, port = server.host_port
    cmd = [exe, "-h", host, "-p", str(port), "-c", str(clients), "-n", str(n), "-t", "set,get"]
    cmd += ["--csv"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"error": "redis-benchmark timed out"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:] or f"exit {proc.returncode}"}
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    return {row["test"].lower(): float(row["rps"]) for row in rows if row.get("rps")}
