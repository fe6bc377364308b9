"""The shop demo behind ``kew demo``: a live rich table, then a summary that checks itself.

One queue, ``orders``, with 4 workers runs 20 orders, a reminder deferred by 2 s, a flaky payment
that fails twice and succeeds on its third attempt, and a shipment that fails for good. Then the
operations act: the queue is paused (late orders wait), resumed (they run), and the failed
shipment is found among the dead letters and requeued once the carrier delivers there. Each run
uses a fresh namespace (``kew-demo-<hex>``) and deletes only that namespace at the end.

This module needs rich (``pip install 'kew[cli]'``); nothing else in kew imports it. The task
functions are module-level so that kew stores them by reference (``kew.demo:process_order``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .exceptions import TaskQueueError
from .manager import TaskQueueManager
from .models import QueueConfig, QueuePriority, TaskInfo, TaskStatus

__all__ = ["Check", "evaluate", "print_summary", "render", "run_demo"]

QUEUE = "orders"
ORDERS = 20
WORKERS = 4
REMINDER_DELAY = 2.0  # seconds
MAX_RETRIES = 2
RETRY_DELAY = 0.2  # seconds; retry n waits RETRY_DELAY * 2**(n-1)
REFRESH_PER_SECOND = 4
WAIT_TIMEOUT = 20.0  # seconds, per task
BAD_ADDRESS = "Atlantis"
BAD_ERROR = "no carrier delivers to 'Atlantis'"

REMINDER, FLAKY, BAD = "reminder", "payment-flaky", "shipment-bad"
ORDER_IDS = [f"order-{n:02d}" for n in range(1, ORDERS + 1)]
TASK_IDS = [*ORDER_IDS, REMINDER, FLAKY, BAD]

_attempts: dict[str, int] = {}  # run id -> attempts of charge_card (same process, any attempt)
_delivered_to: set[str] = set()  # addresses the carrier serves (the demo adds Atlantis later)
LATE_ORDERS = [f"late-{n}" for n in range(1, 4)]
PAUSE_WINDOW = 0.5  # seconds the demo watches a paused queue not running its late orders

_STYLES = {
    TaskStatus.QUEUED: "dim",
    TaskStatus.PROCESSING: "yellow",
    TaskStatus.RETRY: "magenta",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "bold red",
    TaskStatus.CANCELLED: "dim red",
}


# -- the shop's task functions ------------------------------------------------------------------


def order_seconds(order_no: int) -> float:
    """Deterministic work time of an order: 0.05 to 0.30 s."""
    return 0.05 + (order_no * 7 % 11) * 0.025


async def process_order(order_no: int, seconds: float) -> dict[str, object]:
    """Pack an order (sleeps ``seconds``) and return its receipt."""
    await asyncio.sleep(seconds)
    return {"order": order_no, "total": round(9.5 * order_no, 2)}


async def send_reminder(customer: str) -> float:
    """Send a (pretend) reminder; return the wall-clock time it ran (seconds since the epoch)."""
    return time.time()


async def charge_card(run_id: str) -> str:
    """Charge a card through a gateway that times out on the first two attempts of a run."""
    attempt = _attempts.get(run_id, 0) + 1
    _attempts[run_id] = attempt
    if attempt < 3:
        raise ConnectionError(f"payment gateway timed out (attempt {attempt})")
    del _attempts[run_id]
    return f"charged on attempt {attempt}"


async def ship_parcel(address: str) -> str:
    """Ship a parcel; fails on every attempt until the carrier serves the address."""
    if address not in _delivered_to:
        raise ValueError(f"no carrier delivers to {address!r}")
    return f"shipped to {address}"


# -- checking the outcome -----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One expected fact of the summary: its ``label``, whether it is ``ok``, the ``detail``."""

    label: str
    ok: bool
    detail: str


def evaluate(infos: Mapping[str, TaskInfo], reminder_delay: float | None) -> list[Check]:
    """Compare the final task records with what the demo must show.

    Args:
        infos: final TaskInfo per task id (every id of ``TASK_IDS``).
        reminder_delay: seconds between submitting the reminder and its run, or None.

    Returns:
        Four checks: orders, reminder, flaky payment, bad shipment.
    """
    done = sum(infos[t].status is TaskStatus.COMPLETED for t in ORDER_IDS)
    rem, flaky, bad = infos[REMINDER], infos[FLAKY], infos[BAD]
    delay_ok = reminder_delay is not None and reminder_delay >= REMINDER_DELAY - 0.001
    delay = "never ran" if reminder_delay is None else f"ran {reminder_delay:.3f} s after submit"
    return [
        Check("orders", done == ORDERS, f"{done}/{ORDERS} completed"),
        Check(
            "reminder",
            rem.status is TaskStatus.COMPLETED and delay_ok,
            f"{rem.status.value}, {delay} (deferred by {REMINDER_DELAY} s)",
        ),
        Check(
            "flaky payment",
            flaky.status is TaskStatus.COMPLETED and flaky.retry_count == MAX_RETRIES,
            f"{flaky.status.value}, retry_count {flaky.retry_count}, result {flaky.result!r}",
        ),
        Check(
            "bad shipment",
            bad.status is TaskStatus.FAILED
            and bad.retry_count == MAX_RETRIES
            and BAD_ERROR in (bad.error or ""),
            f"{bad.status.value} after {bad.retry_count} retries, error: {bad.error}",
        ),
    ]


