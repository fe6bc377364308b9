"""A throwaway Redis Cluster of local ``redis-server`` processes, for tests. No pytest here.

:class:`RedisClusterServer` starts ``masters`` cluster nodes (plus ``replicas`` per master) on free
loopback ports, each a :class:`~kew_testkit.RedisServer` (persistence off, private temporary
directory, stopped on exit, Ctrl-C, SIGTERM and parent death), joins them with
``redis-cli --cluster create``, and waits until every node agrees: ``cluster_state:ok``, all
16384 slots served, every replica in sync. It can also crash a master (SIGKILL) and wait for the
cluster to promote its replica, for failover tests.

Its URL, ``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3``, lists the masters; it is the
form kew's ``TaskQueueManager(redis_url=...)`` accepts for a cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .redis_server import (
    RedisServer,
    RedisServerError,
    _call,
    _info,
    _ReplyError,
    _StartStop,
    _stop_many,
    _wait_for,
)

__all__ = ["RedisClusterServer", "find_redis_cli", "key_slot"]

SLOTS: Final = 16384
_CREATE_TIMEOUT: Final = 60.0
# A replica's first sync would otherwise wait 5 s for more replicas to share the transfer.
_NO_SYNC_DELAY: Final = ("--repl-diskless-sync-delay", "0")

Address = tuple[str, int]


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    """Return the cluster hash slot (0..16383) of ``key``, honouring ``{hash tags}``.

    Args:
        key: the key (str is UTF-8 encoded).

    Returns:
        ``CRC16(key or its tag) % 16384``, as Redis computes it (``CLUSTER KEYSLOT``).
    """
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return _crc16(data) % SLOTS


def find_redis_cli(executable: str = "redis-server") -> str | None:
    """Find the ``redis-cli`` that goes with a ``redis-server`` binary.

    Args:
        executable: the ``redis-server`` binary, a name on PATH or a path.

    Returns:
        The path of ``redis-cli`` next to that binary, else the one on PATH, else None.
    """
    server = shutil.which(executable)
    if server is not None:
        sibling = Path(server).resolve().with_name("redis-cli")
        if sibling.is_file():
            return str(sibling)
    return shutil.which("redis-cli")


@dataclass(frozen=True)
class _Node:
    """One line of ``CLUSTER NODES``."""

    id: str
    address: Address
    flags: frozenset[str]
    master_id: str | None
    slots: int  # number of slots served

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "noaddr", "handshake"})

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


def _parse_nodes(text: str) -> list[_Node]:
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        host, _, port = fields[1].split("@", 1)[0].rpartition(":")
        slots = 0
        for entry in fields[8:]:
            if entry.startswith("["):  # a slot being migrated or imported
                continue
            low, _, high = entry.partition("-")
            slots += int(high or low) - int(low) + 1
        master_id = None if fields[3] == "-" else fields[3]
        flags = frozenset(fields[2].split(","))
        nodes.append(_Node(fields[0], (host, int(port)), flags, master_id, slots))
    return nodes


class RedisClusterServer(_StartStop):
    """A Redis Cluster of local ``redis-server`` processes, for tests. Also a context manager.

    Example::

        with RedisClusterServer(replicas=1) as cluster:
            print(cluster.url)                 # redis+cluster://127.0.0.1:p1,...,127.0.0.1:p3
            dead = cluster.kill_master_of("{orders}")
            promoted = cluster.wait_for_failover(timeout=30)

    Args:
        executable: the ``redis-server`` binary, a name on PATH or a path. Default
            ``"redis-server"``.
        masters: number of masters (int >= 3; ``redis-cli --cluster create`` needs 3). Default 3.
        replicas: replicas per master (int >= 0). Default 0.
        node_timeout: ``cluster-node-timeout`` in milliseconds (int > 0): how long a node may
            be silent before it is marked failed; a failover takes about twice this. Default
            2000.
        startup_timeout: seconds (float) each node may take to answer PING. Default 10.0.
        ready_timeout: seconds (float) the cluster may take, once created, until every node
            reports it ``ok`` with all slots served and every replica in sync. Default 30.0.
        redis_cli: the ``redis-cli`` binary; None (default) finds it with
            :func:`find_redis_cli`.

    Raises:
        ValueError: for ``masters < 3``, ``replicas < 0`` or ``node_timeout <= 0``.
        RedisServerError: from :meth:`start` when ``redis-server`` or ``redis-cli`` is
            missing, a node does not start, or ``redis-cli --cluster create`` fails.
        TimeoutError: from :meth:`start` when the cluster is not ready within
            ``ready_timeout``.

    Whatever :meth:`start` raises, every process it started is stopped and every temporary
    directory removed before the exception propagates.
    """

    def __init__(
        self,
        executable: str = "redis-server",
        *,
        masters: int = 3,
        replicas: int = 0,
        node_timeout: int = 2000,
        startup_timeout: float = 10.0,
        ready_timeout: float = 30.0,
        redis_cli: str | None = None,
    ) -> None:
        if masters < 3:
            raise ValueError(f"a Redis Cluster needs at least 3 masters, got {masters}")
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")
        if node_timeout <= 0:
            raise ValueError(f"node_timeout must be > 0 ms, got {node_timeout}")
        self.executable = executable
        self.masters_count = masters
        self.replicas_per_master = replicas
        self.node_timeout = node_timeout
        self.startup_timeout = startup_timeout
        self.ready_timeout = ready_timeout
        self.redis_cli = redis_cli
        self.nodes: list[RedisServer] = []
        self.masters: list[Address] = []
        self.replicas: list[Address] = []
        self._killed: dict[int, list[int]] = {}  # killed master port -> its replicas' ports

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`` (str): the current masters,
        ordered by the slots they serve; valid once started, updated by
        :meth:`wait_for_failover`.
        """
        return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in self.masters)

    @property
    def version(self) -> str | None:
        """The nodes' Redis version (``"7.0.15"``), or None when unknown."""
        return self.nodes[0].version if self.nodes else None

    @property
    def running(self) -> bool:
        """True while at least one node process is alive."""
        return any(node.running for node in self.nodes)

    def describe(self) -> str:
        """One line, e.g. ``Redis Cluster 7.0.15, 3 masters + 3 replicas at redis+cluster://...``."""
        count = self.masters_count * self.replicas_per_master
        return (
            f"Redis Cluster {self.version or '(version unknown)'}, {self.masters_count} masters "
            f"+ {count} replica{'' if count == 1 else 's'} at {self.url}"
        )

    def node(self, port: int) -> RedisServer:
        """The :class:`~kew_testkit.RedisServer` of the node on ``port`` (int).

        Raises:
            KeyError: no node of this cluster has that port.
        """
        for server in self.nodes:
            if server.port == port:
                return server
        raise KeyError(f"no node of this cluster listens on port {port}")

    def master_of(self, key_or_slot: str | bytes | int) -> Address:
        """The (host, port) of the master serving a key or slot, asked of a live node.

        Args:
            key_or_slot: a key (str or bytes; ``{hash tags}`` honoured) or a slot (int,
                0..16383).

        Raises:
            ValueError: a slot outside 0..16383.
            RedisServerError: no live node answers, or none serves the slot.
        """
        slot = self._slot(key_or_slot)
        for server in self._live_nodes():
            try:
                ranges = _call(server.host, server.port, "CLUSTER", "SLOTS")
            except (OSError, _ReplyError):
                continue
            for low, high, owner, *_ in ranges:
                if low <= slot <= high:
                    return (str(owner[0]), int(owner[1]))
        raise RedisServerError(f"no live node of the cluster says who serves slot {slot}")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> RedisClusterServer:
        """Start the nodes, create the cluster and wait until it is ready (see the class).

        Returns:
            self, ready: ``.masters`` and ``.replicas`` filled in, ``.url`` valid.

        Raises:
            RedisServerError, TimeoutError: see the class docstring; nothing is left running.
        """
        cli = self.redis_cli or find_redis_cli(self.executable)
        if shutil.which(self.executable) is None:
            raise RedisServerError(f"no {self.executable!r} binary found on PATH")
        if cli is None or shutil.which(cli) is None:
            raise RedisServerError("no 'redis-cli' binary found (next to redis-server or on PATH)")
        try:
            total = self.masters_count * (1 + self.replicas_per_master)
            for _ in range(total):
                node = RedisServer(
                    self.executable,
                    startup_timeout=self.startup_timeout,
                    extra_args=_NO_SYNC_DELAY,
                    cluster_node_timeout=self.node_timeout,
                )
                self.nodes.append(node)
                node.start()
            self._create(cli)
            _wait_for(self._not_ready, self.ready_timeout, "the Redis Cluster was not ready")
            self._refresh()
        except BaseException:  # KeyboardInterrupt too: leave nothing behind
            self.stop()
            raise
        return self

    def _create(self, cli: str) -> None:
        addresses = [f"{node.host}:{node.port}" for node in self.nodes]
        args = [cli, "--cluster", "create", *addresses]
        args += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
        try:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_CREATE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RedisServerError(f"redis-cli --cluster create failed: {exc}") from exc
        if done.returncode != 0:
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise RedisServerError(
                f"redis-cli --cluster create exited with code {done.returncode}: {tail}"
            )

    def _not_ready(self) -> str | None:
        """None once every node sees the whole cluster healthy, else what is missing."""
        masters, replicas = self.masters_count, self.masters_count * self.replicas_per_master
        for server in self.nodes:
            where = f"node {server.port}"
            info = _info(server.host, server.port, "cluster-info")
            if info.get("cluster_state") != "ok":
                return f"{where}: cluster_state:{info.get('cluster_state')}"
            if info.get("cluster_slots_ok") != str(SLOTS):
                return f"{where}: cluster_slots_ok:{info.get('cluster_slots_ok')}"
            if info.get("cluster_known_nodes") != str(len(self.nodes)):
                return f"{where}: cluster_known_nodes:{info.get('cluster_known_nodes')}"
            view = _parse_nodes(_call(server.host, server.port, "CLUSTER", "NODES"))
            seen_masters = sum(1 for n in view if n.is_master and n.slots and not n.failed)
            seen_replicas = sum(1 for n in view if "slave" in n.flags and not n.failed)
            if (seen_masters, seen_replicas) != (masters, replicas):
                return f"{where} sees {seen_masters} masters and {seen_replicas} replicas"
            if "slave" in next(n for n in view if "myself" in n.flags).flags:
                link = _info(server.host, server.port, "replication").get("master_link_status")
                if link != "up":
                    return f"{where}: master_link_status:{link}"
        return None

    def _live_nodes(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.running]

    def _view(self) -> list[_Node]:
        """The cluster as the first live node that answers sees it."""
        for server in self._live_nodes():
            try:
                return _parse_nodes(_call(server.host, server.port, "CLUSTER", "NODES"))
            except (OSError, _ReplyError):
                continue
        raise RedisServerError("no node of the cluster answers")

    def _refresh(self) -> None:
        """Set ``.masters`` (ordered by slot) and ``.replicas`` from a live node's view."""
        live = {node.port for node in self._live_nodes()}
        view = [n for n in self._view() if n.address[1] in live and not n.failed]
        masters = [n.address for n in view if n.is_master and n.slots]
        self.masters = sorted(masters, key=self._first_slot)
        self.replicas = sorted(n.address for n in view if "slave" in n.flags)

    @staticmethod
    def _first_slot(address: Address) -> int:
        """Sort key: the lowest slot the master at ``address`` serves (asked of itself)."""
        ranges = _call(address[0], address[1], "CLUSTER", "SLOTS")
        mine = [low for low, _high, owner, *_ in ranges if int(owner[1]) == address[1]]
        return min(mine, default=SLOTS)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 5 s) and remove their temporary
        directories. Safe to call twice, and after a failed :meth:`start`.
        """
        _stop_many(self.nodes)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisClusterServer {self.url} {len(self.nodes)} nodes {state}>"

    # -- failures ---------------------------------------------------------------------------

    @staticmethod
    def _slot(key_or_slot: str | bytes | int) -> int:
        if isinstance(key_or_slot, int):
            if not 0 <= key_or_slot < SLOTS:
                raise ValueError(f"a slot is in 0..{SLOTS - 1}, got {key_or_slot}")
            return key_or_slot
        return key_slot(key_or_slot)

    def kill(self, port: int) -> Address:
        """SIGKILL the node on ``port`` (int), as a crash would. Its directory stays until
        :meth:`stop`.

        Returns:
            The killed node's (host, port).

        Raises:
            KeyError: no node of this cluster has that port.
        """
        server = self.node(port)
        if server.address in self.masters:
            view = self._view()
            me = next((n for n in view if n.address == server.address), None)
            mine = [n.address[1] for n in view if me is not None and n.master_id == me.id]
            self._killed[port] = mine
        server.kill()
        return server.address

    def kill_master_of(self, key_or_slot: str | bytes | int) -> Address:
        """SIGKILL the master that serves a key or slot (see :meth:`master_of`).

        Returns:
            The killed master's (host, port).

        Raises:
            ValueError, RedisServerError: as :meth:`master_of`.
        """
        return self.kill(self.master_of(key_or_slot)[1])

    def wait_for_failover(self, timeout: float = 30.0) -> list[Address]:
        """Wait until the cluster has recovered from the masters killed since the last call:
        on every live node ``cluster_state:ok`` with all 16384 slots served by live masters
        (a killed master's replica promoted, answering ``ROLE`` as master). Then update
        ``.masters``, ``.replicas`` and ``.url``.

        Args:
            timeout: seconds (float) to wait. Default 30.0; with the default 2000 ms node
                timeout a failover takes about 3 to 5 s.

        Returns:
            The (host, port) of each promoted replica (empty when no master was killed).

        Raises:
            RedisServerError: a killed master had no live replica to promote (raised at once).
            TimeoutError: the cluster did not recover within ``timeout`` (with what was seen).
        """
        for port, replicas in self._killed.items():
            if not any(self.node(r).running for r in replicas):
                raise RedisServerError(f"master {port} was killed and has no live replica")
        before = set(self.masters)
        _wait_for(self._not_recovered, timeout, "the Redis Cluster did not fail over")
        self._killed.clear()
        self._refresh()
        return [address for address in self.masters if address not in before]

    def _not_recovered(self) -> str | None:
        killed = set(self._killed)
        for server in self._live_nodes():
            where = f"node {server.port}"
            info = _info(server.host, server.port, "cluster-info")
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                state, ok = info.get("cluster_state"), info.get("cluster_slots_ok")
                return f"{where}: cluster_state:{state}, cluster_slots_ok:{ok}"
            view = _parse_nodes(_call(server.host, server.port, "CLUSTER", "NODES"))
            owners = [n for n in view if n.is_master and n.slots]
            stale = [n.address[1] for n in owners if n.address[1] in killed or n.failed]
            if stale:
                return f"{where} still sees killed master(s) {stale} serving slots"
            for owner in owners:
                role = _call(owner.address[0], owner.address[1], "ROLE")
                if role[0] != "master":
                    return f"{where} sees {owner.address[1]} as master, but it says {role[0]}"
        return None
