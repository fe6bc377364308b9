"""What one redis-py client can do on this machine: the ceilings kew's figures are compared to.

- ``evalsha_seq``: sequential EVALSHA of a one-key script (``SET``), one round trip each,
  through redis-py's ``execute_command`` (kew packs its own requests: see kew/wire.py);
- ``set_seq``: sequential SET;
- ``set_pipelined``: SETs in non-transactional pipelines of 1000.

:class:`PairedEvalsha` measures the EVALSHA ceiling again inside kew's sequential-enqueue
scenario, in blocks alternating with kew's own submits, so that kew's share of it compares two
rates taken in the same seconds (on a shared machine both swing by tens of percent within a
minute, which the once-per-round figure cannot follow).

Runs in the environment whose redis-py is measured (the workspace one for kew):
``python -m bench.drivers.ceiling --url redis://... --n 20000`` prints ``@@RESULT <json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import redis
from redis.asyncio import Redis

_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"
_PIPE = 1000
_WARMUP = 200


class PairedEvalsha:
    """One redis-py client sending the ceiling's EVALSHA in timed blocks (see the module doc).

    Use :meth:`open`, then :meth:`block` between blocks of the measured library's own calls,
    then :meth:`aclose`.
    """

    def __init__(self, client: Any, sha: str, key: str) -> None:
        self._execute = client.execute_command
        self._client = client
        self._sha = sha
        self._key = key
        self.count = 0
        self.seconds = 0.0

    @classmethod
    async def open(cls, url: str, prefix: str) -> PairedEvalsha:
        """Connect, load the script and warm up (200 calls)."""
        client: Any = Redis.from_url(url, decode_responses=False)
        sha = await client.script_load(_SCRIPT)
        paired = cls(client, sha, f"{prefix}:paired")
        for _ in range(_WARMUP):
            await paired._execute("EVALSHA", sha, 1, paired._key, "v")
        return paired

    async def block(self, n: int) -> None:
        """Send ``n`` sequential EVALSHAs and add them to the tally."""
        execute, sha, key = self._execute, self._sha, self._key
        t0 = time.perf_counter()
        for i in range(n):
            await execute("EVALSHA", sha, 1, key, i)
        self.seconds += time.perf_counter() - t0
        self.count += n

    @property
    def commands(self) -> dict[str, int]:
        """The Redis commands this sent (the harness takes them out of the measured library's
        commands per task): each EVALSHA runs one SET."""
        calls = self.count + _WARMUP
        return {"evalsha": calls, "set": calls}

    @property
    def rate(self) -> float | None:
        """EVALSHAs per second over every block (None before the first)."""
        return self.count / self.seconds if self.seconds > 0 else None

    async def aclose(self) -> None:
        await self._client.unlink(self._key)
        await self._client.aclose()


async def measure(url: str, n: int, prefix: str) -> dict[str, Any]:
    client: Any = Redis.from_url(url, decode_responses=False)
    try:
        sha = await client.script_load(_SCRIPT)
        execute = client.execute_command
        out: dict[str, Any] = {"redis_py": redis.__version__}
        key = f"{prefix}:k"
        for _ in range(200):  # warm-up: connection made, script cached
            await execute("EVALSHA", sha, 1, key, "v")
        t0 = time.perf_counter()
        for i in range(n):
            await execute("EVALSHA", sha, 1, key, i)
        out["evalsha_seq"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(n):
            await execute("SET", key, i)
        out["set_seq"] = n / (time.perf_counter() - t0)
        total = n * 5
        t0 = time.perf_counter()
        for start in range(0, total, _PIPE):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(start + _PIPE, total)):
                    pipe.set(f"{prefix}:p{i}", i)
                await pipe.execute()
        out["set_pipelined"] = total / (time.perf_counter() - t0)
        for start in range(0, total, _PIPE):  # leave nothing behind on a shared server
            await client.unlink(
                *(f"{prefix}:p{i}" for i in range(start, min(start + _PIPE, total)))
            )
        await client.unlink(key)
        return out
    finally:
        await client.aclose()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.drivers.ceiling")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--prefix", default="kewbench-ceiling")
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    coro = measure(args.url, args.n, args.prefix)
    if args.uvloop:
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print("@@RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
