"""A throwaway Redis Sentinel setup of local ``redis-server`` processes, for tests. No pytest.

:class:`RedisSentinelServer` starts a primary, its replica(s) (``--replicaof`` the primary) and
three Sentinels (``redis-server <config> --sentinel``) watching it under the service name
``kewprimary``, each a :class:`~kew_testkit.RedisServer` (persistence off, private temporary
directory, stopped on exit, Ctrl-C, SIGTERM and parent death). It waits until every Sentinel
knows the primary, every replica and the other Sentinels. It can also crash the primary
(SIGKILL) and wait for the Sentinels to promote a replica, for failover tests.

Its URL, ``redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/kewprimary`` (the Sentinels,
then the service name; a database may follow: ``.../kewprimary/0``), is the form kew's
``TaskQueueManager(redis_url=...)`` accepts for Sentinel.
"""

from __future__ import annotations

import shutil
from typing import Any, Final

from .redis_server import (
    RedisServer,
    RedisServerError,
    _call,
    _info,
    _StartStop,
    _stop_many,
    _wait_for,
)

__all__ = ["RedisSentinelServer"]

DEFAULT_SERVICE: Final = "kewprimary"
_DOWN_FLAGS: Final = frozenset({"s_down", "o_down", "disconnected"})
# A replica's first sync would otherwise wait 5 s for more replicas to share the transfer.
_NO_SYNC_DELAY: Final = ("--repl-diskless-sync-delay", "0")

Address = tuple[str, int]


def _as_dicts(reply: Any) -> list[dict[str, str]]:
    """``SENTINEL REPLICAS|SENTINELS`` replies (flat key/value lists) as dicts."""
    return [dict(zip(entry[::2], entry[1::2], strict=True)) for entry in reply or []]


def _up(entry: dict[str, str]) -> bool:
    return not set(entry.get("flags", "").split(",")) & _DOWN_FLAGS


