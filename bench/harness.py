"""Runs the plan: rounds x scenarios x libraries, each measurement in a fresh process.

Within a round every scenario runs for each library in turn (A B C, A B C...), on the same
server, flushed between measurements when the run owns it; the machine's ceilings are
measured in every round too. A library whose environment cannot be made is skipped with the
reason; a measurement that fails or times out is recorded as such and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .envs import ROOT, Env, EnvError, env_for
from .peers import Library
from .scenarios import BY_ID, Scenario
from .server import Server, redis_benchmark

__all__ = ["Plan", "run_plan"]

_MARK = "@@RESULT "


@dataclass
class Plan:
    """What one ``python -m bench`` run does.

    Attributes:
        libraries: the libraries, in the order they run within a round.
        scenarios: the scenarios, in order.
        rounds: how many rounds (>= 1; 3 or more for the ratios to mean something).
        full: full sizes (the issue's numbers) instead of quick ones.
        uvloop: run every library on uvloop instead of asyncio's default loop.
        scale: multiplies every task count (for trying things out quickly).
        recovery: seconds the crash scenario gives each library to hand a dead worker's tasks
            to a live one (lease / visibility / stall timeout).
        crash_rounds: rounds in which the crash scenario runs (it is a correctness check).
        crash_peers: run the crash scenario for the peers too (always with --full).
    """

    libraries: list[Library]
    scenarios: list[Scenario]
    rounds: int = 3
    full: bool = False
    uvloop: bool = False
    scale: float = 1.0
    recovery: float = 2.0
    crash_rounds: int = 1
    crash_peers: bool = False
    concurrency: int = 50
    envs: dict[str, Env] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def size(self, sc: Scenario) -> int:
        return max(1, round(sc.n[1 if self.full else 0] * self.scale))

    def params(self, sc: Scenario) -> dict[str, Any]:
        p: dict[str, Any] = {"n": self.size(sc), "workers": sc.workers or 1}
        if sc.id == "pickup":
            p["budget"] = 40.0 if self.full else 1.0
            p["min_tries"] = 50 if self.full else 8
        if sc.id == "crash":
            p["window"] = max(20.0, 10 * self.recovery) + (10.0 if self.full else 0.0)
        if sc.id == "drain":
            p["warmup"] = 0
        return p


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the workers it started
    with contextlib.suppress(Exception):
        proc.wait(5)


def _run_process(argv: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Run a driver; return (its @@RESULT dict or None, error text)."""
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None, f"timed out after {timeout:.0f} s"
    finally:
        if proc.returncode is None:
            _kill_group(proc)
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :]), ""
    text = err.decode(errors="replace").strip().splitlines()
    return None, " / ".join(text[-4:]) or f"exit code {proc.returncode}"


def _commands(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v > 0}


