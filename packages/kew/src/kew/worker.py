"""QueueWorker: the consumer of one queue inside one process.

Loop: free slots -> one ``claim`` call for up to that many tasks -> each runs as an asyncio task
in the host loop. With nothing to claim the worker blocks on the queue's wake-up list until a
submit (from any process) pushes a token, or until the next scheduled task / lease expiry is due;
on real Redis the next claim is pipelined behind that wait, so Redis claims the moment it ends.
One renewal task extends the leases of every running task in one call per interval; a run whose
lease was taken over is cancelled. Results are acknowledged in batches: completions that happen in
the same event-loop tick share one ``complete`` call. On shutdown, running tasks are given up to
``timeout`` seconds, then cancelled and handed back to the ready set at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .acks import AckBatcher, retrying
from .background import spawn
from .clock import Clock, real_sleep
from .codec import DEFAULT_CODEC, Codec
from .context import TaskContext, set_current
from .exceptions import KewConnectionError, SerializationError, TaskQueueError
from .execution import is_async_callable, run_attempt
from .hooks import Hooks
from .keys import QueueKeys
from .models import QueueConfig, TaskInfo, TaskStatus
from .scheduling import MAX_DUE, backoff_delay, should_retry, to_ms, wait_seconds
from .settings import DEFAULT_CLAIM_LIMIT, ManagerSettings
from .store import ClaimedTask, ClaimResult, RedisStore

__all__ = ["QueueWorker"]

logger = logging.getLogger("kew")

RELEASE_TIMEOUT = 5.0  # seconds shutdown waits for Redis to take running tasks back


def error_text(exc: BaseException) -> str:
    """The error kept on a task: ``str(exc)``, or the exception's type name when that is empty
    or when ``str()`` itself fails."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text or type(exc).__name__


async def _no_report(value: float, message: str) -> int:
    return 0


@dataclass(eq=False)
class _Run:
    claimed: ClaimedTask
    info: TaskInfo
    task: asyncio.Task[None] | None = None
    lease_lost: bool = False
    cancel_requested: bool = False  # cancel_task() asked for this run to stop
    in_thread: bool = False  # a sync function: its thread cannot be cancelled
    writing_outcome: bool = False  # complete/fail is on its way to Redis
    report: Callable[[float, str], Awaitable[int]] = field(default=_no_report, repr=False)


