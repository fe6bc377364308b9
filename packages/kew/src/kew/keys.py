"""The Redis key schema: every key name kew uses, built in one place (pure, no I/O).

All keys start with the manager's namespace. Every key of a queue carries the queue's hash tag,
``{queue}``, so a script that touches one queue touches one Redis Cluster slot::

    kew:queues                  SET   names of the queues created in this namespace
    kew:{orders}:ready          ZSET  ready task ids, score = priority * 2**40 + sequence
    kew:{orders}:scheduled      ZSET  deferred and retry-waiting ids, score = due time (ms)
    kew:{orders}:leased         ZSET  claimed ids, score = lease expiry (ms)
    kew:{orders}:wake           LIST  wake-up token for idle workers (at most one element)
    kew:{orders}:meta           HASH  sequence counter, paused flag
    kew:{orders}:breaker        HASH  circuit breaker: state, failures, opened_at, probe_at
    kew:{orders}:rate           HASH  token bucket of the rate limit: tokens, ts
    kew:{orders}:dead           ZSET  dead letters (failed for good) by failure time (ms)
    kew:{orders}:events         channel: "<status> <task id>" when a task finishes
    kew:{orders}:staging:<id>   LIST  rows of a chunked batch until its commit (all-or-nothing)
    kew:{orders}:staging:<id>:outcome  STRING "<code>:<index>" of a finished batch (staging ttl)
    kew:{orders}:task:<id>      HASH  one task (fields: see models.TaskInfo.from_hash)
    kew:{}:id:<id>              STRING the queue holding task <id>: keeps ids unique across the
                                queues of a namespace; expires with the task's record.
                                On Redis Cluster it is only a short claim taken while a
                                submit is on the wire, and the record's own id key is
    kew:{orders}:id:<id>        STRING (cluster only) the queue's copy, in the queue's slot

``{}`` is an empty hash tag (Redis hashes the whole key); no queue can be named "" so these keys
never collide with a queue's, and ``kew:{*`` matches every key of the namespace but ``kew:queues``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QueueKeys", "namespace_pattern", "queues_key"]


def queues_key(namespace: str) -> str:
    """Return the key of the SET of queue names in ``namespace``."""
    return f"{namespace}:queues"


def namespace_pattern(namespace: str) -> str:
    """Return a SCAN MATCH pattern for every queue key of ``namespace`` (glob chars escaped).

    The pattern is ``<namespace>:{*``: namespaces cannot contain braces, so it never matches
    the keys of a longer namespace such as ``<namespace>:other``. The namespace's one key
    outside any queue is :func:`queues_key`.
    """
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in namespace)
    return f"{escaped}:{{*"


@dataclass(frozen=True)
class QueueKeys:
    """Key names of one queue in one namespace."""

    namespace: str
    queue: str

    @property
    def base(self) -> str:
        """``<namespace>:{<queue>}``: the prefix shared by every key of the queue."""
        return f"{self.namespace}:{{{self.queue}}}"

    @property
    def ready(self) -> str:
        return f"{self.base}:ready"

    @property
    def scheduled(self) -> str:
        return f"{self.base}:scheduled"

    @property
    def leased(self) -> str:
        return f"{self.base}:leased"

    @property
    def wake(self) -> str:
        return f"{self.base}:wake"

    @property
    def meta(self) -> str:
        return f"{self.base}:meta"

    @property
    def breaker(self) -> str:
        return f"{self.base}:breaker"

    @property
    def rate(self) -> str:
        return f"{self.base}:rate"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def events(self) -> str:
        return f"{self.base}:events"

    @property
    def id_prefix(self) -> str:
        """Prefix of the namespace-wide task-id keys; the scripts append the task id."""
        return f"{self.namespace}:{{}}:id:"

    @property
    def queue_id_prefix(self) -> str:
        """Prefix of the queue's own task-id keys (Redis Cluster: one slot per script)."""
        return f"{self.base}:id:"

    @property
    def task_prefix(self) -> str:
        """Prefix of task keys; the scripts append the task id to it."""
        return f"{self.base}:task:"

    def task(self, task_id: str) -> str:
        """Return the key of the HASH of ``task_id``."""
        return f"{self.task_prefix}{task_id}"

    def staging(self, batch_id: str) -> str:
        """Return the key of the staging LIST of a chunked batch submit."""
        return f"{self.base}:staging:{batch_id}"
