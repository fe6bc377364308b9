"""Shared by the fault tests and their worker subprocesses: key names, paths, process handling.

Everything the tests record lives under ``<namespace>:faults:...``, inside the test's namespace,
so the testkit deletes it with the namespace after the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

CONFORMANCE_DIR = Path(__file__).resolve().parents[1]
WORKERS_DIR = Path(__file__).resolve().parent
WORKER_SCRIPT = WORKERS_DIR / "fault_worker.py"


def faults_key(namespace: str, *parts: str) -> str:
    """A key of the test's own records (``<namespace>:faults:<parts...>``)."""
    return ":".join((namespace, "faults", *parts))


def runs_key(namespace: str, task_id: str) -> str:
    """LIST of the pids that started a run of ``task_id`` (one RPUSH per run)."""
    return faults_key(namespace, "runs", task_id)


def log_key(namespace: str) -> str:
    """LIST of ``"<task id> <pid>"`` entries, one per run (for the many-tasks tests)."""
    return faults_key(namespace, "log")


def ready_key(namespace: str) -> str:
    """SET of the pids of the worker processes whose queue is consuming."""
    return faults_key(namespace, "ready")


def go_key(namespace: str) -> str:
    """LIST a worker that submits waits on (BLPOP) before it submits its batch."""
    return faults_key(namespace, "go")


def subprocess_env() -> dict[str, str]:
    """The environment of a worker: this one, with ``conformance/`` on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(CONFORMANCE_DIR), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """One ``fault_worker.py`` subprocess; its output goes to a file shown on failure."""

    def __init__(self, log_dir: Path, name: str, args: list[str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), *args],
            env=subprocess_env(),
            cwd=str(CONFORMANCE_DIR.parent),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The tail of the worker's output (stdout and stderr)."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return f"--- {self.name} (pid {self.pid}) output ---\n{text[-limit:]}"

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no chance to hand anything back."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)

    async def wait_exit(self, timeout: float) -> int | None:
        """Wait (without blocking the event loop) up to ``timeout`` s; the exit code or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.proc.poll()

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the worker shuts its manager down cleanly), then its exit code (or None)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def close(self) -> None:
        """Make sure the process is gone (SIGTERM, then SIGKILL) and close its log."""
        if await self.stop(5.0) is None:
            self.kill()
            await self.wait_exit(5.0)
        self._log.close()