class QueueWorker:
    """Consumes one queue in this process (created by the manager; not public API)."""

    def __init__(
        self,
        *,
        store: RedisStore,
        keys: QueueKeys,
        config: QueueConfig,
        settings: ManagerSettings,
        clock: Clock,
        owner: str,
        hooks: Hooks,
        on_finished: Callable[[str, str], None],
        codec: Codec = DEFAULT_CODEC,
        on_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.config = config
        self.settings = settings
        self.clock = clock
        self.owner = owner
        self.hooks = hooks
        self._on_finished = on_finished
        self.codec = codec
        self._register = on_lost
        self._runs: dict[str, _Run] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._idle_waiters: list[asyncio.Future[Any]] = []
        self._wake_wait: asyncio.Future[bool] | None = None
        self._blocked_client: int | None = None  # connection blocked in _wait_then_claim
        self._blocking = False  # a _wait_then_claim is on the wire
        self._blocked_known = asyncio.Event()  # its CLIENT ID reply has arrived
        self._backoff = 0.05  # seconds before the next claim after a connection error
        self._has_runs = asyncio.Event()
        self._limits = config.claim_limits()
        self.retention = config.retention if config.retention is not None else settings.retention
        self._acks = AckBatcher(store, keys, clock, self.retention)
        self._executor: ThreadPoolExecutor | None = None
        self._abandoned: set[asyncio.Future[Any]] = set()  # threads of ended sync attempts
        self.held_back = False  # the last claim left ready tasks (breaker, pause, limits)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Tasks of this queue running in this process right now (threads of timed-out or
        cancelled sync attempts included: they still take a slot)."""
        return len(self._runs) + len(self._abandoned)

    def running_infos(self) -> list[TaskInfo]:
        """TaskInfo of the tasks running here."""
        return [run.info for run in self._runs.values()]

    def start(self) -> None:
        """Start the claim loop and the lease renewal loop in the running event loop."""
        self._loop_task = asyncio.create_task(self._claim_loop(), name=f"kew:{self.config.name}")
        self._renew_task = asyncio.create_task(
            self._renew_loop(), name=f"kew-renew:{self.config.name}"
        )

    def _abandon(self, thread: asyncio.Future[Any]) -> None:
        """Keep a worker slot taken by a sync attempt's thread that outlived its attempt."""
        self._abandoned.add(thread)

        def ended(f: asyncio.Future[Any]) -> None:
            self._abandoned.discard(f)
            self._slot_freed.set()

        thread.add_done_callback(ended)

    def _executor_factory(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.config.max_workers, thread_name_prefix=f"kew-{self.config.name}"
            )
        return self._executor

    async def stop(self, wait: bool, timeout: float) -> None:
        """Stop claiming; give running tasks ``timeout`` s (if ``wait``); hand the rest back."""
        self._stopping = True
        for w in self._idle_waiters:
            w.cancel()
        if self._wake_wait is not None:
            self._wake_wait.cancel()
        if self._blocking and self._blocked_client is None:
            # the wait was just sent: its CLIENT ID reply is a round trip away
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._blocked_known.wait()
        if self._blocked_client is not None:
            # end the wait as a timeout: the claim behind it still answers, and what it
            # claimed starts and is handed back below (cancelling could strand its tasks)
            with contextlib.suppress(TaskQueueError, TimeoutError):
                async with asyncio.timeout(RELEASE_TIMEOUT):
                    await self.store.unblock(self.keys, self._blocked_client)
        self._slot_freed.set()
        if self._loop_task is not None:
            # a claim in flight finishes (its tasks start and are handed back below); a Redis
            # that stopped answering must not hold shutdown forever
            await asyncio.wait([self._loop_task], timeout=max(timeout, RELEASE_TIMEOUT))
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        if tasks and wait and timeout > 0:
            await asyncio.wait(tasks, timeout=timeout)
        await self._hand_back_leftovers()
        if self._renew_task is not None:
            self._renew_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renew_task
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _hand_back_leftovers(self) -> None:
        """Cancel the runs still going and hand their tasks back to the ready set at once.

        Runs already writing their outcome are let finish (cancelling them could requeue a task
        whose result is being stored). Sync functions cannot be stopped inside their thread, so
        their tasks are not handed back: their leases expire after ``lease_timeout`` and another
        process runs them then, by which time this process has usually exited.
        """
        leftover = [r for r in self._runs.values() if r.task is not None and not r.task.done()]
        to_cancel = [r for r in leftover if not r.writing_outcome]
        hand_back = [(r.claimed.task_id, r.claimed.fence) for r in to_cancel if not r.in_thread]
        threads = len(to_cancel) - len(hand_back)
        for run in to_cancel:
            assert run.task is not None
            run.task.cancel()
        if leftover:
            await asyncio.wait([r.task for r in leftover if r.task is not None], timeout=5.0)
        if threads:
            logger.warning(
                "kew: %d sync task(s) of %s still run in threads; not handed back, their "
                "leases expire in %.0f s",
                threads,
                self.config.name,
                self.settings.lease_timeout,
            )
        if not hand_back:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                handed = await self.store.release(self.keys, hand_back, to_ms(self.clock.now()))
            logger.info("kew: queue %s handed %d running task(s) back", self.config.name, handed)
        except (TaskQueueError, TimeoutError):
            logger.exception("kew: could not hand tasks back; their leases will expire")

    # -- claiming -----------------------------------------------------------------------------

    def _free_slots(self) -> int:
        return self.config.max_workers - len(self._runs) - len(self._abandoned)

    def _claim_args(self, free: int) -> dict[str, Any]:
        """The arguments of a claim of up to ``free`` tasks, at the clock's time now."""
        return {
            "now_ms": to_ms(self.clock.now()),
            "n": free,
            "lease_ms": to_ms(self.settings.lease_timeout),
            "owner": self.owner,
            "reset_ms": to_ms(self.config.circuit_breaker_reset_timeout),
            "limit": DEFAULT_CLAIM_LIMIT,
            "limits": self._limits,
            "max_reclaims": self.settings.max_reclaims,
            "dead_ms": to_ms(self.settings.dead_letter_ttl),
        }

    async def _claim_loop(self) -> None:
        self._backoff = 0.05
        woken: tuple[ClaimResult, int] | None = None  # a claim made as an idle wait ended
        while not self._stopping:
            free = self._free_slots()
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                await asyncio.sleep(0)  # let completions of the same tick free their slots too
                continue
            if woken is not None:
                (result, asked), woken = woken, None
            else:
                asked = free
                claimed = await self._guarded(self.store.claim(self.keys, **self._claim_args(free)))
                if claimed is None:
                    continue
                result = claimed
            self.held_back = result.blocked
            if result.lost:
                await self._on_lost()
            for task in result.tasks:
                self._start_run(task)
            if self._stopping or len(result.tasks) == asked:
                continue
            # fewer than asked: the ready set was empty (or held back); a submit since then
            # has left a wake-up token, so waiting now misses nothing. The runs just started
            # take their first step before the next wait is sent (pickup latency).
            if result.tasks:
                await asyncio.sleep(0)
            woken = await self._idle(result.next_due_ms, self._free_slots())

    async def _guarded(self, call: Awaitable[ClaimResult]) -> ClaimResult | None:
        """Await a claim; on failure log, back off, and return None (the loop tries again)."""
        try:
            result = await call
        except KewConnectionError as exc:
            logger.warning(
                "kew: claim on %s failed (%s); retrying in %.2fs",
                self.config.name,
                exc,
                self._backoff,
            )
            await real_sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 5.0)
            return None
        except TaskQueueError:
            logger.exception("kew: claim on %s failed", self.config.name)
            await real_sleep(1.0)
            return None
        self._backoff = 0.05
        return result

    async def _idle(self, next_due_ms: int | None, free: int) -> tuple[ClaimResult, int] | None:
        """Wait until a submit pushes a wake-up token or the next due time comes.

        On real Redis with the real clock the wait and the next claim are one round trip
        (:meth:`_wait_then_claim`) and the claim's result is returned with how many tasks it
        asked for; otherwise the loop claims after this returns None.
        """
        if self.store.claims_on_wake and not self.clock.is_virtual:
            return await self._wait_then_claim(next_due_ms, free)
        await self._wait_for_wake(next_due_ms)
        return None

    async def _wait_then_claim(
        self, next_due_ms: int | None, free: int
    ) -> tuple[ClaimResult, int] | None:
        """BLPOP with the claim pipelined behind it: Redis claims the moment the wait ends.

        The claim carries the time the wait began, so the wait is capped at a quarter of the
        lease (the leases it grants stay at least 3/4 long, and renewal runs every third) and
        leases are renewed at once if the wait overran. Something due within 2 ms is claimed
        without waiting. A local timer pushes a token at the next due time, because Redis checks
        blocking timeouts only about every 100 ms; the claim that ends that wait is too early
        to promote the due task, so the loop's next claim does.
        """
        now_ms = to_ms(self.clock.now())
        seconds = min(
            wait_seconds(now_ms, next_due_ms, self.settings.idle_wait),
            self.settings.lease_timeout / 4,
        )
        if next_due_ms is not None and next_due_ms - now_ms <= 2:
            return None
        timer: asyncio.TimerHandle | None = None
        if seconds < self.settings.idle_wait:
            timer = asyncio.get_running_loop().call_later(seconds, self._push_wake)
        args = self._claim_args(free)
        started = self.clock.now()
        self._blocked_known.clear()
        self._blocking = True
        try:
            outcome = await self._guarded(self._wake_then_claim(seconds, args))
        finally:
            self._blocking = False
            self._blocked_client = None
            if timer is not None:
                timer.cancel()
        if outcome is None:
            return None
        if outcome.tasks and self.clock.now() - started > self.settings.lease_timeout / 4:
            outcome = await self._renew_claimed(outcome)
        return outcome, free

    async def _wake_then_claim(self, seconds: float, args: dict[str, Any]) -> ClaimResult:
        def blocked(client_id: int) -> None:
            self._blocked_client = client_id
            self._blocked_known.set()

        _, result = await self.store.wake_then_claim(self.keys, seconds, blocked, **args)
        return result

    async def _renew_claimed(self, result: ClaimResult) -> ClaimResult:
        """Give tasks claimed after an overlong wait full leases; drop any already taken over."""
        owned = [(t.task_id, t.fence) for t in result.tasks]
        expiry = to_ms(self.clock.now() + self.settings.lease_timeout)
        try:
            lost, _ = await self.store.extend(self.keys, expiry, owned)
        except TaskQueueError as exc:
            logger.warning("kew: lease renewal on %s failed: %s", self.config.name, exc)
            return result
        if not lost:
            return result
        kept = [t for t in result.tasks if t.task_id not in set(lost)]
        return dataclasses.replace(result, tasks=kept)

    async def _wait_for_wake(self, next_due_ms: int | None) -> None:
        """Block until a submit pushes a wake-up token or the next due time comes.

        Real clock: one BLPOP whose timeout is the time to the next due task (capped by
        ``idle_wait``); a local timer pushes a token at the due time, because Redis checks
        blocking timeouts only about every 100 ms. Virtual clock: the clock's own sleep races
        the BLPOP (``FakeClock.advance`` ends it). A BLPOP that loses the race is kept for the
        next wait rather than cancelled: a cancelled BLPOP may stay blocked on the server side
        (the embedded backend) and swallow a later token.
        """
        now_ms = to_ms(self.clock.now())
        virtual = self.clock.is_virtual
        if virtual:
            seconds = math.inf if next_due_ms is None else max(0.0, (next_due_ms - now_ms) / 1e3)
        else:
            seconds = wait_seconds(now_ms, next_due_ms, self.settings.idle_wait)
        if self._wake_wait is None:
            blocking = self.settings.idle_wait if virtual else seconds
            self._wake_wait = asyncio.ensure_future(self.store.wait_for_wake(self.keys, blocking))
        waiters: list[asyncio.Future[Any]] = [self._wake_wait]
        timer: asyncio.TimerHandle | None = None
        if virtual:
            waiters.append(asyncio.ensure_future(self.clock.sleep(seconds)))
        elif seconds < self.settings.idle_wait:
            timer = asyncio.get_running_loop().call_later(seconds, self._push_wake)
        self._idle_waiters = waiters
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
            for w in waiters[1:]:
                w.cancel()
            self._idle_waiters = []
        if self._wake_wait.done():
            wake, self._wake_wait = self._wake_wait, None
            if not wake.cancelled() and isinstance(wake.exception(), KewConnectionError):
                logger.warning(
                    "kew: wake-up wait on %s failed: %s", self.config.name, wake.exception()
                )
                await real_sleep(0.5)

    async def _on_lost(self) -> None:
        """The queue's data vanished from Redis: say so loudly and register the queue again."""
        logger.error(
            "kew: queue %r lost its data in Redis (restarted empty, flushed, or cleanup()): tasks "
            "that were waiting are gone, results of running ones are dropped; registering it again",
            self.config.name,
        )
        if self._register is not None:
            with contextlib.suppress(TaskQueueError):
                await self._register()

    def _push_wake(self) -> None:
        spawn(self._wake_quietly())

    async def _wake_quietly(self) -> None:
        with contextlib.suppress(TaskQueueError):
            await self.store.wake(self.keys)

    # -- running ------------------------------------------------------------------------------

    def _start_run(self, claimed: ClaimedTask) -> None:
        now = self.clock.now()
        info = TaskInfo(
            task_id=claimed.task_id,
            task_type=claimed.task_type,
            queue_name=self.config.name,
            priority=claimed.priority,
            status=TaskStatus.PROCESSING,
            queued_time=datetime.fromtimestamp(claimed.queued_ms / 1000.0),
            started_time=datetime.fromtimestamp(now),
            retry_count=claimed.retries,
            attempts=claimed.attempts,
        )
        run = _Run(claimed, info)
        run.report = functools.partial(
            self.store.progress, self.keys, claimed.task_id, claimed.fence
        )
        self._runs[claimed.task_id] = run
        run.task = asyncio.create_task(self._execute(run), name=f"kew-task:{claimed.task_id}")
        self._has_runs.set()  # after: the run's first step comes before the renewal loop's

    async def _execute(self, run: _Run) -> None:
        claimed, info = run.claimed, run.info
        try:
            logger.debug("kew: %s started (attempt %d)", claimed.task_id, claimed.attempts)
            set_current(
                TaskContext(
                    claimed.task_id,
                    self.config.name,
                    claimed.attempts,
                    run.report,
                    asyncio.get_running_loop(),
                )
            )
            if self.hooks.on_task_start is not None:  # no coroutine to build when there is none
                await self.hooks.started(info)
            try:
                func = self.codec.decode_function(claimed.func, claimed.task_id)
                args, kwargs = self.codec.decode_args(claimed.args, claimed.task_id)
                run.in_thread = not is_async_callable(func)
                value = await run_attempt(
                    func,
                    args,
                    kwargs,
                    self.config.task_timeout,
                    self._executor_factory,
                    self._abandon,
                )
                encoded = self.codec.encode_result(value, claimed.task_id)
                if len(encoded) > self.settings.max_payload_bytes:
                    raise SerializationError(
                        f"task result of type {type(value).__name__} is {len(encoded)} bytes, "
                        f"over max_payload_bytes ({self.settings.max_payload_bytes})"
                    )
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or not task.cancelling():
                    await self._fail(run, exc)  # raised inside the task's own code: a failure
                elif run.cancel_requested and not run.lease_lost:
                    await self._confirm_cancel(run)
                return  # otherwise: handed back on shutdown, or lease taken over
            except (Exception, SystemExit) as exc:  # sys.exit() in a task fails the task only
                await self._fail(run, exc)
                return
            await self._complete(run, value, encoded)
        except TaskQueueError as exc:
            # the outcome could not be written (Redis gone for good): the lease will expire
            # and another run will redo the task, so nothing is lost
            logger.error("kew: outcome of %s not recorded: %s", claimed.task_id, exc)
        finally:
            self._runs.pop(claimed.task_id, None)
            self._slot_freed.set()

    async def _confirm_cancel(self, run: _Run) -> None:
        run.writing_outcome = True
        code, _ = await retrying(
            lambda: self.store.cancel(
                self.keys,
                run.claimed.task_id,
                to_ms(self.clock.now()),
                to_ms(self.retention),
                run.claimed.fence,
            )
        )
        if code == 0:
            logger.debug("kew: %s cancelled while running", run.claimed.task_id)
            self._on_finished(self.config.name, run.claimed.task_id)

    def cancel_local(self, task_id: str) -> bool:
        """Cancel the run of ``task_id`` in this process at once, if it runs here."""
        run = self._runs.get(task_id)
        if run is None or run.task is None or run.writing_outcome or run.cancel_requested:
            return False
        run.cancel_requested = True
        run.task.cancel()
        return True

    async def _complete(self, run: _Run, value: Any, encoded: bytes) -> None:
        run.writing_outcome = True
        code = await self._acks.ack(run.claimed.task_id, run.claimed.fence, encoded)
        if code != 0:
            logger.warning("kew: result of %s dropped: lease lost", run.claimed.task_id)
            return
        info = run.info
        info.status = TaskStatus.COMPLETED
        info.result = value
        info.completed_time = datetime.fromtimestamp(self.clock.now())
        self._on_finished(self.config.name, run.claimed.task_id)
        logger.debug("kew: %s completed", run.claimed.task_id)
        await self.hooks.completed(info)

    async def _fail(self, run: _Run, exc: BaseException) -> None:
        claimed, info, cfg = run.claimed, run.info, self.config
        run.writing_outcome = True
        now = self.clock.now()
        retry = should_retry(claimed.retries, cfg.max_retries) and not isinstance(
            exc, SerializationError
        )
        delay = backoff_delay(cfg.retry_delay, claimed.retries + 1) if retry else 0.0
        due_ms = to_ms(min(now + delay, MAX_DUE)) if retry else 0
        text = error_text(exc)
        code, _, outcome = await retrying(
            lambda: self.store.fail(
                self.keys,
                claimed.task_id,
                claimed.fence,
                now_ms=to_ms(now),
                error=text,
                retry_due_ms=max(due_ms, 1) if retry else 0,
                retention_ms=to_ms(self.settings.dead_letter_ttl),
                breaker_max=cfg.max_circuit_breaker_failures,
                breaker_reset_ms=to_ms(cfg.circuit_breaker_reset_timeout),
                # a retried attempt is not yet a failed task, and an unreadable or forged
                # payload says nothing about the downstream the breaker protects
                count_for_breaker=not retry and not isinstance(exc, SerializationError),
            )
        )
        if code != 0:
            logger.warning("kew: failure of %s dropped: lease lost", claimed.task_id)
            return
        info.error = text
        if outcome == "retry":
            info.status = TaskStatus.RETRY
            info.retry_count = claimed.retries + 1
            info.due_time = datetime.fromtimestamp(due_ms / 1000.0)
        else:
            info.status = TaskStatus.CANCELLED if outcome == "cancelled" else TaskStatus.FAILED
            info.completed_time = datetime.fromtimestamp(now)
            self._on_finished(cfg.name, claimed.task_id)
        logger.debug("kew: %s failed (%s): %s", claimed.task_id, info.status.value, text)
        await self.hooks.failed(info, exc)

    # -- leases -------------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        while True:
            if not self._runs:
                self._has_runs.clear()
                await self._has_runs.wait()
            await self.clock.sleep(self.settings.renew_interval)
            owned = [(r.claimed.task_id, r.claimed.fence) for r in self._runs.values()]
            if not owned:
                continue
            expiry = to_ms(self.clock.now() + self.settings.lease_timeout)
            try:
                lost, cancel = await self.store.extend(self.keys, expiry, owned)
            except TaskQueueError as exc:
                logger.warning("kew: lease renewal on %s failed: %s", self.config.name, exc)
                continue
            for task_id in cancel:
                self.cancel_local(task_id)
            for task_id in lost:
                run = self._runs.get(task_id)
                # a run writing its outcome is not cancelled: its lease may be "gone" because
                # that very write landed (a reply lost in a failover); the write itself reports
                # OK, or LEASE_LOST if the task was really taken over
                if run is not None and run.task is not None and not run.writing_outcome:
                    logger.warning("kew: lease of %s was taken over; cancelling this run", task_id)
                    run.lease_lost = True
                    run.task.cancel()
