"""TaskQueueManager: the public façade (the API of kew 0.2.x, plus ``wait_for_task``).

It validates every call before touching Redis, owns the store (connection), the per-queue
workers and the event subscription, and never configures logging (design.md §3).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from .admin import AdminMixin
from .breaker import RedisCircuitBreaker
from .clock import Clock, SystemClock
from .codec import Codec
from .connection import create_client, is_memory_url
from .events import TaskEvents
from .exceptions import (
    InvalidArgumentError,
    QueueNotFoundError,
    QueueProcessorError,
)
from .hooks import Hooks
from .keys import QueueKeys
from .models import QueueConfig, TaskInfo, TaskStatus
from .queue import Queue
from .reads import ReadsMixin
from .scheduling import to_ms
from .settings import ManagerSettings
from .signing import signer_from
from .store import RedisStore
from .submission import (
    SubmitCoalescer,
    TaskRow,
    build_row,
    check_size,
    rows_from_dicts,
    submit_batch,
)
from .worker import QueueWorker

__all__ = ["TaskQueueManager"]

logger = logging.getLogger("kew")

_unsigned_warned = False


def _warn_unsigned_once(signing: bool) -> None:
    global _unsigned_warned
    if not signing and not _unsigned_warned:
        _unsigned_warned = True
        logger.warning(
            "kew: no signing_key: anyone who can write to this Redis can make workers unpickle "
            "arbitrary data; set TaskQueueManager(signing_key=...) or KEW_SIGNING_KEY"
        )


class TaskQueueManager(ReadsMixin, AdminMixin):
    """Creates queues, accepts tasks and runs them in this process's event loop.

    Any number of managers (in any number of processes) sharing one Redis and one namespace
    cooperate on the same queues; each runs at most ``max_workers`` tasks per queue.

    Args:
        redis_url: ``redis://[user:pass@]host:port/db``, ``rediss://``, ``unix://``,
            ``redis+cluster://host:port[,host:port...]`` (Redis Cluster),
            ``redis+sentinel://host:port[,...]/service[/db]`` (the primary Sentinel names), or
            ``memory://`` (embedded in-process Redis, needs ``kew[memory]``).
        cleanup_on_start: when True, ``initialize()`` deletes every key of this namespace
            (default False: a process joining a fleet must not wipe the others' work).
        on_task_start: hook ``(info)`` before each attempt; sync or async.
        on_task_complete: hook ``(info)`` after a success.
        on_task_fail: hook ``(info, exc)`` after every failed attempt; ``info.status`` is RETRY
            when the task will run again, FAILED when not.
        namespace: prefix of every key (default "kew").
        clock: time source (default the system clock); kew-testkit's FakeClock makes timing
            tests exact.
        lease_timeout: seconds a claim stays valid without renewal (default 30).
        retention: seconds finished tasks' records and results are kept (default 86400).
        idle_wait: longest blocking wait of an idle worker, seconds (default 30).
        submit_chunk: tasks per round trip in ``submit_tasks`` (default 1000).
        dead_letter_retention: seconds tasks that failed for good stay in the dead-letter set
            (default: ``retention``).
        max_reclaims: lease expiries (the running process died or hung) a task may cause before
            it fails for good as a dead letter (default 3; 0 = no limit).
        max_payload_bytes: largest stored function + arguments of one task, and largest stored
            result, in bytes (default 16 MiB; Redis itself stops at 512 MB). A larger submit
            raises SerializationError; a larger result fails the task.
        signing_key: HMAC-SHA256 key(s) (str or bytes, >= 16 bytes; a list rotates keys: the
            first signs, all verify). Every stored function, argument and result blob is
            signed, and a blob with a missing or wrong signature is never unpickled: the task
            fails for good. None (default): the ``KEW_SIGNING_KEY`` environment variable if
            set, else no signing (kew logs one warning per process at ``initialize()``).
        wait_replicas: replicas that must confirm a submit or an outcome (Redis WAIT, in the
            same round trip) before kew reports it done (default 0: do not wait). Use it with
            replicas (Sentinel, Cluster) so that acknowledged work survives a failover.
        wait_timeout: seconds to wait for those replicas (default 1.0); a submit confirmed by
            fewer raises NotReplicatedError (the task is queued on the primary); a final outcome
            is written again until confirmed, for up to 20 times this (or until shutdown), and
            its hooks fire after.
        allow_pickled_functions: False for "by reference only": task functions must be
            importable (``module:qualname``), arguments and results are limited to JSON values
            plus tuple, bytes, datetime, date, time, Decimal and UUID (stored as tagged JSON),
            and nothing read from Redis is ever unpickled (default True).

    Raises:
        InvalidArgumentError: a hook is not callable, or a setting is out of range.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379",
        cleanup_on_start: bool = False,
        on_task_start: Callable[..., Any] | None = None,
        on_task_complete: Callable[..., Any] | None = None,
        on_task_fail: Callable[..., Any] | None = None,
        *,
        namespace: str = "kew",
        clock: Clock | None = None,
        lease_timeout: float = 30.0,
        retention: float = 86_400.0,
        idle_wait: float = 30.0,
        submit_chunk: int = 1000,
        dead_letter_retention: float | None = None,
        max_reclaims: int = 3,
        max_payload_bytes: int = 16 * 1024 * 1024,
        signing_key: str | bytes | Sequence[str | bytes] | None = None,
        allow_pickled_functions: bool = True,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
    ) -> None:
        if not isinstance(redis_url, str) or "://" not in redis_url:
            raise InvalidArgumentError(f"redis_url must be a URL string, got {redis_url!r}")
        self.redis_url = redis_url
        self.cleanup_on_start = bool(cleanup_on_start)
        self.hooks = Hooks(on_task_start, on_task_complete, on_task_fail)
        self.settings = ManagerSettings(
            namespace=namespace,
            lease_timeout=lease_timeout,
            retention=retention,
            idle_wait=idle_wait,
            submit_chunk=submit_chunk,
            dead_letter_retention=dead_letter_retention,
            max_reclaims=max_reclaims,
            max_payload_bytes=max_payload_bytes,
            wait_replicas=wait_replicas,
            wait_timeout=wait_timeout,
        )
        if self.settings.wait_replicas and is_memory_url(redis_url):
            raise InvalidArgumentError("wait_replicas needs replicas; memory:// has none")
        if signing_key is None:
            signing_key = os.environ.get("KEW_SIGNING_KEY") or None  # documented opt-in
        if not isinstance(allow_pickled_functions, bool):
            raise InvalidArgumentError("allow_pickled_functions must be a bool")
        self.codec = Codec(signer_from(signing_key), allow_pickled_functions)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.queues: dict[str, Queue] = {}
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._store: RedisStore | None = None
        self._events: TaskEvents | None = None
        self._submitters: dict[str, SubmitCoalescer] = {}
        self._known_queues: set[str] = set()
        self._closed = False
        self._shutdown_task: asyncio.Future[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The key prefix of this manager."""
        return self.settings.namespace

    async def initialize(self) -> None:
        """Connect to Redis (and, with ``cleanup_on_start``, delete this namespace's keys).

        Safe to call more than once.

        Raises:
            KewConnectionError: Redis cannot be reached (URL shown with the password masked).
        """
        if self._store is not None:
            return
        if self._closed:
            raise QueueProcessorError("this manager was shut down; create a new one")
        client = create_client(self.redis_url)
        store = RedisStore(
            client,
            self.redis_url,
            wait_replicas=self.settings.wait_replicas,
            wait_timeout_ms=to_ms(self.settings.wait_timeout),
        )
        try:
            await store.ping()
            if self.cleanup_on_start:
                await store.delete_namespace(self.namespace)
        except BaseException:
            await store.close()
            raise
        self._store = store
        self._events = TaskEvents(store, self.namespace)
        _warn_unsigned_once(self.codec.signer.enabled)

    async def __aenter__(self) -> TaskQueueManager:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def shutdown(self, wait: bool = True, timeout: float = 5.0) -> None:
        """Stop claiming, let running tasks finish, hand the rest back, close the connection.

        Args:
            wait: wait for running tasks (up to ``timeout``) before cancelling them.
            timeout: seconds to wait for running tasks (>= 0). Tasks still running then are
                cancelled and handed back to their queue at once (not failed, not lost).
        """
        if self._shutdown_task is None:
            self._closed = True
            self._shutdown_task = asyncio.ensure_future(self._shutdown(wait, timeout))
        # shielded: a caller that is cancelled (or a task calling shutdown on its own manager)
        # cannot leave the manager half-closed; a second call waits for the same shutdown
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self, wait: bool, timeout: float) -> None:
        if self._store is not None:
            self._store.wind_down()  # outcomes being confirmed return within one WAIT
        await asyncio.gather(
            *(q.worker.stop(wait, timeout) for q in self.queues.values()), return_exceptions=True
        )
        if self._events is not None:
            await self._events.close()
        if self._store is not None:
            await self._store.close()
        self._store = None

    def _require_store(self) -> RedisStore:
        if self._closed:
            raise QueueProcessorError("this manager was shut down")
        if self._store is None:
            raise QueueProcessorError("manager not initialized: await manager.initialize() first")
        return self._store

    def _queue(self, name: object) -> Queue:
        queue = self.queues.get(name) if isinstance(name, str) else None
        if queue is None:
            raise QueueNotFoundError(f"queue {name!r} not found (create it with create_queue)")
        return queue

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    # -- queues -------------------------------------------------------------------------------

    async def create_queue(self, config: QueueConfig) -> Queue:
        """Create (or join) a queue and start consuming it in this process.

        Other processes that create a queue of the same name in the same namespace share it.

        Args:
            config: the QueueConfig (validated on construction).

        Returns:
            The Queue handle, also in ``manager.queues[config.name]``.

        Raises:
            InvalidArgumentError: not a QueueConfig, or this manager already has that queue.
            KewConnectionError: Redis unreachable.
        """
        if not isinstance(config, QueueConfig):
            raise InvalidArgumentError(f"config must be a QueueConfig, got {type(config).__name__}")
        if config.name in self.queues:
            raise InvalidArgumentError(f"queue {config.name!r} already exists in this manager")
        await self.initialize()
        store = self._require_store()
        keys = QueueKeys(self.namespace, config.name)
        await self._register(store, keys, config)
        breaker = RedisCircuitBreaker(
            store,
            keys,
            config.max_circuit_breaker_failures,
            config.circuit_breaker_reset_timeout,
            self.clock,
            self.settings.retention,
        )
        worker = QueueWorker(
            store=store,
            keys=keys,
            config=config,
            settings=self.settings,
            clock=self.clock,
            owner=self.owner,
            hooks=self.hooks,
            on_finished=self._finished_here,
            codec=self.codec,
            on_lost=lambda: self._on_queue_lost(store, keys, config),
        )
        queue = Queue(config, keys, breaker, worker)
        self.queues[config.name] = queue
        self._known_queues.add(config.name)
        self._submitters[config.name] = SubmitCoalescer(store, keys, config.max_size, self._now_ms)
        worker.start()
        return queue

    async def _on_queue_lost(self, store: RedisStore, keys: QueueKeys, config: QueueConfig) -> None:
        """A queue's data vanished: waiters re-read (and get TaskNotFoundError); register anew."""
        if self._events is not None:
            self._events.notify_all()
        await self._register(store, keys, config)

    async def _register(self, store: RedisStore, keys: QueueKeys, config: QueueConfig) -> None:
        """Record the queue in Redis (the namespace's registry and its meta record)."""
        await store.register_queue(self.namespace, config.name)
        await self._check_fleet_limits(store, keys, config)

    async def _check_fleet_limits(
        self, store: RedisStore, keys: QueueKeys, config: QueueConfig
    ) -> None:
        """Warn when another process created this queue with other fleet-wide limits: each
        process's claims apply its own QueueConfig, so the limits hold only if all agree."""
        c = config
        mine = (
            f"global_max_workers={c.global_max_workers} rate_limit={c.rate_limit} "
            f"rate_period={c.rate_period} rate_burst={c.rate_burst}"
        )
        before = await store.swap_limits(keys, mine)
        if before is not None and before != mine:
            logger.warning(
                "kew: queue %r is used with other fleet-wide limits elsewhere (%s; here %s): "
                "set the same global_max_workers / rate_limit in every process",
                config.name,
                before,
                mine,
            )

    def _finished_here(self, queue_name: str, task_id: str) -> None:
        if self._events is not None:
            self._events.notify(task_id)

    # -- submitting ---------------------------------------------------------------------------

    def _info_for(self, queue_name: str, row: TaskRow, queued: datetime) -> TaskInfo:
        return TaskInfo(
            task_id=row.task_id,
            task_type=row.task_type,
            queue_name=queue_name,
            priority=row.priority.value,
            status=TaskStatus.QUEUED,
            queued_time=queued,
            due_time=datetime.fromtimestamp(row.due) if row.due is not None else None,
        )

    async def submit_task(
        self,
        task_id: str,
        queue_name: str,
        task_type: str,
        task_func: Callable[..., Any],
        priority: Any,
        *args: Any,
        _defer_until: datetime | None = None,
        _defer_by: float | Any = None,
        **kwargs: Any,
    ) -> TaskInfo:
        """Submit one task; it runs in whichever process claims it first.

        Args:
            task_id: the task's id (non-empty str), unique across the queues of this namespace
                while its record exists.
            queue_name: a queue created with ``create_queue`` in this manager.
            task_type: a label of the kind of task (str).
            task_func: async or sync callable; stored by reference when importable
                (``module:qualname``), by cloudpickle otherwise.
            priority: QueuePriority (or 1, 2, 3); HIGH runs first, FIFO within a priority.
            *args, **kwargs: passed to ``task_func``; must be picklable.
            _defer_until: run at this datetime (aware: exact; naive: local time; past: now).
            _defer_by: run after this many seconds (number >= 0 or timedelta).

        Returns:
            The TaskInfo in status QUEUED.

        Raises:
            QueueNotFoundError: unknown queue.
            InvalidArgumentError: empty task_id, non-callable task_func, bad priority, both or
                bad defer arguments.
            SerializationError: an argument cannot be serialized (nothing is written).
            TaskAlreadyExistsError: a task with this id exists in a queue of this namespace.
            QueueProcessorError: the queue is full (max_size waiting tasks) or the manager is
                not running.
            KewConnectionError: Redis unreachable (on Cluster or Sentinel: still unreachable
                after about 6 s of retries while a failover runs).
            NotReplicatedError: with ``wait_replicas``, fewer replicas confirmed the submit
                in time (the task is queued on the primary).
        """
        queue = self._queue(queue_name)
        self._require_store()
        now = self.clock.now()
        row = build_row(
            now,
            task_id,
            task_type,
            task_func,
            priority,
            args,
            kwargs,
            _defer_by,
            _defer_until,
            self.codec,
        )
        check_size(row, self.settings.max_payload_bytes)
        await self._submitters[queue.name].submit(row)
        return self._info_for(queue.name, row, datetime.fromtimestamp(now))

    async def submit_tasks(
        self, queue_name: str, tasks: Sequence[Mapping[str, Any]]
    ) -> list[TaskInfo]:
        """Submit a batch all-or-nothing: every task is enqueued, or none is.

        Each dict takes ``task_id``, ``task_func`` (required), ``task_type`` (default ""),
        ``priority`` (default MEDIUM), ``args`` (tuple/list), ``kwargs`` (dict), ``_defer_by``,
        ``_defer_until``. One round trip per ``submit_chunk`` tasks; chunks before the last are
        staged invisibly and published by the last.

        Raises:
            QueueNotFoundError, InvalidArgumentError, SerializationError: as ``submit_task``,
                for any task of the batch (nothing is written).
            TaskAlreadyExistsError: an id repeats in the batch or exists in a queue of this
                namespace.
            QueueProcessorError: the batch does not fit under max_size.
            KewConnectionError: Redis unreachable. When the connection failed during the last
                call the batch may be queued (its reply was lost): check with
                ``get_task_status`` before sending it again. A repeated call of the same batch
                is answered from Redis (staging ttl), so kew's own retries never report a
                committed batch as failed.
            NotReplicatedError: with ``wait_replicas``, fewer replicas confirmed the batch's
                commit in time (the whole batch is queued on the primary).
        """
        queue = self._queue(queue_name)
        store = self._require_store()
        now = self.clock.now()
        rows = rows_from_dicts(now, tasks, self.settings.max_payload_bytes, self.codec)
        if not rows:
            return []
        await submit_batch(
            store, queue.keys, queue.config.max_size, rows, to_ms(now), self.settings.submit_chunk
        )
        queued = datetime.fromtimestamp(now)  # one instant for the batch (datetimes are immutable)
        return [self._info_for(queue.name, r, queued) for r in rows]

    # -- reading ------------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete every key of this manager's namespace (and only those); return how many.

        Tasks running in this process keep running, but their outcome has nowhere to go.
        """
        return await self._require_store().delete_namespace(self.namespace)