# -- rendering ----------------------------------------------------------------------------------


def _status(info: TaskInfo) -> Text:
    return Text(info.status.value, style=_STYLES.get(info.status, ""))


def _timing(info: TaskInfo, since_queued: bool = False) -> str:
    start = info.queued_time if since_queued else info.started_time
    if start and info.completed_time:
        return f"{(info.completed_time - start).total_seconds():.2f} s"
    if info.due_time is not None:
        return f"due in {max(0.0, (info.due_time - datetime.now()).total_seconds()):.1f} s"
    return ""


def _note(info: TaskInfo) -> str:
    if info.status is TaskStatus.COMPLETED and info.task_id != REMINDER:
        return escape(str(info.result))
    return escape(info.error or "")


def _counts(infos: Mapping[str, TaskInfo]) -> str:
    counts = Counter(i.status.value for i in infos.values())
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))


def render(infos: Mapping[str, TaskInfo], elapsed: float) -> Group:
    """Build the live view: the orders (two columns of ten) and the three special tasks."""
    orders = Table(title=f"queue {QUEUE!r}: {WORKERS} workers", box=box.SIMPLE_HEAD)
    for _ in range(2):
        orders.add_column("order")
        orders.add_column("status")
        orders.add_column("ran", justify="right")
    half = ORDERS // 2
    for left, right in zip(ORDER_IDS[:half], ORDER_IDS[half:], strict=True):
        a, b = infos[left], infos[right]
        orders.add_row(left, _status(a), _timing(a), right, _status(b), _timing(b))
    others = Table(box=box.SIMPLE_HEAD)
    for column in ("task", "status", "retries", "submit→end", "result / last error"):
        others.add_column(column)
    for task_id in (REMINDER, FLAKY, BAD):
        i = infos[task_id]
        others.add_row(task_id, _status(i), str(i.retry_count), _timing(i, True), _note(i))
    return Group(Text(f"{elapsed:4.1f} s  {_counts(infos)}"), orders, others)


def print_summary(console: Console, infos: Mapping[str, TaskInfo], checks: list[Check]) -> None:
    """Print the status counts and each check, then the verdict."""
    console.print("\n[bold]Summary[/bold]")
    console.print(f"  status counts: {_counts(infos)}")
    for c in checks:
        mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
        console.print(f"  {mark} {c.label}: {escape(c.detail)}", soft_wrap=True)
    ok = all(c.ok for c in checks)
    console.print("[green]all as expected[/green]" if ok else "[red]unexpected outcome[/red]")


# -- running ------------------------------------------------------------------------------------


async def _submit_all(manager: TaskQueueManager, run_id: str) -> float:
    """Submit every task; return the wall-clock time the reminder was submitted."""
    await manager.submit_tasks(
        QUEUE,
        [
            {
                "task_id": task_id,
                "task_type": "order",
                "task_func": process_order,
                "args": (n, order_seconds(n)),
            }
            for n, task_id in enumerate(ORDER_IDS, 1)
        ],
    )
    high = QueuePriority.HIGH
    await manager.submit_task(FLAKY, QUEUE, "payment", charge_card, high, run_id)
    await manager.submit_task(BAD, QUEUE, "shipment", ship_parcel, high, BAD_ADDRESS)
    submitted = time.time()
    low, customer = QueuePriority.LOW, "ada@example.com"
    await manager.submit_task(
        REMINDER, QUEUE, "reminder", send_reminder, low, customer, _defer_by=REMINDER_DELAY
    )
    return submitted


async def _snapshot(manager: TaskQueueManager) -> dict[str, TaskInfo]:
    infos = await asyncio.gather(*(manager.get_task_status(t) for t in TASK_IDS))
    return dict(zip(TASK_IDS, infos, strict=True))


async def _watch(manager: TaskQueueManager, console: Console) -> dict[str, TaskInfo]:
    """Show the live table until every task ends (per ``wait_for_task``); return the records."""
    start = time.monotonic()
    waiters = asyncio.gather(
        *(manager.wait_for_task(t, timeout=WAIT_TIMEOUT) for t in TASK_IDS),
        return_exceptions=True,
    )
    with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
        while not waiters.done():
            live.update(render(await _snapshot(manager), time.monotonic() - start), refresh=True)
            await asyncio.wait([waiters], timeout=1 / REFRESH_PER_SECOND)
        infos = await _snapshot(manager)
        live.update(render(infos, time.monotonic() - start), refresh=True)
    for task_id, outcome in zip(TASK_IDS, waiters.result(), strict=True):
        if isinstance(outcome, BaseException):
            console.print(f"[red]waiting for {task_id} failed:[/red] {escape(str(outcome))}")
    return infos


