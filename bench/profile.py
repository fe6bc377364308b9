"""Where kew spends a scenario's time: ``python -m bench.profile e2e_local --n 5000``.

Runs one scenario of the kew driver in this process under cProfile, on a throwaway
redis-server (or ``--redis-url``), then prints:

- the top functions by own time and by cumulative time (``--top``), and ``--pstats PATH`` for
  snakeviz / pstats;
- the Redis side from INFO commandstats: calls and server microseconds per task for every
  command (a script's inner commands show up under their own names).

For a sampling view of the same run without cProfile's overhead::

    py-spy record -o kew.svg -- .venv/bin/python -m bench.profile e2e_local --no-cprofile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import uuid
from typing import Any

import redis

from .drivers.base import Options
from .drivers.kew import KewDriver
from .scenarios import run_scenario
from .server import acquire


def _commandstats(url: str) -> dict[str, tuple[int, int]]:
    client: Any = redis.Redis.from_url(url)
    try:
        return {
            k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for k, v in client.info("commandstats").items()
        }
    finally:
        client.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("scenario", help="enqueue_seq, enqueue_gather, enqueue_batch, e2e_local, ...")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--redis-url", default=None)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--pstats", default=None, help="write the cProfile stats here")
    p.add_argument("--no-cprofile", action="store_true", help="run without cProfile (py-spy)")
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    with acquire(args.redis_url) as server:
        server.flush()
        before = _commandstats(server.url)
        opts = Options(server.url, f"p{uuid.uuid4().hex[:8]}")
        coro = run_scenario(KewDriver, opts, args.scenario, {"n": args.n, "budget": 5.0})
        prof = cProfile.Profile()
        if not args.no_cprofile:
            prof.enable()
        if args.uvloop:
            import uvloop

            result = uvloop.run(coro)
        else:
            result = asyncio.run(coro)
        prof.disable()
        after = _commandstats(server.url)
    print("result:", {k: v for k, v in result.items() if k != "options"})
    tasks = args.n + 50
    print(f"\nRedis commands per task ({tasks} tasks incl. warm-up), server time per task:")
    rows = []
    for cmd, (calls, usec) in after.items():
        c0, u0 = before.get(cmd, (0, 0))
        if cmd in ("info", "flushall") or calls - c0 <= 0:
            continue
        rows.append((cmd, (calls - c0) / tasks, (usec - u0) / tasks))
    for cmd, calls, usec in sorted(rows, key=lambda r: -r[2]):
        print(f"  {cmd:<22} {calls:8.2f} calls  {usec:8.1f} us")
    if args.no_cprofile:
        return
    if args.pstats:
        prof.dump_stats(args.pstats)
    for key in ("tottime", "cumtime"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(f"\n--- top {args.top} by {key} ---")
        print("\n".join(out.getvalue().splitlines()[6:]))


if __name__ == "__main__":
    main()
