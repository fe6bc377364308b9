"""RedisCircuitBreaker: the per-queue circuit breaker, shared by every process on the Redis.

Counting happens in Lua (``lua/includes/breaker.lua``), so all processes see one count: the
``fail`` script counts each failed attempt, the ``complete`` script closes the breaker on a
success, and the ``claim`` script refuses to lease tasks while it is open and lets one trial
through once ``circuit_breaker_reset_timeout`` has passed (half-open). This class is the manual
API kew 0.2.x exposed as ``manager.queues[name].circuit_breaker``.
"""

from __future__ import annotations

from typing import Any

from .clock import Clock
from .keys import QueueKeys
from .scheduling import breaker_state, to_ms
from .store import RedisStore

__all__ = ["RedisCircuitBreaker"]


class RedisCircuitBreaker:
    """Circuit breaker of one queue (closed / open / half-open), stored in Redis.

    Args:
        store: the manager's RedisStore.
        keys: the queue's keys.
        max_failures: consecutive failures that open the circuit (int >= 1).
        reset_timeout: seconds the circuit stays open before a trial task is allowed.
        clock: the manager's clock.
        ttl: seconds the breaker's record lives after its last change.
    """

    def __init__(
        self,
        store: RedisStore,
        keys: QueueKeys,
        max_failures: int,
        reset_timeout: float,
        clock: Clock,
        ttl: float,
    ) -> None:
        self._store = store
        self._keys = keys
        self.max_failures = max_failures
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._ttl = ttl

    async def record_failure(self) -> int:
        """Count one failure, as a failed task would; return the consecutive failures counted.

        Reaching ``max_failures`` opens the circuit for ``reset_timeout`` seconds in every process.

        Raises:
            KewConnectionError: Redis unreachable.
        """
        return await self._store.breaker_failure(
            self._keys,
            to_ms(self._clock.now()),
            self.max_failures,
            to_ms(self.reset_timeout),
            to_ms(self._ttl),
        )

    async def reset(self) -> None:
        """Close the circuit and forget the failures (in every process)."""
        await self._store.breaker_reset(self._keys)

    async def get_state(self) -> str:
        """Return "closed", "open" or "half-open" (open, with a trial task allowed now)."""
        fields = await self._store.breaker_fields(self._keys)
        return breaker_state(fields, to_ms(self._clock.now()))

    async def check_state(self) -> bool:
        """True when tasks may start: the circuit is closed (or half-open: a trial may run).

        False while it is open and its reset timeout has not passed.
        """
        return await self.get_state() != "open"

    async def get_status(self) -> dict[str, Any]:
        """Return ``{"state": str, "failures": int, "opened_at": float | None}`` (seconds)."""
        fields = await self._store.breaker_fields(self._keys)
        opened = fields.get(b"opened_at")
        return {
            "state": breaker_state(fields, to_ms(self._clock.now())),
            "failures": int(fields.get(b"failures", b"0")),
            "opened_at": int(opened) / 1000.0 if opened else None,
        }
