"""Manager-wide settings: one frozen value object, built from ``TaskQueueManager`` keywords."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .exceptions import InvalidArgumentError

__all__ = [
    "DEFAULT_CLAIM_LIMIT",
    "DEFAULT_IDLE_WAIT",
    "DEFAULT_LEASE_TIMEOUT",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_RECLAIMS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_RETENTION",
    "DEFAULT_SUBMIT_CHUNK",
    "ManagerSettings",
]

DEFAULT_NAMESPACE = "kew"
DEFAULT_LEASE_TIMEOUT = 30.0  # seconds a claim stays valid without renewal
DEFAULT_RETENTION = 86_400.0  # seconds a finished task's record and result are kept (24 h)
DEFAULT_IDLE_WAIT = 30.0  # longest blocking wait of an idle worker, seconds
DEFAULT_CLAIM_LIMIT = 1000  # most scheduled promotions / lease reclaims per claim call
DEFAULT_SUBMIT_CHUNK = 1000  # tasks per round trip in submit_tasks
DEFAULT_MAX_RECLAIMS = 3  # lease expiries (crashed/hung processes) before a task is dead
DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # stored function + arguments, or result
STAGING_TTL = 600.0  # seconds a half-written chunked batch may wait for its commit


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(
            f"{name} must be a number of seconds, got {type(value).__name__}"
        )
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InvalidArgumentError(f"{name} must be finite and > 0 seconds, got {value!r}")
    return v


@dataclass(frozen=True)
class ManagerSettings:
    """Settings shared by every queue of one manager.

    Args:
        namespace: prefix of every Redis key (str, no ``{``/``}``/whitespace; default "kew").
            Managers with different namespaces on one Redis never see each other.
        lease_timeout: seconds a claimed task stays leased without renewal (default 30). Running
            tasks are renewed every third of it; a lease that expires (dead or hung process) is
            reclaimed by any live worker and the task runs again.
        retention: seconds a finished (completed or failed) task's record and result are kept,
            counted from when it finished (default 86400 = 24 h).
        idle_wait: longest blocking wait of an idle worker in seconds (default 30).
        submit_chunk: tasks per round trip in ``submit_tasks`` (default 1000).
        dead_letter_retention: seconds a task that failed for good is kept in its queue's
            dead-letter set, counted from its failure (default: ``retention``).
        max_reclaims: how many times a task's lease may expire (its process died or hung while
            running it) before it fails for good as a dead letter instead of running again:
            a task that kills its process must not crash-loop the fleet (int >= 0, 0 = no
            limit; default 3).
        max_payload_bytes: largest stored task payload or result in bytes (default 16 MiB).
        wait_replicas: replicas that must have a submit or an outcome before kew reports it
            done (Redis WAIT after the script, on its connection, in the same round trip; int
            >= 0, default 0 = do not wait). With replicas and Redis Cluster or Sentinel, what was
            acknowledged survives the failover of its primary. A submit confirmed by fewer
            raises NotReplicatedError; an outcome confirmed by fewer is logged.
        wait_timeout: seconds WAIT waits for those replicas (default 1.0).

    Raises:
        InvalidArgumentError: a value of the wrong type or out of range.
    """

    namespace: str = DEFAULT_NAMESPACE
    lease_timeout: float = DEFAULT_LEASE_TIMEOUT
    retention: float = DEFAULT_RETENTION
    idle_wait: float = DEFAULT_IDLE_WAIT
    submit_chunk: int = DEFAULT_SUBMIT_CHUNK
    dead_letter_retention: float | None = None
    max_reclaims: int = DEFAULT_MAX_RECLAIMS
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    wait_replicas: int = 0
    wait_timeout: float = 1.0

    def __post_init__(self) -> None:
        ns = self.namespace
        if not isinstance(ns, str) or not ns or any(c in ns for c in "{} \t\r\n"):
            raise InvalidArgumentError(
                f"namespace must be a non-empty str without braces or whitespace, got {ns!r}"
            )
        if self.dead_letter_retention is None:
            object.__setattr__(self, "dead_letter_retention", self.retention)
        wr = self.wait_replicas
        if isinstance(wr, bool) or not isinstance(wr, int) or not 0 <= wr <= 100:
            raise InvalidArgumentError(f"wait_replicas must be an int in 0..100, got {wr!r}")
        for name in (
            "lease_timeout",
            "retention",
            "idle_wait",
            "dead_letter_retention",
            "wait_timeout",
        ):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        for name in ("retention", "dead_letter_retention"):
            if getattr(self, name) < 0.001:
                raise InvalidArgumentError(f"{name} must be >= 0.001 s, got {getattr(self, name)}")
        if self.lease_timeout < 0.1:
            raise InvalidArgumentError(f"lease_timeout must be >= 0.1 s, got {self.lease_timeout}")
        mp = self.max_payload_bytes
        if isinstance(mp, bool) or not isinstance(mp, int) or not 1 <= mp <= 512 * 1024 * 1024:
            raise InvalidArgumentError(
                f"max_payload_bytes must be an int in 1..512 MiB, got {mp!r}"
            )
        mr = self.max_reclaims
        if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
            raise InvalidArgumentError(f"max_reclaims must be an int >= 0, got {mr!r}")
        chunk = self.submit_chunk
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise InvalidArgumentError(f"submit_chunk must be an int >= 1, got {chunk!r}")

    @property
    def dead_letter_ttl(self) -> float:
        """Seconds dead letters are kept (``dead_letter_retention``, else ``retention``)."""
        return (
            self.dead_letter_retention if self.dead_letter_retention is not None else self.retention
        )

    @property
    def renew_interval(self) -> float:
        """Seconds between lease renewals: a third of the lease."""
        return self.lease_timeout / 3.0
