"""RedisStore: the only module that talks to Redis about queues and tasks.

One typed method per Lua script (EVALSHA, loading the script on NOSCRIPT and trying once more),
plus the plain reads (HGETALL, counts), the blocking wake-up wait and the event subscription.
``redis.exceptions`` are translated into kew's exceptions here (design.md §5, style rule 4).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rexc
from redis.asyncio import Redis

from .cluster import ride_out_failover
from .connection import is_cluster_url, is_memory_url, is_sentinel_url, mask_url
from .exceptions import KewConnectionError, NotReplicatedError, ScriptCode, TaskQueueError
from .keys import QueueKeys, namespace_pattern, queues_key
from .scripts import Script, load_scripts
from .wire import Arg, FastEval

__all__ = ["ClaimResult", "ClaimedTask", "RedisStore"]

logger = logging.getLogger("kew")

# The KEYS each script takes, in order (see the header comment of each lua/*.lua file); `ids` is
# the prefix of the task-id keys (RedisStore._id_prefix).
_SCRIPT_KEYS: dict[str, Callable[[QueueKeys, str], list[str]]] = {
    "submit": lambda k, ids: [f"{k.base}:", ids],
    "enqueue": lambda k, ids: [f"{k.base}:", ids],
    "claim": lambda k, ids: [
        k.ready,
        k.scheduled,
        k.leased,
        k.wake,
        k.meta,
        k.breaker,
        k.task_prefix,
        k.rate,
        ids,
        k.events,
        k.dead,
    ],
    "extend": lambda k, ids: [k.leased, k.task_prefix],
    "complete": lambda k, ids: [
        k.leased,
        k.breaker,
        k.task_prefix,
        k.events,
        k.wake,
        k.ready,
        ids,
    ],
    "fail": lambda k, ids: [k.leased, k.scheduled, k.wake, k.breaker, k.events, k.dead, k.ready],
    "cancel": lambda k, ids: [k.ready, k.scheduled, k.leased, k.events, k.wake],
    "release": lambda k, ids: [k.leased, k.ready, k.wake, k.meta, k.task_prefix, ids, k.events],
    "breaker_failure": lambda k, ids: [k.breaker],
    "breaker_reset": lambda k, ids: [k.breaker, k.wake],
    "pause": lambda k, ids: [k.meta, k.wake, k.ready],
    "requeue_dead": lambda k, ids: [k.dead, k.ready, k.meta, k.wake, k.task_prefix, ids],
    "purge_dead": lambda k, ids: [k.dead, k.task_prefix, ids],
    "progress": lambda k, ids: [k.leased],
}

# Scripts whose writes users rely on: with wait_replicas they are followed by WAIT. Claims are
# too (a claim lost in a failover runs its task twice; the fence token of each claim is unique,
# so the lost claim's run cannot record an outcome over the new one's). Lease renewals and
# progress are not (a failover may run an in-flight task again anyway).
_REPLICATED = frozenset(
    {
        "claim",
        "enqueue",
        "submit",
        "complete",
        "fail",
        "cancel",
        "release",
        "requeue_dead",
        "purge_dead",
        "pause",
        "breaker_reset",
    }
)
_SUBMITS = frozenset({"enqueue", "submit"})

# Final outcomes (completed, failed for good) are sent again until the replicas confirm them,
# for up to _OUTCOME_WAITS * wait_timeout or until the manager shuts down: a run's hooks fire
# after, so they fire once per task even when a failover drops an unconfirmed outcome and the
# task runs again (a forced or spurious failover too: the replaced primary takes writes until
# the sentinels turn it into a replica, and the new one may have no replica for seconds). Past
# that bound the hooks fire on the unconfirmed outcome, with a warning. A repeat is safe: it
# answers OK without writing when the outcome is there under the run's fence, writes it again
# when it was lost, and answers LEASE_LOST when the task was reclaimed meanwhile (the newer run
# owns the outcome, and there is nothing left to confirm).
_OUTCOMES = frozenset({"complete", "fail"})
_OUTCOME_WAITS = 20


def _outcome_pending(name: str, reply: Any) -> bool:
    """True when an outcome script's reply still has a final outcome to confirm: some code is
    OK (not every run it named lost its lease), and for ``fail``, the task failed for good.

    A failed attempt that will be retried is not confirmed: its retry may be claimed before a
    replica answers, and a repeat would then report LEASE_LOST for an attempt whose failure was
    recorded (its on_task_fail hook would never fire); the retry's own outcome is confirmed.
    """
    if name == "fail":
        return int(reply[0]) == 0 and reply[2] != b"retry"  # binary replies: see __init__
    return any(int(code) == 0 for code in reply)


# Sentinel: errors of a call made while the primary fails over (the old one is gone, or back as
# a replica: redis-py's Sentinel connection turns READONLY into a ConnectionError).
_FAILOVER_ERRORS = (rexc.ConnectionError, rexc.TimeoutError)

# Errors meaning "Redis is not available right now" (raised as KewConnectionError): a dropped
# or refused connection, a cluster that is down or mid-failover, a primary that is gone.
_UNAVAILABLE = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.MasterDownError,
)

# Redis Cluster: how long (ms) the namespace-wide claim on a task id outlives the submit that
# took it; it only has to cover the submit's own round trips (see RedisStore.claim_ids).
ID_CLAIM_MS = 60_000
DUPLICATE = int(ScriptCode.DUPLICATE)


@dataclass(frozen=True, slots=True)
class IdClaims:
    """What :meth:`RedisStore.claim_ids` found (Redis Cluster).

    Attributes:
        taken: ids another queue of the namespace holds (or has claimed).
        fresh: ids this call claimed (no claim was there): the only claims its submit may
            drop when it fails; a claim already held for the queue belongs to another submit.
    """

    taken: set[str]
    fresh: list[str]


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """One task leased to this worker by the claim script."""

    task_id: str
    fence: bytes
    task_type: str
    priority: int
    func: bytes
    args: bytes
    retries: int
    queued_ms: int
    attempts: int


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a claim call returned.

    Attributes:
        tasks: the tasks now leased to the caller (at most the N asked for).
        next_due_ms: earliest time (ms) something may become claimable, or None.
        blocked: True when the circuit breaker held ready tasks back.
        lost: True when the queue's registration is gone from Redis (restarted empty, flushed).
    """

    tasks: list[ClaimedTask]
    next_due_ms: int | None
    blocked: bool
    lost: bool = False