class RedisSentinelServer(_StartStop):
    """A primary, its replica(s) and Sentinels watching them, for tests. Also a context manager.

    Example::

        with RedisSentinelServer() as sentinel:
            print(sentinel.url)   # redis+sentinel://127.0.0.1:s1,...,127.0.0.1:s3/kewprimary
            sentinel.kill_primary()
            new_primary = sentinel.wait_for_failover(timeout=30)

    Args:
        executable: the ``redis-server`` binary, a name on PATH or a path. Default
            ``"redis-server"``.
        service_name: the name the Sentinels monitor the primary under (str, no ``/``).
            Default ``"kewprimary"``.
        replicas: number of replicas of the primary (int >= 0). Default 1.
        sentinels: number of Sentinels (int >= 1). Default 3.
        quorum: Sentinels that must agree the primary is down (int, 1..sentinels). Default 2.
        down_after: ``down-after-milliseconds``, in milliseconds (int > 0): how long the primary
            may be silent before a Sentinel considers it down. Default 1000.
        failover_timeout: ``failover-timeout``, in milliseconds (int > 0). Default 5000.
        startup_timeout: seconds (float) each process may take to answer PING. Default 10.0.
        ready_timeout: seconds (float) until every Sentinel sees the primary, every replica
            (in sync) and the other Sentinels. Default 30.0.

    Raises:
        ValueError: for a value out of the ranges above.
        RedisServerError: from :meth:`start` when ``redis-server`` is missing or a process does
            not start.
        TimeoutError: from :meth:`start` when the setup is not ready within ``ready_timeout``.

    Whatever :meth:`start` raises, every process it started is stopped and every temporary
    directory removed before the exception propagates.
    """

    def __init__(
        self,
        executable: str = "redis-server",
        *,
        service_name: str = DEFAULT_SERVICE,
        replicas: int = 1,
        sentinels: int = 3,
        quorum: int = 2,
        down_after: int = 1000,
        failover_timeout: int = 5000,
        startup_timeout: float = 10.0,
        ready_timeout: float = 30.0,
    ) -> None:
        if not service_name or any(c in service_name for c in "/ \t\r\n"):
            raise ValueError(f"service_name must be a non-empty word, got {service_name!r}")
        if replicas < 0 or sentinels < 1:
            raise ValueError(f"need replicas >= 0 and sentinels >= 1, got {replicas}, {sentinels}")
        if not 1 <= quorum <= sentinels:
            raise ValueError(f"quorum must be in 1..{sentinels}, got {quorum}")
        if down_after <= 0 or failover_timeout <= 0:
            raise ValueError("down_after and failover_timeout must be > 0 ms")
        self.executable = executable
        self.service_name = service_name
        self.replicas_count = replicas
        self.sentinels_count = sentinels
        self.quorum = quorum
        self.down_after = down_after
        self.failover_timeout = failover_timeout
        self.startup_timeout = startup_timeout
        self.ready_timeout = ready_timeout
        self.nodes: list[RedisServer] = []  # the primary and the replicas (data nodes)
        self.sentinel_nodes: list[RedisServer] = []
        self.primary: Address = ("127.0.0.1", 0)
        self.replicas: list[Address] = []
        self._killed: Address | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def sentinels(self) -> list[Address]:
        """The Sentinels' (host, port) addresses."""
        return [server.address for server in self.sentinel_nodes]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/kewprimary`` (str); valid
        once started. Append ``/<db>`` for another database than 0.
        """
        seeds = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"redis+sentinel://{seeds}/{self.service_name}"

    @property
    def version(self) -> str | None:
        """The servers' Redis version (``"7.0.15"``), or None when unknown."""
        return self.nodes[0].version if self.nodes else None

    @property
    def running(self) -> bool:
        """True while at least one process is alive."""
        return any(server.running for server in self.nodes + self.sentinel_nodes)

    def describe(self) -> str:
        """One line, e.g. ``Redis Sentinel 7.0.15, 1 primary + 1 replica, 3 sentinels at ...``."""
        replicas = f"{self.replicas_count} replica{'' if self.replicas_count == 1 else 's'}"
        return (
            f"Redis Sentinel {self.version or '(version unknown)'}, 1 primary + {replicas}, "
            f"{self.sentinels_count} sentinels at {self.url}"
        )

    def node(self, port: int) -> RedisServer:
        """The :class:`~kew_testkit.RedisServer` (data node or Sentinel) on ``port`` (int).

        Raises:
            KeyError: no process of this setup has that port.
        """
        for server in self.nodes + self.sentinel_nodes:
            if server.port == port:
                return server
        raise KeyError(f"no process of this Sentinel setup listens on port {port}")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> RedisSentinelServer:
        """Start the primary, the replicas and the Sentinels; wait until they see each other.

        Returns:
            self, ready: ``.primary``, ``.replicas``, ``.sentinels`` and ``.url`` valid.

        Raises:
            RedisServerError, TimeoutError: see the class docstring; nothing is left running.
        """
        if shutil.which(self.executable) is None:
            raise RedisServerError(f"no {self.executable!r} binary found on PATH")
        try:
            primary = RedisServer(self.executable, extra_args=_NO_SYNC_DELAY, **self._timeouts())
            self.primary = self._add(self.nodes, primary).address
            for _ in range(self.replicas_count):
                replicaof = (*_NO_SYNC_DELAY, "--replicaof", primary.host, str(primary.port))
                replica = RedisServer(self.executable, extra_args=replicaof, **self._timeouts())
                self.replicas.append(self._add(self.nodes, replica).address)
            _wait_for(self._replicas_not_synced, self.ready_timeout, "the replicas did not sync")
            for _ in range(self.sentinels_count):
                sentinel = RedisServer(
                    self.executable, sentinel_config=self._sentinel_config(), **self._timeouts()
                )
                self._add(self.sentinel_nodes, sentinel)
            _wait_for(self._not_ready, self.ready_timeout, "the Sentinels did not see everything")
        except BaseException:  # KeyboardInterrupt too: leave nothing behind
            self.stop()
            raise
        return self

    def _timeouts(self) -> dict[str, Any]:
        return {"startup_timeout": self.startup_timeout}

    @staticmethod
    def _add(group: list[RedisServer], server: RedisServer) -> RedisServer:
        group.append(server)  # before start(): a failed start is still stopped
        return server.start()

    def _sentinel_config(self) -> str:
        host, port = self.primary
        name = self.service_name
        return "\n".join(
            [
                "sentinel resolve-hostnames no",
                f"sentinel monitor {name} {host} {port} {self.quorum}",
                f"sentinel down-after-milliseconds {name} {self.down_after}",
                f"sentinel failover-timeout {name} {self.failover_timeout}",
            ]
        )

    def _replicas_not_synced(self) -> str | None:
        for host, port in self.replicas:
            link = _info(host, port, "replication").get("master_link_status")
            if link != "up":
                return f"replica {port}: master_link_status:{link}"
        return None

    def _not_ready(self) -> str | None:
        name = self.service_name
        for server in self.sentinel_nodes:
            where = f"sentinel {server.port}"
            primary = _call(server.host, server.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
            if primary is None or (primary[0], int(primary[1])) != self.primary:
                return f"{where} reports primary {primary}"
            replicas = _as_dicts(_call(server.host, server.port, "SENTINEL", "REPLICAS", name))
            seen = {int(r["port"]) for r in replicas if _up(r)}
            if not {port for _host, port in self.replicas} <= seen:
                return f"{where} sees replicas {sorted(seen)}"
            others = _as_dicts(_call(server.host, server.port, "SENTINEL", "SENTINELS", name))
            known = sum(1 for s in others if _up(s))
            if known < self.sentinels_count - 1:
                return f"{where} knows {known} other sentinel(s)"
        return None

    def stop(self) -> None:
        """Stop every process (the Sentinels first; SIGTERM, then SIGKILL after 5 s) and
        remove their temporary directories. Safe to call twice, and after a failed
        :meth:`start`.
        """
        _stop_many(self.sentinel_nodes)
        _stop_many(self.nodes)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisSentinelServer {self.url} primary={self.primary[1]} {state}>"

    # -- failures ---------------------------------------------------------------------------

    def kill_primary(self) -> Address:
        """SIGKILL the current primary, as a crash would. Its directory stays until
        :meth:`stop`.

        Returns:
            The killed primary's (host, port).
        """
        self._killed = self.primary
        self.node(self.primary[1]).kill()
        return self.primary

    def force_failover(self, timeout: float = 30.0) -> Address:
        """Make the Sentinels fail over the primary while it is alive (``SENTINEL FAILOVER``),
        as an operator, or a failure detection fooled by a slow primary, would. The old primary
        answers as a primary until the sentinels turn it into a replica of the new one, and the
        writes it takes meanwhile are lost. Asks again while the sentinels refuse (a failover
        still in progress, no replica ready yet), then waits as :meth:`wait_for_failover`; the
        old primary joins ``.replicas``.

        Args:
            timeout: seconds (float) to wait for the sentinels to accept, and as much again
                for the failover. Default 30.0.

        Returns:
            The new primary's (host, port).

        Raises:
            TimeoutError: the sentinels kept refusing, or did not fail over in time.
        """
        old = self.primary
        asked = next(server for server in self.sentinel_nodes if server.running)

        def refused() -> str | None:
            _call(asked.host, asked.port, "SENTINEL", "FAILOVER", self.service_name)
            return None  # an error reply is the reason, given by _wait_for

        _wait_for(refused, timeout, "the Sentinels refused SENTINEL FAILOVER")
        self._killed = old
        new = self.wait_for_failover(timeout)
        self.replicas.append(old)
        return new

    def wait_for_failover(self, timeout: float = 30.0) -> Address:
        """Wait until every live Sentinel reports a primary other than the one killed by
        :meth:`kill_primary` (or replaced by :meth:`force_failover`), and that server answers
        ``ROLE`` as master. Then update ``.primary`` and ``.replicas``.

        Args:
            timeout: seconds (float) to wait. Default 30.0; with the default 1000 ms
                ``down_after`` a failover takes about 3 to 6 s.

        Returns:
            The new primary's (host, port) (the current one when nothing was killed).

        Raises:
            RedisServerError: no live replica is left to promote (raised at once).
            TimeoutError: the Sentinels did not fail over within ``timeout`` (with what was
                seen).
        """
        if self._killed is None:
            return self.primary
        if not any(self.node(port).running for _host, port in self.replicas):
            raise RedisServerError(f"primary {self._killed[1]} was killed and has no live replica")
        found: list[Address] = []

        def not_failed_over() -> str | None:
            reported = set()
            for server in self.sentinel_nodes:
                if server.running:
                    reply = _call(
                        server.host, server.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                        self.service_name,
                    )  # fmt: skip
                    reported.add((str(reply[0]), int(reply[1])) if reply else None)
            if len(reported) != 1 or self._killed in reported or None in reported:
                return f"sentinels report {sorted(map(str, reported))}"
            (address,) = reported
            assert address is not None
            role = _call(address[0], address[1], "ROLE")
            if role[0] != "master":
                return f"{address[1]} is reported as primary but says {role[0]}"
            found[:] = [address]
            return None

        _wait_for(not_failed_over, timeout, "the Sentinels did not fail over")
        self.primary = found[0]
        self.replicas = [r for r in self.replicas if r != self.primary]
        self._killed = None
        return self.primary
