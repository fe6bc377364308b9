"""The driver interface, the driver command line and worker subprocesses (standard library only).

A driver adapts one library to five calls: ``connect(role)``, ``submit(key, task)``,
``submit_batch(keys, task)``, ``start_worker(on_done)`` and ``close()`` (plus
``submit_batch_to(queue, keys, task)`` for the scale scenario's several queues, kew only).
Every scenario in :mod:`bench.scenarios` is written once against these calls, so each library
runs exactly the same measurement code.

Command line (run inside the library's own environment, from the repository root)::

    python -m bench.drivers.<lib> info
    python -m bench.drivers.<lib> run --scenario enqueue_seq --url redis://... --n 5000
    python -m bench.drivers.<lib> worker --url redis://... --queue q1 --task noop

``run`` prints one line ``@@RESULT <json>``. ``worker`` prints ``@@READY`` once its worker
consumes, ``@@DONE <count>`` while tasks finish (results stored), ``@@EXIT <json>`` on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import tasks

__all__ = [
    "Counter",
    "Driver",
    "Options",
    "Unsupported",
    "WorkerProcs",
    "main",
    "peak_rss_mib",
]

RESULT_MARK = "@@RESULT "
_uvloop = False  # set by main(); worker subprocesses get the same loop
_REPORT_EVERY = 0.005  # seconds between a worker process's @@DONE lines


class Unsupported(Exception):
    """The library has no API for this (e.g. no batch enqueue); the reason is the message."""


@dataclass
class Options:
    """What every driver is told.

    Attributes:
        url: the Redis URL.
        queue: queue name for this measurement (fresh per measurement).
        concurrency: tasks a worker runs at once (50 for every library).
        variant: library-specific flavour (e.g. arq's ``fast`` polls every 10 ms).
        recovery: seconds after which a dead worker's tasks may run elsewhere (lease,
            visibility or stall timeout); 0 keeps the library's default.
        queues: several queues, all consumed by every worker process of this measurement (the
            scale scenario). Their names are fixed (chosen for how they spread over a cluster's
            hash slots), so ``queue`` then only tags the measurement (kew puts it in its
            namespace). Empty: the one queue ``queue``.
    """

    url: str
    queue: str
    concurrency: int = 50
    variant: str = ""
    recovery: float = 0.0
    queues: tuple[str, ...] = ()


class Driver:
    """One library behind the interface the scenarios use. Subclasses set the class attributes.

    Attributes:
        library: distribution name (``arq``).
        poll_interval: seconds between polls of an idle worker (0 when it blocks on Redis).
    """

    library = "?"
    poll_interval = 0.0

    def __init__(self, opts: Options) -> None:
        self.opts = opts

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import version

        return version(cls.library)

    async def connect(self, role: str) -> None:
        """Connect. ``role`` is ``producer`` (submit only), ``worker`` or ``both``."""
        raise NotImplementedError

    async def submit(self, key: str, task: str) -> None:
        """Enqueue task ``task`` (a name in :data:`tasks.TASKS`) with id/argument ``key``."""
        raise NotImplementedError

    async def submit_batch(self, keys: Sequence[str], task: str) -> None:
        """Enqueue many tasks through the library's batch API."""
        raise Unsupported("no batch enqueue API")

    async def submit_batch_to(self, queue: str, keys: Sequence[str], task: str) -> None:
        """Enqueue many tasks into ``queue``, one of ``opts.queues`` (batch API)."""
        raise Unsupported("no several queues per process in this driver")

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        """Start consuming in this event loop (every queue of ``opts.queues`` when set); call
        ``on_done()`` once per task whose result is stored."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop the worker (if any) and close connections."""
        raise NotImplementedError


class Counter:
    """Counts finished tasks; lets a scenario wait until a number is reached."""

    def __init__(self) -> None:
        self.count = 0
        self._target = -1
        self._event = asyncio.Event()

    def inc(self) -> None:
        self.count += 1
        if self.count == self._target:
            self._event.set()

    def add(self, n: int) -> None:
        self.count += n
        if self._target >= 0 and self.count >= self._target:
            self._event.set()

    async def wait_for(self, target: int, timeout: float) -> None:
        """Return once ``count >= target``; TimeoutError after ``timeout`` seconds."""
        if self.count >= target:
            return
        self._target = target
        self._event.clear()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.count} of {target} tasks finished in {timeout} s") from None
        finally:
            self._target = -1