class _Fences:
    """Fence tokens for claims: unique per claim call, in this process and across processes.

    Never a counter kept in Redis: a failover that loses a claim's write would let the new
    primary hand the same number out again, and two runs of one task would hold one fence
    (both could then complete it, and its hooks would fire twice). A random prefix per process
    (drawn again in a forked child) and a serial per claim call cannot repeat that way.
    """

    def __init__(self) -> None:
        self._reseed()
        if hasattr(os, "register_at_fork"):  # POSIX only; nothing forks elsewhere
            os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._serial = itertools.count(1)

    def next(self) -> str:
        """A fence token never handed out before (``<12 hex digits>.<serial in hex>``)."""
        return f"{self._prefix}.{next(self._serial):x}"


FENCES = _Fences()


def _claim_argv(
    now_ms: int,
    n: int,
    lease_ms: int,
    owner: str,
    reset_ms: int,
    limit: int,
    limits: tuple[int, int, int, int],
    max_reclaims: int,
    dead_ms: int,
) -> list[Arg]:
    """The claim script's ARGV (see lua/claim-11.lua), for both ways of calling it; each call
    gets a fresh fence token."""
    fence = FENCES.next()
    return [now_ms, n, lease_ms, owner, reset_ms, limit, *limits, max_reclaims, dead_ms, fence]


def _claim_result(reply: Any) -> ClaimResult:
    """Parse the claim script's reply (see lua/claim-11.lua)."""
    next_due = int(reply[0])
    tasks = [
        ClaimedTask(
            task_id=reply[i].decode(),
            fence=reply[i + 1],
            task_type=reply[i + 2].decode(),
            priority=int(reply[i + 3]),
            func=reply[i + 4],
            args=reply[i + 5] or b"",
            retries=int(reply[i + 6]),
            queued_ms=int(reply[i + 7]),
            attempts=int(reply[i + 8]),
        )
        for i in range(2, len(reply), 9)
    ]
    flags = int(reply[1])
    return ClaimResult(
        tasks, next_due if next_due >= 0 else None, bool(flags & 1), lost=bool(flags & 2)
    )


