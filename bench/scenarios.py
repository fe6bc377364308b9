"""The scenarios: one definition for every library (standard library only).

The catalogue (:data:`SCENARIOS`) tells the harness what to run and how to read the figures;
:func:`run_scenario` runs one of them inside a driver process, against the driver interface of
:mod:`bench.drivers.base`. All tasks are no-ops unless a scenario says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.drivers import tasks
from bench.drivers.base import Counter, Driver, Options, Unsupported, WorkerProcs, peak_rss_mib

__all__ = ["SCALE_QUEUES", "SCENARIOS", "Metric", "Scenario", "run_scenario"]


@dataclass(frozen=True)
class Metric:
    """One figure a scenario reports.

    Attributes:
        key: name in the result dict.
        label: column header.
        unit: printed after the value.
        higher_is_better: True for rates, False for latencies and memory.
    """

    key: str
    label: str
    unit: str
    higher_is_better: bool


RATE = Metric("rate", "throughput", "tasks/s", True)


@dataclass(frozen=True)
class Scenario:
    """One measurement, the same for every library.

    Attributes:
        id: name used on the command line, in JSON and in gates.toml.
        title: what a reader sees.
        n: (quick, full) number of tasks (tries for pickup).
        metrics: the figures it reports.
        workers: worker processes it starts (0: the worker runs in the measuring process).
        worker_scenario: True when it needs a running worker (so polling variants matter).
        timeout: seconds the harness lets one measurement run (quick, full).
        quick: part of the quick run (``python -m bench`` without ``--full``).
        cluster: measured twice per round by the harness, on the run's Redis and on a 3-master
            Redis Cluster it starts (figures ``single_rate``, ``cluster_rate``,
            ``cluster_ratio``); kew only (no peer runs on Redis Cluster).
    """

    id: str
    title: str
    n: tuple[int, int]
    metrics: tuple[Metric, ...]
    workers: int = 0
    worker_scenario: bool = True
    timeout: tuple[float, float] = (120.0, 300.0)
    quick: bool = True
    cluster: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "enqueue_seq",
        "sequential enqueue",
        (1000, 5000),
        (
            RATE,
            Metric("p50_ms", "enqueue p50", "ms", False),
            Metric("p99_ms", "enqueue p99", "ms", False),
        ),
        worker_scenario=False,
    ),
    Scenario(
        "enqueue_gather",
        "concurrent enqueue (gather)",
        (1000, 5000),
        (RATE,),
        worker_scenario=False,
    ),
    Scenario("enqueue_batch", "batch enqueue", (2000, 10000), (RATE,), worker_scenario=False),
    Scenario(
        "e2e_local",
        "end to end, worker in the same loop",
        (1000, 5000),
        (RATE, Metric("rss_mib", "peak RSS", "MiB", False)),
    ),
    Scenario("drain", "worker-only drain of prefilled tasks", (1000, 5000), (RATE,)),
    Scenario(
        "e2e_remote",
        "end to end, 1 worker process",
        (1000, 5000),
        (RATE,),
        workers=1,
        quick=False,
    ),
    Scenario(
        "e2e_4proc",
        "end to end, 4 worker processes",
        (1000, 5000),
        (RATE,),
        workers=4,
        quick=False,
    ),
    Scenario(
        "pickup",
        "pickup latency of an idle worker",
        (100, 200),
        (
            Metric("p50_ms", "pickup p50", "ms", False),
            Metric("p99_ms", "pickup p99", "ms", False),
        ),
        timeout=(90.0, 240.0),
    ),
    Scenario(
        "crash",
        "crash: 20 ms tasks, 2 worker processes, one SIGKILLed",
        (1000, 2000),
        (
            Metric("lost", "lost", "tasks", False),
            Metric("completed_twice", "completed twice", "tasks", False),
            Metric("restarted", "started twice", "tasks", False),
            Metric("recovery_s", "all done after kill", "s", False),
        ),
        workers=2,
        timeout=(120.0, 180.0),
    ),
    Scenario(
        "scale",
        "8 queues x 4 worker processes",
        (20000, 100000),  # 1 Redis: about 1.5 s / 7 s here; the cluster: about 5 s / 20 s
        (
            Metric("single_rate", "1 Redis", "tasks/s", True),
            Metric("cluster_rate", "3-master Redis Cluster", "tasks/s", True),
            Metric("cluster_ratio", "cluster / 1 Redis", "x", True),
        ),
        workers=4,
        timeout=(150.0, 300.0),
        quick=False,
        cluster=True,
    ),
)

# The scale scenario's queues. kew keeps every key of a queue in the hash slot of its name
# (``<ns>:{<queue>}:...``), and ``redis-cli --cluster create`` gives 3 masters the slots
# 0-5460, 5461-10922 and 10923-16383, so these names land 3 / 3 / 2 on the masters (CRC16 slot
# q0 3387, q4 3519, q8 3123 | q1 7450, q5 7582, q9 7186 | q2 11641, q3 15704), as evenly as 8
# queues go on 3 masters (q0..q7 would put 4 on the third). The harness checks this against the
# cluster it starts (``master_of``) and records the spread with the figures.
SCALE_QUEUES: tuple[str, ...] = ("q0", "q1", "q2", "q3", "q4", "q5", "q8", "q9")
SCALE_CHUNK = 100  # tasks per submit_tasks call; one call per queue at a time, gathered

BY_ID = {s.id: s for s in SCENARIOS}

# -- helpers ------------------------------------------------------------------------------------

TIMEOUT = 120.0  # seconds any single wait inside a scenario may take


_run_tag = ""  # the queue name: task ids are unique per measurement, even on a shared server


def _keys(prefix: str, n: int) -> list[str]:
    return [f"{_run_tag}-{prefix}{i}" for i in range(n)]


def _percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def _prefill(d: Driver, keys: Sequence[str], task: str) -> None:
    """Put tasks in the queue as fast as the library allows (batch API, else gathers)."""
    try:
        await d.submit_batch(keys, task)
        return
    except Unsupported:
        pass
    for i in range(0, len(keys), 500):
        await asyncio.gather(*(d.submit(k, task) for k in keys[i : i + 500]))


async def _closing(d: Driver, body: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await body()
    finally:
        async with asyncio.timeout(30.0):  # not wait_for: anyio-based drivers must close in
            await d.close()  # the task that connected them


# -- the scenarios ---------------------------------------------------------------------------


PAIR_BLOCK = 250  # submits per block when the EVALSHA ceiling is measured alongside


async def enqueue_seq(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """``n`` submits one after another; throughput and per-call latency percentiles.

    With ``p["paired_ceiling"]`` (kew's environments, whose redis-py the ceiling measures), the
    submits go in blocks of ``PAIR_BLOCK`` alternating with as many EVALSHAs of the ceiling's
    trivial script, and ``evalsha_paired`` is that ceiling's rate over the same seconds; the
    throughput counts the submit blocks only.
    """
    d = make()
    await d.connect("producer")
    paired = None
    if p.get("paired_ceiling"):
        from bench.drivers.ceiling import PairedEvalsha

        paired = await PairedEvalsha.open(d.opts.url, f"kewbench-{d.opts.queue}")

    async def body() -> dict[str, Any]:
        for k in _keys("w", p["warmup"]):
            await d.submit(k, "noop")
        pc = time.perf_counter
        lat: list[float] = []
        keys = _keys("t", p["n"])
        block = PAIR_BLOCK if paired is not None else len(keys)
        dt = 0.0
        for start in range(0, len(keys), block):
            t0 = pc()
            for k in keys[start : start + block]:
                s = pc()
                await d.submit(k, "noop")
                lat.append(pc() - s)
            dt += pc() - t0
            if paired is not None:
                await paired.block(min(block, len(keys) - start))
        out = {
            "rate": p["n"] / dt,
            "p50_ms": _percentile(lat, 50) * 1e3,
            "p99_ms": _percentile(lat, 99) * 1e3,
            "seconds": dt,
        }
        if paired is not None:
            out["evalsha_paired"] = paired.rate
            out["commands_excluded"] = paired.commands
        return out

    try:
        return await _closing(d, body)
    finally:
        if paired is not None:
            await paired.aclose()


async def enqueue_gather(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """``n`` submits at once with ``asyncio.gather``."""
    d = make()
    await d.connect("producer")

    async def body() -> dict[str, Any]:
        for k in _keys("w", p["warmup"]):
            await d.submit(k, "noop")
        keys = _keys("t", p["n"])
        t0 = time.perf_counter()
        await asyncio.gather(*(d.submit(k, "noop") for k in keys))
        dt = time.perf_counter() - t0
        return {"rate": p["n"] / dt, "seconds": dt}

    return await _closing(d, body)


async def enqueue_batch(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """``n`` tasks through the library's batch API."""
    d = make()
    await d.connect("producer")

    async def body() -> dict[str, Any]:
        try:
            await d.submit_batch(_keys("w", p["warmup"]), "noop")
        except Unsupported as exc:
            return {"unsupported": str(exc)}
        keys = _keys("t", p["n"])
        t0 = time.perf_counter()
        await d.submit_batch(keys, "noop")
        dt = time.perf_counter() - t0
        return {"rate": p["n"] / dt, "seconds": dt}

    return await _closing(d, body)


async def e2e_local(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """Worker in this loop; submit ``n`` one by one; until every result is stored."""
    d = make()
    done = Counter()
    await d.connect("both")
    await d.start_worker(done.inc)

    async def body() -> dict[str, Any]:
        warm = p["warmup"]
        for k in _keys("w", warm):
            await d.submit(k, "noop")
        await done.wait_for(warm, TIMEOUT)
        t0 = time.perf_counter()
        for k in _keys("t", p["n"]):
            await d.submit(k, "noop")
        await done.wait_for(warm + p["n"], TIMEOUT)
        dt = time.perf_counter() - t0
        return {"rate": p["n"] / dt, "seconds": dt, "rss_mib": peak_rss_mib()}

    return await _closing(d, body)


async def drain(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """``n`` tasks prefilled, then a worker starts; until every result is stored."""
    producer = make()
    await producer.connect("producer")
    await _closing(producer, lambda: _prefill_result(producer, _keys("t", p["n"])))
    d = make()
    done = Counter()
    await d.connect("worker")

    async def body() -> dict[str, Any]:
        t0 = time.perf_counter()
        await d.start_worker(done.inc)
        await done.wait_for(p["n"], TIMEOUT)
        dt = time.perf_counter() - t0
        return {"rate": p["n"] / dt, "seconds": dt}

    return await _closing(d, body)


async def _prefill_result(d: Driver, keys: Sequence[str]) -> dict[str, Any]:
    await _prefill(d, keys, "noop")
    return {}


async def e2e_processes(
    make: Callable[[], Driver], p: dict[str, Any], opts: Options
) -> dict[str, Any]:
    """Submit ``n`` one by one here; ``workers`` worker processes run them."""
    d = make()
    await d.connect("producer")
    procs = WorkerProcs(opts, p["workers"])

    async def body() -> dict[str, Any]:
        await procs.start()
        try:
            warm = p["warmup"]
            for k in _keys("w", warm):
                await d.submit(k, "noop")
            await procs.done.wait_for(warm, TIMEOUT)
            t0 = time.perf_counter()
            for k in _keys("t", p["n"]):
                await d.submit(k, "noop")
            await procs.done.wait_for(warm + p["n"], TIMEOUT)
            dt = time.perf_counter() - t0
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; workers said: {procs.stderr()}") from None
        finally:
            await procs.stop()
        rss = [e["rss_mib"] for e in procs.exits]
        return {"rate": p["n"] / dt, "seconds": dt, "worker_rss_mib": max(rss, default=None)}

    return await _closing(d, body)


async def _until_done(done: Counter, target: int, timeout: float, stall: float) -> None:
    """Wait until ``done`` reaches ``target``; TimeoutError after ``timeout`` seconds, or once
    ``stall`` seconds pass without one more task finishing (a hang costs a minute, not all of
    ``timeout``)."""
    start = last_change = time.monotonic()
    seen = done.count
    while done.count < target:
        now = time.monotonic()
        if done.count != seen:
            seen, last_change = done.count, now
        if now - start > timeout or now - last_change > stall:
            why = f"none for the last {stall:.0f} s" if now - start <= timeout else "timed out"
            raise TimeoutError(
                f"{done.count} of {target} tasks finished in {now - start:.0f} s ({why})"
            )
        with contextlib.suppress(TimeoutError):
            await done.wait_for(target, 0.5)


def _digest(stderr: str) -> str:
    """Worker stderr on one line: repeated kinds of lines counted, not repeated."""
    kinds: Tally[str] = Tally()
    for line in stderr.replace(" | ", "\n").splitlines():
        line = line.strip()
        if "no signing_key" in line or not line:
            continue
        kinds[re.sub(r"\b\S*-[a-z]\d+\b", "<task>", line)] += 1
    return "; ".join(f"{k} (x{n})" if n > 1 else k for k, n in kinds.most_common(6)) or "nothing"


async def scale(make: Callable[[], Driver], p: dict[str, Any], opts: Options) -> dict[str, Any]:
    """``n`` no-op tasks round-robin over the queues of ``opts.queues``, consumed by
    ``workers`` processes that each consume every queue; from the first submit until every
    result is stored.

    The producer sends the tasks in rounds: per round one ``submit_batch_to`` of
    :data:`SCALE_CHUNK` tasks to each queue, the queues' calls gathered (they go to different
    masters on a cluster); the workers start on the first round while the next ones go out.
    """
    d = make()
    await d.connect("producer")
    procs = WorkerProcs(opts, p["workers"])
    queues = opts.queues

    async def submit(keys: list[str]) -> None:
        per_queue = [keys[i :: len(queues)] for i in range(len(queues))]  # task i -> queue i % 8
        for start in range(0, max(len(k) for k in per_queue), SCALE_CHUNK):
            await asyncio.gather(
                *(
                    d.submit_batch_to(q, ks[start : start + SCALE_CHUNK], "noop")
                    for q, ks in zip(queues, per_queue, strict=True)
                    if ks[start : start + SCALE_CHUNK]
                )
            )

    async def body() -> dict[str, Any]:
        await procs.start()
        try:
            warm = p["warmup"]
            try:
                await submit(_keys("w", warm))
            except Unsupported as exc:
                return {"unsupported": str(exc)}
            await procs.done.wait_for(warm, TIMEOUT)
            t0 = time.perf_counter()
            await submit(_keys("t", p["n"]))
            t_submitted = time.perf_counter() - t0
            await _until_done(procs.done, warm + p["n"], p["wait"], p["stall"])
            dt = time.perf_counter() - t0
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; workers said: {_digest(procs.stderr(None))}") from None
        finally:
            await procs.stop()
        rss = [e["rss_mib"] for e in procs.exits]
        return {
            "rate": p["n"] / dt,
            "seconds": dt,
            "submit_s": t_submitted,
            "queues": list(queues),
            "worker_rss_mib": max(rss, default=None),
        }

    return await _closing(d, body)


async def pickup(make: Callable[[], Driver], p: dict[str, Any]) -> dict[str, Any]:
    """An idle worker in this loop; time from calling submit to the task starting.

    Between tries the producer waits a random 2-20 ms, plus a random fraction of one poll
    period for libraries that poll, so submits land at random phases of the poll loop.
    """
    d = make()
    done = Counter()
    await d.connect("both")
    await d.start_worker(done.inc)
    rng = random.Random(5)

    async def one(key: str) -> float:
        fut = tasks.pickup_waiter(key)
        target = done.count + 1
        t0 = time.perf_counter()
        await d.submit(key, "pickup")
        started = await asyncio.wait_for(fut, TIMEOUT)
        await done.wait_for(target, TIMEOUT)
        return started - t0

    async def body() -> dict[str, Any]:
        for k in _keys("w", 3):
            await one(k)
        samples: list[float] = []
        t_start = time.monotonic()
        for k in _keys("t", p["n"]):
            if len(samples) >= p["min_tries"] and time.monotonic() - t_start > p["budget"]:
                break
            gap = rng.uniform(0.002, 0.02) + rng.uniform(0.0, d.poll_interval)
            await asyncio.sleep(gap)
            samples.append(await one(k))
        return {
            "p50_ms": _percentile(samples, 50) * 1e3,
            "p99_ms": _percentile(samples, 99) * 1e3,
            "tries": len(samples),
        }

    return await _closing(d, body)


def _read_records(
    record_dir: Path,
) -> tuple[Tally[str], Tally[str], dict[str, dict[str, int]]]:
    """(starts per task, finishes per task, {worker: {"started": a, "finished": b}})."""
    started: Tally[str] = Tally()
    finished: Tally[str] = Tally()
    per_worker: dict[str, dict[str, int]] = {}
    for f in sorted(record_dir.glob("w*.log")):
        lines = f.read_text().splitlines()
        fin = sum(1 for x in lines if x.startswith("F "))
        per_worker[f.stem] = {"started": len(lines) - fin, "finished": fin}
        for line in lines:
            kind, _, key = line.partition(" ")
            (started if kind == "S" else finished)[key] += 1
    return started, finished, per_worker


async def crash(make: Callable[[], Driver], p: dict[str, Any], opts: Options) -> dict[str, Any]:
    """``n`` tasks of 20 ms on 2 worker processes; SIGKILL one once half are done; count."""
    d = make()
    await d.connect("producer")
    record_dir = Path(tempfile.mkdtemp(prefix="kew-bench-crash-"))
    procs = WorkerProcs(opts, 2, record_dir=record_dir)
    n = p["n"]

    async def body() -> dict[str, Any]:
        await procs.start()
        try:
            await _prefill(d, _keys("t", n), "sleep20")
            await procs.done.wait_for(n // 2, TIMEOUT)
            victim = procs.busiest()
            procs.kill(victim)
            t_kill = time.monotonic()
            finished: Tally[str] = Tally()
            while time.monotonic() - t_kill < p["window"]:
                _, finished, _ = _read_records(record_dir)
                if len(finished) >= n:
                    break
                await asyncio.sleep(0.05)
            t_all = time.monotonic()
        finally:
            await procs.stop()
        started, finished, per_worker = _read_records(record_dir)
        lost = n - len(finished)
        return {
            "lost": lost,
            "completed_twice": sum(1 for c in finished.values() if c > 1),
            "restarted": sum(1 for c in started.values() if c > 1),
            "recovery_s": (t_all - t_kill) if lost == 0 else None,
            "window_s": p["window"],
            "recovery_setting_s": opts.recovery,
            "by_worker": per_worker,
            "killed": f"w{victim}",
        }

    try:
        return await _closing(d, body)
    finally:
        shutil.rmtree(record_dir, ignore_errors=True)


async def run_scenario(
    driver_cls: type[Driver], opts: Options, scenario: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Run one scenario in this process and return its figures (plus ``wall_s``)."""

    global _run_tag
    _run_tag = opts.queue
    if scenario == "scale":
        opts = replace(opts, queues=SCALE_QUEUES)

    def make() -> Driver:
        return driver_cls(opts)

    p = {"warmup": 50, "workers": 1, "min_tries": 20, "budget": 10.0, "window": 20.0, **params}
    t0 = time.perf_counter()
    if scenario in ("e2e_remote", "e2e_4proc"):
        result = await e2e_processes(make, p, opts)
    elif scenario == "crash":
        result = await crash(make, p, opts)
    elif scenario == "scale":
        result = await scale(make, {"wait": TIMEOUT, "stall": 60.0, **p}, opts)
    else:
        fn = {
            "enqueue_seq": enqueue_seq,
            "enqueue_gather": enqueue_gather,
            "enqueue_batch": enqueue_batch,
            "e2e_local": e2e_local,
            "drain": drain,
            "pickup": pickup,
        }[scenario]
        result = await fn(make, p)
    result["wall_s"] = time.perf_counter() - t0
    result["n"] = p["n"]
    return result