async def _operations(manager: TaskQueueManager, console: Console) -> list[Check]:
    """Pause / resume with late orders, then find the failed shipment among the dead letters
    and requeue it once the carrier serves its address. Returns two checks."""
    console.print("\n[bold]Operations[/bold]")
    await manager.pause_queue(QUEUE)
    for n, task_id in enumerate(LATE_ORDERS, ORDERS + 1):
        await manager.submit_task(
            task_id, QUEUE, "order", process_order, QueuePriority.MEDIUM, n, 0.05
        )
    with contextlib.suppress(TaskQueueError):  # nothing may finish while paused
        await manager.wait_for_task(LATE_ORDERS[0], timeout=PAUSE_WINDOW)
    waiting = [(await manager.get_task_status(t)).status for t in LATE_ORDERS]
    paused = (await manager.get_queue_status(QUEUE))["paused"]
    console.print(f"  paused: {paused}; late orders after {PAUSE_WINDOW} s: {_values(waiting)}")
    await manager.resume_queue(QUEUE)
    late = [await manager.wait_for_task(t, timeout=WAIT_TIMEOUT) for t in LATE_ORDERS]
    console.print(f"  resumed; late orders: {_values([i.status for i in late])}")
    dead = [i.task_id for i in await manager.list_dead(QUEUE)]
    console.print(f"  dead letters: {dead}")
    _delivered_to.add(BAD_ADDRESS)
    requeued = await manager.requeue_dead(QUEUE, [BAD])
    again = await manager.wait_for_task(BAD, timeout=WAIT_TIMEOUT)
    console.print(f"  carrier now serves {BAD_ADDRESS}; requeued {requeued}: {again.status.value}")
    return [
        Check(
            "pause / resume",
            paused
            and all(st is TaskStatus.QUEUED for st in waiting)
            and all(i.status is TaskStatus.COMPLETED for i in late),
            f"late orders {_values(waiting)} while paused, {_values([i.status for i in late])} "
            "after resume",
        ),
        Check(
            "dead letter requeued",
            dead == [BAD] and requeued == 1 and again.status is TaskStatus.COMPLETED,
            f"dead letters {dead}; after requeue: {again.status.value} ({again.result!r})",
        ),
    ]


def _values(statuses: list[TaskStatus]) -> str:
    return ", ".join(st.value for st in statuses)


async def _delete_namespace(redis_url: str, namespace: str) -> None:
    """Delete the run's namespace (and only it) once nothing of it runs any more."""
    sweeper = TaskQueueManager(redis_url, namespace=namespace, cleanup_on_start=True)
    with contextlib.suppress(TaskQueueError):
        await sweeper.initialize()  # cleanup_on_start deletes every key of the namespace
    await sweeper.shutdown()


async def run_demo(redis_url: str, console: Console) -> int:
    """Run the shop once in a fresh namespace, print the summary and delete the namespace.

    Args:
        redis_url: where to run (``redis://...`` or ``memory://``).
        console: where to print.

    Returns:
        0 when the summary is as expected, 1 otherwise.

    Raises:
        TaskQueueError: Redis cannot be reached (KewConnectionError) or rejects the demo.
    """
    run_id = uuid.uuid4().hex[:8]
    _delivered_to.discard(BAD_ADDRESS)  # the carrier starts without Atlantis on every run
    manager = TaskQueueManager(redis_url, namespace=f"kew-demo-{run_id}")
    console.print(f"namespace: {manager.namespace} (deleted at the end)")
    try:
        await manager.initialize()
        await manager.create_queue(
            QueueConfig(
                QUEUE,
                max_workers=WORKERS,
                max_retries=MAX_RETRIES,
                retry_delay=RETRY_DELAY,
                max_circuit_breaker_failures=10,
            )  # the demo's 5 failed attempts must not open the circuit
        )
        submitted = await _submit_all(manager, run_id)
        infos = await _watch(manager, console)
        operations = await _operations(manager, console)
    finally:
        await manager.shutdown(timeout=1.0)  # running tasks (if interrupted) are handed back
        await _delete_namespace(redis_url, manager.namespace)
    ran_at = infos[REMINDER].result
    delay = ran_at - submitted if isinstance(ran_at, int | float) else None
    checks = [*evaluate(infos, delay), *operations]
    print_summary(console, infos, checks)
    return 0 if all(c.ok for c in checks) else 1