class RedisStore:
    """Typed access to kew's data in one Redis.

    On Redis Cluster (``cluster``), every script still runs in one slot, its queue's: the
    task-id keys move into the queue (``<ns>:{<queue>}:id:<id>``), and ids are kept unique
    across the queues of a namespace by :meth:`claim_ids` before the submit script runs.

    With ``wait_replicas``, the scripts whose outcome users rely on (submits, outcomes,
    cancels, dead-letter and pause changes) are followed by ``WAIT wait_replicas
    wait_timeout_ms`` on the same connection, in the same round trip.

    Args:
        client: an asyncio Redis client (or kew's ClusterClient) with
            ``decode_responses=False``.
        url: the URL it was made from (masked in error messages).
        wait_replicas: replicas that must confirm those writes (0: do not wait).
        wait_timeout_ms: how long WAIT waits for them, in milliseconds.
    """

    def __init__(
        self, client: Any, url: str, *, wait_replicas: int = 0, wait_timeout_ms: int = 1000
    ) -> None:
        self.client = client
        self._wait = (wait_replicas, wait_timeout_ms) if wait_replicas > 0 else None
        self._url = mask_url(url)
        self.cluster = is_cluster_url(url)
        self._sentinel = is_sentinel_url(url)
        self._fast = FastEval.for_client(client)
        self._node_fast: dict[int, FastEval] = {}  # cluster: per node client
        self._scripts = load_scripts()
        self._key_lists: dict[tuple[str, QueueKeys], list[bytes]] = {}
        # The embedded backend keeps a cancelled BLPOP blocked on its side, where it can take a
        # later wake-up token; short blocking waits bound that to a second.
        self._max_block = 1.0 if is_memory_url(url) else None
        self._winding_down = False  # see wind_down()

    def _keys(self, script: str, qk: QueueKeys) -> list[bytes]:
        """The KEYS of ``script`` for queue ``qk``, built and encoded once per queue."""
        found = self._key_lists.get((script, qk))
        if found is None:
            names = _SCRIPT_KEYS[script](qk, self._id_prefix(qk))
            found = self._key_lists[(script, qk)] = [n.encode() for n in names]
        return found

    def _id_prefix(self, qk: QueueKeys) -> str:
        """Prefix of the task-id keys: namespace-wide on one Redis, the queue's on a cluster."""
        return qk.queue_id_prefix if self.cluster else qk.id_prefix

    # -- plumbing ---------------------------------------------------------------------------

    def _connection_error(self, exc: Exception) -> KewConnectionError:
        return KewConnectionError(f"Redis at {self._url} is unreachable: {exc}")

    async def _run(
        self,
        name: str,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
        replicate: bool = True,
    ) -> Any:
        """Run script ``name``; ``replicate=False`` skips WAIT (a staged batch chunk: the
        commit's WAIT covers it, replication being one ordered stream)."""
        script: Script = self._scripts[name]
        try:
            if self._wait is not None and replicate and name in _REPLICATED:
                return await self._run_replicated(name, script, keys, args, self._wait)
            try:
                return await self._evalsha(script.sha, keys, args)
            except rexc.NoScriptError:  # first use on this server, or after SCRIPT FLUSH
                await self.client.script_load(script.source)  # every primary, on a cluster
                return await self._evalsha(script.sha, keys, args)
        except _UNAVAILABLE as exc:
            raise self._connection_error(exc) from exc
        except rexc.MovedError as exc:
            raise self._not_a_cluster_url(exc) from exc
        except rexc.RedisError as exc:  # NOPERM, OOM, a script error...
            raise TaskQueueError(f"Redis refused script {name!r}: {exc}") from exc

    def _not_a_cluster_url(self, exc: Exception) -> TaskQueueError:
        return TaskQueueError(
            f"Redis at {self._url} is a Redis Cluster node (it answered MOVED {exc}): "
            "use a redis+cluster://host:port[,host:port...] URL"
        )

    async def _evalsha(self, sha: str, keys: Sequence[str | bytes], args: Sequence[Arg]) -> Any:
        if self._fast is not None:
            if self._sentinel:  # a failover in progress: keep trying until a primary answers
                fast = self._fast
                return await ride_out_failover(
                    lambda: fast.evalsha(sha, keys, args), _FAILOVER_ERRORS
                )
            return await self._fast.evalsha(sha, keys, args)
        if self.cluster:
            return await self.client.call(
                keys[0], lambda node: self._fast_for(node).evalsha(sha, keys, args)
            )
        return await self.client.execute_command("EVALSHA", sha, len(keys), *keys, *args)

    async def _run_replicated(
        self,
        name: str,
        script: Script,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
        wait: tuple[int, int],
    ) -> Any:
        """Run ``script`` and WAIT for replicas in one round trip (see the class docstring)."""

        def send(fast: FastEval | None) -> Awaitable[tuple[Any, int]]:
            assert fast is not None, "the embedded backend has no replicas"
            return fast.evalsha_replicated(script.sha, keys, args, *wait)

        async def once() -> tuple[Any, int]:
            if self.cluster:
                done: tuple[Any, int] = await self.client.call(
                    keys[0], lambda node: send(self._fast_for(node))
                )
                return done
            if self._sentinel:
                return await ride_out_failover(lambda: send(self._fast), _FAILOVER_ERRORS)
            return await send(self._fast)

        async def attempt() -> tuple[Any, int]:
            try:
                return await once()
            except rexc.NoScriptError:  # a new primary after a failover, or SCRIPT FLUSH
                await self.client.script_load(script.source)
                return await once()

        reply, confirmed = await attempt()
        if name in _OUTCOMES:
            give_up = time.monotonic() + _OUTCOME_WAITS * wait[1] / 1000
            while (
                confirmed < wait[0]
                and _outcome_pending(name, reply)
                and time.monotonic() < give_up
                and not self._winding_down
            ):
                await self._find_primary_again()
                reply, confirmed = await attempt()  # idempotent per fence: see _OUTCOMES
        if confirmed < wait[0]:
            if name in _SUBMITS:
                text = self._unreplicated(name, confirmed)
                raise NotReplicatedError(
                    f"submit written on the primary, but {text}", confirmed, wait[0]
                )
            self._warn_unreplicated(name, confirmed)
        return reply

    def wind_down(self) -> None:
        """Stop confirming outcomes (the manager is shutting down): the next check of the
        loop in :meth:`_run_replicated` returns the last reply, so a run whose outcome is
        written fires its hooks within its shutdown grace instead of being cancelled in the
        loop (the outcome stored, its hooks never fired)."""
        self._winding_down = True

    async def _find_primary_again(self) -> None:
        """Sentinel: ask the sentinels for the primary again, and drop idle connections when it
        moved. A write no replica confirmed may have gone to a primary already replaced: a
        forced or spurious failover leaves the old one answering as a primary until the
        sentinels turn it into a replica, and what it took then is lost."""
        if self._sentinel:
            with contextlib.suppress(*_FAILOVER_ERRORS):  # the next try rides the failover out
                await self.client.connection_pool.get_master_address()

    def _unreplicated(self, name: str, confirmed: int) -> str:
        required, timeout_ms = self._wait or (0, 0)
        return (
            f"only {confirmed} of {required} replica(s) confirmed {name!r} within "
            f"{timeout_ms} ms: it is lost if the primary fails before it replicates"
        )

    def _warn_unreplicated(self, name: str, confirmed: int) -> None:
        logger.warning("kew: %s", self._unreplicated(name, confirmed))

    def _fast_for(self, node: Redis) -> FastEval:
        """Redis Cluster: the fast path of one primary's client (connection errors reroute)."""
        fast = self._node_fast.get(id(node))
        if fast is None:
            fast = FastEval.for_client(node, fallback=False)
            assert fast is not None
            self._node_fast[id(node)] = fast
        return fast

    async def ping(self) -> str:
        """Check the connection; return the server's version string.

        Raises:
            KewConnectionError: Redis cannot be reached (the URL is shown, password masked).
        """
        try:
            await self.client.ping()
            try:
                info = await self.client.info("server")
            except rexc.ResponseError:  # the embedded backend has no INFO
                return "embedded"
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise self._connection_error(exc) from exc
        except rexc.RedisError as exc:  # e.g. a bad DB index or password
            raise KewConnectionError(f"Redis at {self._url} refused the connection: {exc}") from exc
        return str(info.get("redis_version", "unknown"))

    async def close(self) -> None:
        """Close the client and its connection pool."""
        for fast in [self._fast, *self._node_fast.values()]:
            if fast is not None:
                await fast.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()

    # -- state changes (one script each) ------------------------------------------------------

    async def submit(
        self, qk: QueueKeys, now_ms: int, max_size: int, rows: Sequence[Sequence[Arg]]
    ) -> list[int]:
        """Enqueue tasks independently; one code per task (OK, DUPLICATE, QUEUE_FULL).

        Each row is (id, type, priority, due_ms or 0, func, args).
        """
        if self.cluster:
            return await self._submit_cluster(qk, now_ms, max_size, rows)
        return await self._submit_each(qk, now_ms, max_size, rows)

    async def _submit_each(
        self, qk: QueueKeys, now_ms: int, max_size: int, rows: Sequence[Sequence[Arg]]
    ) -> list[int]:
        if len(rows) == 1:  # sequential submits: the lean one-task script
            keys = self._keys("enqueue", qk)
            return [int(await self._run("enqueue", keys, [now_ms, max_size, qk.queue, *rows[0]]))]
        args: list[Arg] = [now_ms, max_size, "each", 0, qk.queue, "-", 0]
        for row in rows:
            args.extend(row)
        codes = await self._run("submit", self._keys("submit", qk), args)
        return [int(c) for c in codes]

    async def _submit_cluster(
        self, qk: QueueKeys, now_ms: int, max_size: int, rows: Sequence[Sequence[Arg]]
    ) -> list[int]:
        claims = await self.claim_ids(qk, [str(row[0]) for row in rows])
        free = [row for row in rows if str(row[0]) not in claims.taken]
        try:
            got = await self._submit_each(qk, now_ms, max_size, free) if free else []
        except BaseException:
            await self.release_id_claims(qk, claims.fresh)
            raise
        refused = {str(row[0]) for row, code in zip(free, got, strict=True) if code != 0}
        await self.release_id_claims(qk, [t for t in claims.fresh if t in refused])
        codes = iter(got)
        return [DUPLICATE if str(row[0]) in claims.taken else next(codes) for row in rows]

    async def release_id_claims(self, qk: QueueKeys, task_ids: Sequence[str]) -> None:
        """Redis Cluster: drop this queue's namespace-wide claims on ids whose submit failed,
        so other queues may take them at once (best effort: a claim left behind expires after
        its time). Only claims this submit took (:attr:`IdClaims.fresh`) are passed here: a
        claim already held for this queue may belong to another submit still on the wire."""
        if not task_ids:
            return
        with contextlib.suppress(TaskQueueError, rexc.RedisError, OSError):
            async with self.client.pipeline(transaction=False) as pipe:
                for task_id in task_ids:
                    pipe.delete(qk.id_prefix + task_id)
                await self._call(pipe.execute())

    async def claim_ids(
        self, qk: QueueKeys, task_ids: Sequence[str], claim_ms: int = ID_CLAIM_MS
    ) -> IdClaims:
        """Redis Cluster: claim ``task_ids`` for this queue; say which another queue holds.

        The submit script, which runs in the queue's slot, rejects ids the queue itself holds;
        the other queues live in other slots, so before it runs this checks them in two
        pipelined rounds: (1) ``SET <ns>:{}:id:<id> <queue> NX PX claim_ms GET`` claims each
        id for this queue for ``claim_ms`` ms (a concurrent submit of the same id to another
        queue finds the claim and is refused), with the namespace's queue names; (2) one
        ``EXISTS`` of all the ids per other queue (their id keys share that queue's slot), and,
        only for a queue that holds some, one per id to tell which. The claims this call took
        are dropped when their submit fails (:meth:`release_id_claims`); one left behind (a
        crash mid-submit) expires after ``claim_ms``, refusing the id in *other* queues until
        then. ``claim_ms`` must cover the submit up to its last round trip: a minute for one
        call, the staging ttl for a chunked batch. On one Redis the submit script does all of
        this atomically and this method is not called.

        Raises:
            KewConnectionError: Redis unreachable.
        """
        if not task_ids:
            return IdClaims(set(), [])
        queue = qk.queue.encode()
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.smembers(queues_key(qk.namespace))
            for task_id in task_ids:
                pipe.set(qk.id_prefix + task_id, queue, nx=True, px=claim_ms, get=True)
            names, *holders = await self._call(pipe.execute())
        taken = {t for t, h in zip(task_ids, holders, strict=True) if h not in (None, queue)}
        fresh = [t for t, h in zip(task_ids, holders, strict=True) if h is None]
        claims = IdClaims(taken, fresh)
        others = [QueueKeys(qk.namespace, n.decode()) for n in names if n != queue]
        check = [t for t in task_ids if t not in taken]
        if not others or not check:
            return claims
        # one EXISTS per other queue (a queue's id keys share its slot), slices of 1000 ids;
        # only a queue that holds some of them is asked id by id
        slices = [check[i : i + 1000] for i in range(0, len(check), 1000)]
        async with self.client.pipeline(transaction=False) as pipe:
            for other in others:
                for part in slices:
                    pipe.exists(*[other.queue_id_prefix + t for t in part])
            counts = await self._call(pipe.execute())
        holders_of = [
            o for i, o in enumerate(others) if any(counts[i * len(slices) : (i + 1) * len(slices)])
        ]
        if holders_of:
            async with self.client.pipeline(transaction=False) as pipe:
                for other in holders_of:
                    for task_id in check:
                        pipe.exists(other.queue_id_prefix + task_id)
                found = await self._call(pipe.execute())
            n = len(check)
            for i in range(len(holders_of)):
                taken.update(
                    t for t, hit in zip(check, found[i * n : (i + 1) * n], strict=True) if hit
                )
        return claims

    async def submit_atomic(
        self,
        qk: QueueKeys,
        now_ms: int,
        max_size: int,
        rows: Sequence[Sequence[Arg]],
        *,
        batch_id: str,
        staged: int,
        final: bool,
        staging_ttl_ms: int,
    ) -> tuple[int, int]:
        """Send one chunk of an all-or-nothing batch; return (code, index or 0).

        ``staged`` is how many tasks of the batch earlier calls staged; the index is the
        offending task's position in the whole batch (1-based). Non-final chunks are staged
        (kept aside, invisible to workers, for ``staging_ttl_ms`` ms); the final chunk writes
        every staged task with its own, or none of them on any error.
        """
        args: list[Arg] = [
            now_ms,
            max_size,
            "commit" if final else "stage",
            staging_ttl_ms,
            qk.queue,
            batch_id,
            staged,
        ]
        for row in rows:
            args.extend(row)
        code, index = await self._run("submit", self._keys("submit", qk), args, replicate=final)
        return int(code), int(index)

    async def claim(
        self,
        qk: QueueKeys,
        now_ms: int,
        n: int,
        lease_ms: int,
        owner: str,
        reset_ms: int,
        limit: int,
        limits: tuple[int, int, int, int] = (0, 0, 0, 0),
        max_reclaims: int = 0,
        dead_ms: int = 86_400_000,
    ) -> ClaimResult:
        """Lease up to ``n`` ready tasks (promoting due and reclaiming expired ones first).

        ``limits`` is (fleet-wide max running, rate, rate period in ms, burst); 0 = none. A task
        whose lease expired more than ``max_reclaims`` times (0 = no limit) becomes a dead
        letter kept ``dead_ms`` ms instead of running again.
        """
        args = _claim_argv(
            now_ms, n, lease_ms, owner, reset_ms, limit, limits, max_reclaims, dead_ms
        )
        return _claim_result(await self._run("claim", self._keys("claim", qk), args))

    @property
    def claims_on_wake(self) -> bool:
        """True when :meth:`wake_then_claim` is available (real Redis, not the embedded one)."""
        return self._fast is not None or self.cluster

    async def wake_then_claim(
        self,
        qk: QueueKeys,
        timeout: float,
        on_blocked: Callable[[int], None],
        now_ms: int,
        n: int,
        lease_ms: int,
        owner: str,
        reset_ms: int,
        limit: int,
        limits: tuple[int, int, int, int] = (0, 0, 0, 0),
        max_reclaims: int = 0,
        dead_ms: int = 86_400_000,
    ) -> tuple[bool, ClaimResult]:
        """Block until a wake-up token or ``timeout`` seconds, then claim, in one round trip.

        The claim runs on the server the moment the wait ends (pipelined behind the BLPOP), so
        an idle worker's pickup costs the submit's round trip and no other. Its arguments are
        those of :meth:`claim`, ``now_ms`` included: the time the wait *began*, so leases it
        grants are short by the time spent blocked, and tasks that fell due meanwhile wait for
        the next claim. The caller bounds ``timeout`` accordingly. ``on_blocked`` receives the
        blocked connection's client id (for :meth:`unblock`).

        Returns:
            (True when a token ended the wait, the claim's result).

        Raises:
            KewConnectionError: Redis unreachable. TaskQueueError: Redis refused the script.
        """
        assert self.claims_on_wake, "check claims_on_wake first"
        sha = self._scripts["claim"].sha
        keys = self._keys("claim", qk)
        args = _claim_argv(
            now_ms, n, lease_ms, owner, reset_ms, limit, limits, max_reclaims, dead_ms
        )
        wake = qk.wake.encode()

        def send(fast: FastEval) -> Awaitable[tuple[Any, Any, int | None]]:
            return fast.blpop_then_evalsha(wake, timeout, sha, keys, args, on_blocked, self._wait)

        if self._fast is not None:
            popped, reply, confirmed = await self._call(send(self._fast))
        else:
            popped, reply, confirmed = await self._call(
                self.client.call(wake, lambda node: send(self._fast_for(node)))
            )
        if confirmed is not None and self._wait is not None and confirmed < self._wait[0]:
            self._warn_unreplicated("claim", confirmed)
        if isinstance(reply, rexc.NoScriptError):
            reply = await self._run("claim", keys, args)  # loads it; the token is consumed
        elif isinstance(reply, rexc.ResponseError):
            raise TaskQueueError(f"Redis refused script 'claim': {reply}")
        return popped is not None, _claim_result(reply)

    async def unblock(self, qk: QueueKeys, client_id: int) -> None:
        """End the blocking wait of connection ``client_id`` on ``qk``'s wake-up list now, as
        if it had timed out (on a cluster, on the primary of the queue's slot)."""
        node = await self._call(self.client.for_key(qk.wake)) if self.cluster else self.client
        await self._call(node.client_unblock(client_id))

    async def extend(
        self, qk: QueueKeys, expiry_ms: int, owned: Sequence[tuple[str, bytes]]
    ) -> tuple[list[str], list[str]]:
        """Renew leases; return (ids whose lease was lost, ids whose cancellation was asked)."""
        args: list[Arg] = [expiry_ms]
        for task_id, fence in owned:
            args.extend((task_id, fence))
        lost, cancel = await self._run("extend", self._keys("extend", qk), args)
        return [x.decode() for x in lost], [x.decode() for x in cancel]

    async def complete(
        self,
        qk: QueueKeys,
        now_ms: int,
        retention_ms: int,
        done: Sequence[tuple[str, bytes, bytes]],
    ) -> list[int]:
        """Record results of finished runs; one code per task (OK or LEASE_LOST)."""
        args: list[Arg] = [now_ms, retention_ms]
        for item in done:
            args.extend(item)
        codes = await self._run("complete", self._keys("complete", qk), args)
        return [int(c) for c in codes]

    async def fail(
        self,
        qk: QueueKeys,
        task_id: str,
        fence: bytes,
        *,
        now_ms: int,
        error: str,
        retry_due_ms: int,
        retention_ms: int,
        breaker_max: int,
        breaker_reset_ms: int,
        count_for_breaker: bool,
    ) -> tuple[int, int, str]:
        """Record a failed attempt: retry at ``retry_due_ms`` (> 0) or FAILED (0).

        Returns (code, consecutive breaker failures, outcome): outcome is "retry", "failed",
        or "cancelled" when a cancel request was pending (no retry, no dead letter).
        """
        code, failures, outcome = await self._run(
            "fail",
            [qk.task(task_id).encode(), *self._keys("fail", qk), self._id_prefix(qk) + task_id],
            [
                task_id,
                fence,
                now_ms,
                error,
                retry_due_ms,
                retention_ms,
                breaker_max,
                breaker_reset_ms,
                1 if count_for_breaker else 0,
            ],
        )
        return int(code), int(failures), outcome.decode() if isinstance(outcome, bytes) else ""

    async def release(self, qk: QueueKeys, owned: Sequence[tuple[str, bytes]], now_ms: int) -> int:
        """Hand leased tasks back to the ready set at once; return how many were handed back.

        A task whose cancellation was asked meanwhile ends CANCELLED instead.
        """
        args: list[Arg] = []
        for task_id, fence in owned:
            args.extend((task_id, fence))
        args.append(now_ms)
        return int(await self._run("release", self._keys("release", qk), args))

    async def cancel(
        self, qk: QueueKeys, task_id: str, now_ms: int, retention_ms: int, fence: bytes = b""
    ) -> tuple[int, str]:
        """Cancel a task (or, with the owner's ``fence``, confirm its run stopped).

        Returns (code, what): see ``lua/cancel-6.lua``.
        """
        code, what = await self._run(
            "cancel",
            [qk.task(task_id).encode(), *self._keys("cancel", qk), self._id_prefix(qk) + task_id],
            [task_id, now_ms, retention_ms, fence],
        )
        return int(code), what.decode() if isinstance(what, bytes) else str(what)

    async def set_paused(self, qk: QueueKeys, paused: bool) -> bool:
        """Pause or resume claiming in every process; True when the state changed."""
        return bool(await self._run("pause", self._keys("pause", qk), [1 if paused else 0]))

    async def is_paused(self, qk: QueueKeys) -> bool:
        """True while the queue is paused."""
        return bool(await self._call(self.client.hget(qk.meta, "paused")) == b"1")

    async def requeue_dead(self, qk: QueueKeys, task_ids: Sequence[str]) -> int:
        """Run dead letters again (all when ``task_ids`` is empty); return how many."""
        return int(await self._run("requeue_dead", self._keys("requeue_dead", qk), task_ids))

    async def purge_dead(self, qk: QueueKeys, cutoff_ms: int | None) -> int:
        """Delete dead letters that failed at or before ``cutoff_ms`` (None: all)."""
        cutoff: Arg = "+inf" if cutoff_ms is None else cutoff_ms
        return int(await self._run("purge_dead", self._keys("purge_dead", qk), [cutoff]))

    async def dead_ids(self, qk: QueueKeys, offset: int, limit: int) -> list[str]:
        """Ids of dead letters, newest first."""
        ids = await self._call(self.client.zrevrange(qk.dead, offset, offset + limit - 1))
        return [i.decode() for i in ids]

    async def prune_dead(self, qk: QueueKeys, task_ids: Sequence[str]) -> None:
        """Forget dead-letter entries whose records have expired."""
        if task_ids:
            await self._call(self.client.zrem(qk.dead, *task_ids))

    async def progress(
        self, qk: QueueKeys, task_id: str, fence: bytes, value: float, message: str
    ) -> int:
        """Store a running task's progress; OK or LEASE_LOST."""
        return int(
            await self._run(
                "progress",
                [qk.task(task_id).encode(), *self._keys("progress", qk)],
                [task_id, fence, repr(float(value)), message],
            )
        )

    async def breaker_failure(
        self, qk: QueueKeys, now_ms: int, max_failures: int, reset_ms: int, ttl_ms: int
    ) -> int:
        """Count one failure on the queue's breaker; return the consecutive failures."""
        return int(
            await self._run(
                "breaker_failure",
                self._keys("breaker_failure", qk),
                [now_ms, max_failures, reset_ms, ttl_ms],
            )
        )

    async def breaker_reset(self, qk: QueueKeys) -> None:
        """Close the breaker, forget its failures and wake idle workers."""
        await self._run("breaker_reset", self._keys("breaker_reset", qk), [])

    # -- reads --------------------------------------------------------------------------------

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except _UNAVAILABLE as exc:
            raise self._connection_error(exc) from exc
        except rexc.MovedError as exc:
            raise self._not_a_cluster_url(exc) from exc
        except rexc.RedisError as exc:  # e.g. NOPERM from an ACL, OOM under maxmemory
            raise TaskQueueError(f"Redis refused the command: {exc}") from exc

    async def breaker_fields(self, qk: QueueKeys) -> dict[bytes, bytes]:
        """Return the breaker HASH (empty when closed with no failures)."""
        return dict(await self._call(self.client.hgetall(qk.breaker)))

    async def get_task(self, qk: QueueKeys, task_id: str) -> dict[bytes, bytes]:
        """Return the task HASH, empty when there is none."""
        return dict(await self._call(self.client.hgetall(qk.task(task_id))))

    async def find_task(self, keys: Sequence[QueueKeys], task_id: str) -> dict[bytes, bytes]:
        """Look ``task_id`` up in several queues in one round trip; the first record found."""
        if not keys:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for qk in keys:
                pipe.hgetall(qk.task(task_id))
            replies = await self._call(pipe.execute())
        for reply in replies:
            if reply:
                return dict(reply)
        return {}

    async def get_tasks(
        self, qk: QueueKeys, task_ids: Sequence[str], keep_missing: bool = False
    ) -> list[dict[bytes, bytes]]:
        """HGETALL several tasks of one queue in one round trip; missing ones are skipped, or
        kept as empty dicts (in ``task_ids`` order) with ``keep_missing``."""
        if not task_ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hgetall(qk.task(task_id))
            replies = await self._call(pipe.execute())
        return [dict(r) for r in replies if r or keep_missing]

    async def leased_ids(self, qk: QueueKeys) -> list[str]:
        """Ids of the tasks leased right now in this queue (by any process)."""
        ids = await self._call(self.client.zrange(qk.leased, 0, -1))
        return [i.decode() for i in ids]

    async def counts(self, qk: QueueKeys, now_ms: int, dead_ms: int) -> dict[str, int]:
        """Sizes of the queue's sets (ready, scheduled, scheduled_due, leased, dead) and paused."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zcard(qk.ready)
            pipe.zcard(qk.scheduled)
            pipe.zcount(qk.scheduled, "-inf", now_ms)
            pipe.zcard(qk.leased)
            pipe.zcount(qk.dead, now_ms - dead_ms, "+inf")  # older ones have expired
            pipe.hget(qk.meta, "paused")
            ready, scheduled, due, leased, dead, paused = await self._call(pipe.execute())
        return {
            "ready": ready,
            "scheduled": scheduled,
            "scheduled_due": due,
            "leased": leased,
            "dead": dead,
            "paused": int(paused == b"1"),
        }

    # -- queues, namespace --------------------------------------------------------------------

    async def swap_limits(self, qk: QueueKeys, limits: str) -> str | None:
        """Record this process's fleet-wide limits of the queue; return what was recorded
        before (None the first time). Used to warn when processes disagree."""
        before = await self._call(self.client.hget(qk.meta, "limits"))
        await self._call(self.client.hset(qk.meta, "limits", limits))
        return before.decode() if before is not None else None

    async def register_queue(self, namespace: str, name: str) -> None:
        """Add ``name`` to the namespace's SET of queues."""
        await self._call(self.client.sadd(queues_key(namespace), name))

    async def list_queues(self, namespace: str) -> list[str]:
        """Names of every queue registered in the namespace (by any process)."""
        names = await self._call(self.client.smembers(queues_key(namespace)))
        return sorted(n.decode() for n in names)

    async def delete_namespace(self, namespace: str) -> int:
        """Delete every key of ``namespace`` (SCAN + UNLINK); return how many were deleted."""
        deleted = int(await self._call(self.client.unlink(queues_key(namespace))))
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=namespace_pattern(namespace), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self._call(self.client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += await self._call(self.client.unlink(*batch))
        return deleted

    # -- waiting ------------------------------------------------------------------------------

    async def wait_for_wake(self, qk: QueueKeys, timeout: float) -> bool:
        """Block until a wake-up token is pushed or ``timeout`` seconds pass; True if woken."""
        if self._max_block is not None:
            timeout = min(timeout, self._max_block)
        reply = await self._call(self.client.blpop([qk.wake], timeout=max(0.01, round(timeout, 3))))
        return reply is not None

    async def wake(self, qk: QueueKeys) -> None:
        """Leave one wake-up token for the queue's idle workers (the list keeps at most one)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(qk.wake, b"1")
            pipe.ltrim(qk.wake, 0, 0)
            pipe.pexpire(qk.wake, 600_000)
            await self._call(pipe.execute())

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[Any]:
        """A pub/sub connection subscribed to ``channels`` (closed on exit).

        On Redis Cluster a PUBLISH reaches every node, so the subscription is on any primary
        that answers.

        Raises:
            KewConnectionError: no node could be reached.
        """
        client = await self._call(self.client.any_node()) if self.cluster else self.client
        pubsub = client.pubsub()
        try:
            if channels:
                await self._call(pubsub.subscribe(*channels))
            yield pubsub
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