def peak_rss_mib() -> float:
    """Peak resident set size of this process since it exec'd, MiB (``VmHWM``).

    Not ``ru_maxrss``: on Linux it carries over the peak of the forking parent (the harness)
    across ``exec``, so every driver would report at least the harness's size.
    """
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class WorkerProcs:
    """Worker subprocesses of the same library (same interpreter, same environment).

    Args:
        opts: the driver options (URL, queue...).
        count: how many processes.
        task: the task name they run (only matters for recording).
        record_dir: when set, process i records sleep20's lines in ``record_dir/w<i>.log``.
    """

    def __init__(self, opts: Options, count: int, record_dir: Path | None = None) -> None:
        self.opts = opts
        self.count = count
        self.record_dir = record_dir
        self.done = Counter()
        self.exits: list[dict[str, Any]] = []
        self._procs: list[asyncio.subprocess.Process] = []
        self._readers: list[asyncio.Task[None]] = []
        self._ready: list[asyncio.Future[None]] = []
        self._last: list[int] = []
        self._logdir = Path(tempfile.mkdtemp(prefix="kew-bench-w-"))

    def _argv(self, i: int) -> list[str]:
        module = sys.modules["__main__"].__spec__.name  # type: ignore[union-attr]
        o = self.opts
        argv = [sys.executable, "-m", module, "worker", "--url", o.url, "--queue", o.queue]
        argv += ["--concurrency", str(o.concurrency), "--variant", o.variant]
        argv += ["--recovery", str(o.recovery)]
        if o.queues:
            argv += ["--queues", ",".join(o.queues)]
        if _uvloop:
            argv.append("--uvloop")
        if self.record_dir is not None:
            argv += ["--record", str(self.record_dir / f"w{i}.log")]
        return argv

    async def start(self, timeout: float = 60.0) -> None:
        """Spawn the processes and wait until each one consumes."""
        loop = asyncio.get_running_loop()
        for i in range(self.count):
            err = open(self._logdir / f"w{i}.err", "wb")  # noqa: SIM115 - kept for the child
            proc = await asyncio.create_subprocess_exec(
                *self._argv(i),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                preexec_fn=_die_with_parent,
            )
            err.close()
            self._procs.append(proc)
            self._ready.append(loop.create_future())
            self._last.append(0)
            self._readers.append(asyncio.create_task(self._read(i, proc)))
        try:
            await asyncio.wait_for(asyncio.gather(*self._ready), timeout)
        except TimeoutError:
            msg = f"worker processes not ready in {timeout} s: {self.stderr()}"
            raise RuntimeError(msg) from None

    async def _read(self, i: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("@@DONE "):
                n = int(line[7:])
                self.done.add(n - self._last[i])
                self._last[i] = n
            elif line == "@@READY":
                if not self._ready[i].done():
                    self._ready[i].set_result(None)
            elif line.startswith("@@EXIT "):
                self.exits.append(json.loads(line[7:]))
        if not self._ready[i].done():
            self._ready[i].set_exception(RuntimeError(f"worker {i} exited: {self.stderr()}"))

    def stderr(self, tail: int | None = 1500) -> str:
        """The last ``tail`` characters (None: all) of every worker's stderr (for errors)."""
        parts = []
        for f in sorted(self._logdir.glob("*.err")):
            text = f.read_text(errors="replace").strip()
            if text:
                parts.append(f"[{f.stem}] {text if tail is None else text[-tail:]}")
        return " | ".join(parts) or "(no stderr)"

    def busiest(self) -> int:
        """Index of the worker that has finished the most tasks so far."""
        return max(range(self.count), key=lambda i: self._last[i])

    def kill(self, i: int) -> None:
        """SIGKILL worker ``i`` (the crash scenario)."""
        self._procs[i].kill()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every live worker, SIGKILL those still alive after ``timeout`` seconds."""
        for p in self._procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + timeout
        for p in self._procs:
            try:
                await asyncio.wait_for(p.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        for r in self._readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(r, 2.0)
        shutil.rmtree(self._logdir, ignore_errors=True)  # stderr() is read before stopping


# -- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.drivers.<lib>")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    for name in ("run", "worker"):
        s = sub.add_parser(name)
        s.add_argument("--url", required=True)
        s.add_argument("--queue", default="bench")
        s.add_argument("--concurrency", type=int, default=50)
        s.add_argument("--variant", default="")
        s.add_argument("--recovery", type=float, default=0.0)
        s.add_argument("--queues", default="", help="comma-separated queues (scale scenario)")
        s.add_argument("--uvloop", action="store_true")
    run = sub.choices["run"]
    run.add_argument("--scenario", required=True)
    run.add_argument("--params", default="{}", help="JSON object of scenario parameters")
    sub.choices["worker"].add_argument("--record", default=None)
    return p


def _raise_nofile() -> None:
    """Let a gather of thousands of submits open as many sockets as the library wants."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def _event_loop_runner(use_uvloop: bool) -> Callable[[Any], Any]:
    if use_uvloop:
        import uvloop

        return lambda coro: uvloop.run(coro)
    return asyncio.run


async def _worker(driver_cls: type[Driver], opts: Options) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done = Counter()
    driver = driver_cls(opts)
    await driver.connect("worker")
    await driver.start_worker(done.inc)
    out = sys.stdout
    out.write("@@READY\n")
    out.flush()
    last = 0
    while not stop.is_set():
        if done.count != last:
            last = done.count
            out.write(f"@@DONE {last}\n")
            out.flush()
        await asyncio.sleep(_REPORT_EVERY)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10.0):  # same task as connect(): anyio-based drivers need it
            await driver.close()
    out.write(f"@@DONE {done.count}\n@@EXIT {json.dumps({'rss_mib': peak_rss_mib()})}\n")
    out.flush()
    os._exit(0)


def main(driver_cls: type[Driver]) -> None:
    """Entry point of ``python -m bench.drivers.<lib>``."""
    args = _parser().parse_args()
    if args.cmd == "info":
        print(json.dumps({"library": driver_cls.library, "version": driver_cls.version()}))
        return
    global _uvloop
    _uvloop = args.uvloop
    _raise_nofile()
    queues = tuple(q for q in args.queues.split(",") if q)
    opts = Options(args.url, args.queue, args.concurrency, args.variant, args.recovery, queues)
    run = _event_loop_runner(args.uvloop)
    if args.cmd == "worker":
        if args.record:
            tasks.open_record(args.record)
        run(_worker(driver_cls, opts))
        return
    from bench.scenarios import run_scenario

    async def measure() -> None:
        result = await run_scenario(driver_cls, opts, args.scenario, json.loads(args.params))
        result.setdefault("options", asdict(opts))
        print(RESULT_MARK + json.dumps(result), flush=True)
        os._exit(0)  # the figures are out: skip tearing down what a library left running

    run(measure())