class _Runner:
    def __init__(self, plan: Plan, server: Server, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.server = server
        self.log = log
        self.records: list[dict[str, Any]] = []
        self.ceilings: list[dict[str, Any]] = []
        self.unsupported: set[tuple[str, str]] = set()

    def measure(self, lib: Library, sc: Scenario, rnd: int) -> None:
        plan = self.plan
        env = plan.envs[lib.name]
        params = plan.params(sc)
        queue = f"b{uuid.uuid4().hex[:10]}"
        argv = [env.python, "-m", lib.module, "run", "--url", self.server.url, "--queue", queue]
        argv += ["--scenario", sc.id, "--params", json.dumps(params)]
        argv += ["--concurrency", str(plan.concurrency), "--variant", lib.variant]
        if sc.id == "crash":
            argv += ["--recovery", str(plan.recovery)]
        if plan.uvloop:
            argv.append("--uvloop")
        self.server.flush()
        before = self.server.command_calls()
        t0 = time.monotonic()
        result, error = _run_process(argv, sc.timeout[1 if plan.full else 0])
        wall = time.monotonic() - t0
        cmds = _commands(before, self.server.command_calls())
        rec: dict[str, Any] = {
            "library": lib.name,
            "scenario": sc.id,
            "round": rnd,
            "params": params,
            "result": result,
            "error": error or None,
            "wall_s": wall,
            "commands": cmds,
        }
        if result is not None and "unsupported" in result:
            self.unsupported.add((lib.name, sc.id))
        self.records.append(rec)
        self.log(_describe(rec))

    def ceiling(self, rnd: int) -> None:
        plan = self.plan
        row: dict[str, Any] = {"round": rnd}
        n = 20000 if plan.full else 5000
        envs = {"kew": plan.envs.get("kew")}
        if "kew-redis5" in plan.envs:
            envs["kew-redis5"] = plan.envs["kew-redis5"]
        for name, env in envs.items():
            if env is None:
                continue
            self.server.flush()
            argv = [env.python, "-m", "bench.drivers.ceiling", "--url", self.server.url]
            argv += ["--n", str(n)] + (["--uvloop"] if plan.uvloop else [])
            result, error = _run_process(argv, 120)
            row[name] = result if result is not None else {"error": error}
        self.server.flush()
        row["redis_benchmark_c1"] = redis_benchmark(self.server, 1, n)
        row["redis_benchmark_c50"] = redis_benchmark(self.server, 50, n * 5)
        self.ceilings.append(row)
        self.log(f"round {rnd}: ceilings {_brief_ceiling(row)}")

    def applies(self, lib: Library, sc: Scenario, rnd: int) -> bool:
        if lib.worker_only and not sc.worker_scenario:
            return False
        if sc.id == "crash" and (
            rnd > self.plan.crash_rounds or not (lib.is_kew or self.plan.crash_peers)
        ):
            return False
        return (lib.name, sc.id) not in self.unsupported


def _brief_ceiling(row: dict[str, Any]) -> str:
    k = row.get("kew") or {}
    parts = []
    if "evalsha_seq" in k:
        parts.append(f"EVALSHA {k['evalsha_seq']:,.0f}/s")
        parts.append(f"pipelined SET {k['set_pipelined']:,.0f}/s")
    for c in ("c1", "c50"):
        rb = row.get(f"redis_benchmark_{c}") or {}
        if "set" in rb:
            parts.append(f"redis-benchmark {c} SET {rb['set']:,.0f}/s")
    return ", ".join(parts) or "unavailable"


def _describe(rec: dict[str, Any]) -> str:
    head = f"round {rec['round']}: {rec['scenario']:<15} {rec['library']:<11}"
    r = rec["result"]
    if r is None:
        return f"{head} FAILED: {rec['error']}"
    if "unsupported" in r:
        return f"{head} n/a ({r['unsupported']})"
    sc = BY_ID[rec["scenario"]]
    figs = []
    for m in sc.metrics:
        v = r.get(m.key)
        figs.append(f"{m.label} {'-' if v is None else f'{v:,.2f}'} {m.unit}")
    return f"{head} " + ", ".join(figs) + f"  [{rec['wall_s']:.1f} s]"


def prepare_envs(plan: Plan, log: Callable[[str], None]) -> None:
    """Make (or find) each library's environment; skip the ones that cannot install."""
    kept: list[Library] = []
    for lib in plan.libraries:
        try:
            t0 = time.monotonic()
            plan.envs[lib.name] = env_for(lib, plan.uvloop)
            versions = ", ".join(f"{k} {v}" for k, v in plan.envs[lib.name].versions.items())
            log(f"env {lib.name}: {versions} ({time.monotonic() - t0:.1f} s)")
            kept.append(lib)
        except EnvError as exc:
            plan.skipped[lib.name] = str(exc)
            log(f"env {lib.name}: SKIPPED, cannot install: {exc}")
    plan.libraries = kept


def run_plan(plan: Plan, server: Server, log: Callable[[str], None]) -> dict[str, Any]:
    """Run every round and return the raw run document (what ``--json`` writes)."""
    if plan.uvloop and "kew" in plan.envs:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise SystemExit(
                "--uvloop needs uvloop in the workspace environment: "
                "uv run --group bench python -m bench --uvloop"
            ) from None
    runner = _Runner(plan, server, log)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    for rnd in range(1, plan.rounds + 1):
        runner.ceiling(rnd)
        for sc in plan.scenarios:
            for lib in plan.libraries:
                if runner.applies(lib, sc, rnd):
                    runner.measure(lib, sc, rnd)
    return {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": time.monotonic() - t0,
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": _machine(),
        "server": {"describe": server.describe, "version": server.version, "owned": server.owned},
        "plan": {
            "rounds": plan.rounds,
            "mode": "full" if plan.full else "quick",
            "loop": "uvloop" if plan.uvloop else "asyncio",
            "concurrency": plan.concurrency,
            "scale": plan.scale,
            "recovery_s": plan.recovery,
            "sizes": {sc.id: plan.size(sc) for sc in plan.scenarios},
        },
        "libraries": {
            lib.name: {"versions": plan.envs[lib.name].versions, "note": lib.note}
            for lib in plan.libraries
        },
        "skipped": plan.skipped,
        "ceilings": runner.ceilings,
        "records": runner.records,
    }
