"""A kew worker process for the fault tests: ``python fault_worker.py URL NAMESPACE QUEUE [opts]``.

It joins QUEUE in NAMESPACE with its own TaskQueueManager, announces itself (SADD of its pid to
``<namespace>:faults:ready``), optionally submits tasks, and runs until SIGTERM, when it shuts its
manager down cleanly and exits 0. It exits by itself after ``--max-lifetime`` seconds, so that a
crashed test run never leaves it behind.

Options:
    --max-workers N     the queue's max_workers (default 20)
    --lease S           the manager's lease_timeout in seconds (default 1.0)
    --slow-task ID      submit one ``slow_first_run`` task with this id (its first run hangs)
    --hold S            how long that first run hangs (default 60)
    --quick-tasks N     after a token arrives on ``<namespace>:faults:go``, submit N
                        ``record_run`` tasks ``t00000``... with ``submit_tasks`` in batches
    --batch N           batch size of those submits (default 500)
    --max-lifetime S    exit after S seconds whatever happens (default 90)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kew import QueueConfig, QueuePriority, TaskQueueManager
from kew.connection import create_client

from workers import fault_tasks
from workers._common import go_key, ready_key


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("redis_url")
    p.add_argument("namespace")
    p.add_argument("queue")
    p.add_argument("--max-workers", type=int, default=20)
    p.add_argument("--lease", type=float, default=1.0)
    p.add_argument("--slow-task")
    p.add_argument("--hold", type=float, default=60.0)
    p.add_argument("--quick-tasks", type=int, default=0)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--max-lifetime", type=float, default=90.0)
    return p.parse_args(argv)


async def submit_quick(manager: TaskQueueManager, opts: argparse.Namespace, admin: Any) -> None:
    while await admin.blpop([go_key(opts.namespace)], timeout=1) is None:
        pass
    ids = [f"t{i:05d}" for i in range(opts.quick_tasks)]
    for start in range(0, len(ids), opts.batch):
        await manager.submit_tasks(
            opts.queue,
            [
                {
                    "task_id": task_id,
                    "task_type": "quick",
                    "task_func": fault_tasks.record_run,
                    "args": (opts.redis_url, opts.namespace, task_id),
                }
                for task_id in ids[start : start + opts.batch]
            ],
        )
    print(f"submitted {len(ids)} tasks", flush=True)


async def main(opts: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(opts.max_lifetime, stop.set)

    manager = TaskQueueManager(opts.redis_url, namespace=opts.namespace, lease_timeout=opts.lease)
    admin = create_client(opts.redis_url)
    submitter: asyncio.Task[None] | None = None
    try:
        await manager.initialize()
        await manager.create_queue(
            QueueConfig(opts.queue, max_workers=opts.max_workers, max_size=100_000)
        )
        if opts.slow_task:
            await manager.submit_task(
                opts.slow_task,
                opts.queue,
                "slow",
                fault_tasks.slow_first_run,
                QueuePriority.MEDIUM,
                opts.redis_url,
                opts.namespace,
                opts.slow_task,
                21,
                opts.hold,
            )
        await admin.sadd(ready_key(opts.namespace), os.getpid())
        print(f"worker {os.getpid()} ready", flush=True)
        if opts.quick_tasks:
            submitter = asyncio.create_task(submit_quick(manager, opts, admin))
        await stop.wait()
        print(f"worker {os.getpid()} stopping", flush=True)
        if submitter is not None and not submitter.done():
            submitter.cancel()
        if submitter is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await submitter  # a submit error makes the exit code non-zero
    finally:
        await manager.shutdown(timeout=5.0)
        await fault_tasks.close_clients()
        await admin.aclose()
    print(f"worker {os.getpid()} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
