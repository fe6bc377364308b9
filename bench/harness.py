"""Runs the plan: rounds x scenarios x libraries, each measurement in a fresh process.

Within a round every scenario runs for each library in turn (A B C, A B C...), on the same
server, flushed between measurements when the run owns it; the machine's ceilings are
measured in every round too. A library whose environment cannot be made is skipped with the
reason; a measurement that fails or times out is recorded as such and the run goes on.

A scenario marked ``cluster`` (scale) runs twice per measurement, on the run's Redis and on a
3-master Redis Cluster started for it and torn down after it, in alternating order from round
to round; both figures and their ratio go into one record.
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

from kew_testkit import RedisServerError

from .envs import ROOT, Env, EnvError, env_for
from .peers import Library
from .scenarios import BY_ID, SCALE_QUEUES, Scenario
from .server import ClusterServer, Server, redis_benchmark, start_cluster

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
            p["budget"] = 40.0 if self.full else 2.0
            p["min_tries"] = 50 if self.full else 8
        if sc.id == "crash":
            p["window"] = max(20.0, 10 * self.recovery) + (10.0 if self.full else 0.0)
        if sc.id == "drain":
            p["warmup"] = 0
        if sc.cluster:
            p["wait"] = 200.0 if self.full else 90.0  # seconds from the last submit to the end
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
        "commit": _commit(),
    }


def _commit() -> str:
    """The checkout's commit, ``+dirty`` when it has uncommitted changes ("?" outside git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "?"
    if head.returncode != 0:
        return "?"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


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

    def _run(
        self, lib: Library, sc: Scenario, params: dict[str, Any], server: Server | ClusterServer
    ) -> tuple[dict[str, Any] | None, str, float, dict[str, int]]:
        """One driver process on ``server``: (result or None, error, wall seconds, commands)."""
        plan = self.plan
        env = plan.envs[lib.name]
        queue = f"b{uuid.uuid4().hex[:10]}"
        argv = [env.python, "-m", lib.module, "run", "--url", server.url, "--queue", queue]
        argv += ["--scenario", sc.id, "--params", json.dumps(params)]
        argv += ["--concurrency", str(plan.concurrency), "--variant", lib.variant]
        if sc.id == "crash":
            argv += ["--recovery", str(plan.recovery)]
        if plan.uvloop:
            argv.append("--uvloop")
        server.flush()
        before = server.command_calls()
        t0 = time.monotonic()
        result, error = _run_process(argv, sc.timeout[1 if plan.full else 0])
        wall = time.monotonic() - t0
        cmds = _commands(before, server.command_calls())
        for name, calls in ((result or {}).pop("commands_excluded", None) or {}).items():
            cmds[name] = max(0, cmds.get(name, 0) - int(calls))  # the paired ceiling's own
        return result, error, wall, cmds

    def measure(self, lib: Library, sc: Scenario, rnd: int) -> None:
        params = self.plan.params(sc)
        if sc.id == "enqueue_seq" and lib.is_kew:  # its share of the EVALSHA ceiling, paired
            params = {**params, "paired_ceiling": True}
        if sc.cluster:
            rec = self._measure_single_and_cluster(lib, sc, rnd, params)
        else:
            result, error, wall, cmds = self._run(lib, sc, params, self.server)
            rec = {
                "library": lib.name,
                "scenario": sc.id,
                "round": rnd,
                "params": params,
                "result": result,
                "error": error or None,
                "wall_s": wall,
                "commands": cmds,
            }
        result = rec["result"]
        if result is not None and "unsupported" in result:
            self.unsupported.add((lib.name, sc.id))
        self.records.append(rec)
        self.log(_describe(rec))

    def _on_cluster(
        self, lib: Library, sc: Scenario, params: dict[str, Any]
    ) -> tuple[tuple[dict[str, Any] | None, str, float, dict[str, int]], dict[str, Any]]:
        """The measurement on a cluster started for it: (what _run returns, cluster facts)."""
        t0 = time.monotonic()
        try:
            with start_cluster(3) as cluster:
                facts: dict[str, Any] = {
                    "describe": cluster.describe,
                    "version": cluster.version,
                    "start_s": time.monotonic() - t0,
                    "spread": cluster.spread(SCALE_QUEUES),
                }
                return self._run(lib, sc, params, cluster), facts
        except (RedisServerError, TimeoutError, OSError) as exc:
            return (None, f"cannot start a Redis Cluster: {exc}", 0.0, {}), {}

    def _measure_single_and_cluster(
        self, lib: Library, sc: Scenario, rnd: int, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Run ``sc`` on the run's Redis and on a 3-master cluster; one record with both."""
        runs: dict[str, tuple[dict[str, Any] | None, str, float, dict[str, int]]] = {}
        cluster: dict[str, Any] = {}
        for target in ("single", "cluster") if rnd % 2 else ("cluster", "single"):
            if target == "single":
                runs[target] = self._run(lib, sc, params, self.server)
            else:
                runs[target], cluster = self._on_cluster(lib, sc, params)
        single, on_cluster = runs["single"][0], runs["cluster"][0]
        errors = [f"{label}: {runs[t][1]}" for t, label in _TARGETS.items() if runs[t][0] is None]
        unsupported = next((r for r in (single, on_cluster) if r and "unsupported" in r), None)
        result: dict[str, Any] | None = unsupported
        if result is None and (single or on_cluster):
            result = {}
            for t, r in (("single", single), ("cluster", on_cluster)):
                for key in ("rate", "seconds", "submit_s"):
                    if r is not None and key in r:
                        result[f"{t}_{key}"] = r[key]
            if single and on_cluster and single["rate"] > 0:
                result["cluster_ratio"] = on_cluster["rate"] / single["rate"]
            result["runs"] = {"single": single, "cluster": on_cluster}
            result["cluster"] = cluster
        return {
            "library": lib.name,
            "scenario": sc.id,
            "round": rnd,
            "params": params,
            "result": result,
            "error": "; ".join(errors) or None,
            "wall_s": runs["single"][2] + runs["cluster"][2],
            "commands": runs["single"][3],
            "commands_cluster": runs["cluster"][3],
        }

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
        if sc.cluster and not lib.is_kew:  # no peer here runs on Redis Cluster
            return False
        if sc.id == "crash" and (
            rnd > self.plan.crash_rounds or not (lib.is_kew or self.plan.crash_peers)
        ):
            return False
        return (lib.name, sc.id) not in self.unsupported


_TARGETS = {"single": "1 Redis", "cluster": "3-master cluster"}


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
    if rec["error"]:
        head += f" (FAILED {rec['error'][:200]})"
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
