"""QueueConfig validation, priorities, TaskStatus and the TaskInfo codec of the task HASH."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime

import pytest
from kew.exceptions import InvalidArgumentError, TaskQueueError
from kew.models import QueueConfig, QueuePriority, TaskInfo, TaskStatus, coerce_priority

NAN = math.nan
INF = math.inf

# field -> values of the wrong type
WRONG_TYPES: dict[str, list[object]] = {
    "name": [None, 1, b"orders", ["orders"]],
    "max_workers": ["1", 1.0, 2.5, True, None],
    "priority": ["HIGH", "high", 1.0, True, None],
    "max_size": ["10", 10.0, False, None],
    "task_timeout": ["1", None, True, [1]],
    "max_circuit_breaker_failures": ["3", 3.0, True, None],
    "circuit_breaker_reset_timeout": ["60", None, False],
    "max_retries": ["0", 0.0, False, None],
    "retry_delay": ["1", None, True],
    "global_max_workers": ["1", 1.0, 2.5, True, [1]],
    "rate_limit": ["5", 5.0, 0.5, True, [5]],
    "rate_period": ["1", None, True, [1.0]],
    "rate_burst": ["2", 2.0, False, [2]],
    "retention": ["60", True, [60]],
}

# field -> values of the right type but out of range
OUT_OF_RANGE: dict[str, list[object]] = {
    "name": ["", "{orders}", "a{b", "a}b"],
    "max_workers": [0, -1],
    "priority": [0, 4, -1],
    "max_size": [0, -5],
    "task_timeout": [0, 0.0, -1, -0.5, NAN, INF, -INF],
    "max_circuit_breaker_failures": [0, -1],
    "circuit_breaker_reset_timeout": [0, 0.0, -1.0, NAN, INF],
    "max_retries": [-1],
    "retry_delay": [-0.001, -1, NAN, INF],
    "global_max_workers": [0, -1],
    "rate_limit": [0, -1],
    "rate_period": [0, 0.0, -1, -0.5, NAN, INF, -INF, 0.0004],
    "rate_burst": [0, -2],
    "retention": [0, -1, NAN, INF],
}


def _config(**overrides: object) -> QueueConfig:
    kwargs: dict[str, object] = {"name": "orders", "max_workers": 2}
    kwargs.update(overrides)
    return QueueConfig(**kwargs)  # type: ignore[arg-type]


def _cases(table: dict[str, list[object]]) -> list[tuple[str, object]]:
    return [(field, value) for field, values in table.items() for value in values]


def test_every_field_is_covered() -> None:
    fields = {f.name for f in dataclasses.fields(QueueConfig)}
    assert set(WRONG_TYPES) == fields
    assert set(OUT_OF_RANGE) == fields


@pytest.mark.parametrize(("field", "value"), _cases(WRONG_TYPES))
def test_wrong_type_raises_invalid_argument(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _config(**{field: value})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TaskQueueError)


@pytest.mark.parametrize(("field", "value"), _cases(OUT_OF_RANGE))
def test_out_of_range_raises_invalid_argument(field: str, value: object) -> None:
    with pytest.raises(ValueError) as info:
        _config(**{field: value})
    assert type(info.value) is InvalidArgumentError


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_workers", 1),
        ("max_size", 1),
        ("task_timeout", 0.001),
        ("task_timeout", 5),
        ("max_circuit_breaker_failures", 1),
        ("circuit_breaker_reset_timeout", 0.5),
        ("max_retries", 0),
        ("retry_delay", 0),
        ("retry_delay", 0.0),
        ("name", "orders:eu west"),
        ("global_max_workers", 1),
        ("global_max_workers", None),
        ("rate_limit", 1),
        ("rate_limit", None),
        ("rate_period", 0.001),
        ("rate_period", 60),
        ("rate_burst", None),
    ],
)
def test_boundary_values_are_accepted(field: str, value: object) -> None:
    cfg = _config(**{field: value})
    assert getattr(cfg, field) == value


def test_rate_burst_of_one_is_accepted_with_a_rate_limit() -> None:
    assert _config(rate_limit=5, rate_burst=1).rate_burst == 1


def test_rate_burst_without_rate_limit_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="rate_burst needs rate_limit"):
        _config(rate_burst=5)


def test_defaults_match_the_original_api() -> None:
    cfg = QueueConfig("orders")
    assert cfg.max_workers == 10
    assert cfg.priority is QueuePriority.MEDIUM
    assert cfg.max_size == 1000
    assert cfg.task_timeout == 3600
    assert cfg.max_circuit_breaker_failures == 3
    assert cfg.circuit_breaker_reset_timeout == 60
    assert cfg.max_retries == 0
    assert cfg.retry_delay == 1.0
    assert cfg.global_max_workers is None
    assert cfg.rate_limit is None
    assert cfg.rate_period == 1.0
    assert cfg.rate_burst is None


def test_positional_order_matches_the_original_api() -> None:
    cfg = QueueConfig("q", 4, QueuePriority.HIGH, 50, 10.0, 5, 30.0, 2, 0.5)
    assert (cfg.name, cfg.max_workers, cfg.priority, cfg.max_size) == (
        "q",
        4,
        QueuePriority.HIGH,
        50,
    )
    assert (cfg.task_timeout, cfg.max_circuit_breaker_failures) == (10.0, 5)
    assert (cfg.circuit_breaker_reset_timeout, cfg.max_retries, cfg.retry_delay) == (30.0, 2, 0.5)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (0, 0, 1000, 0)),  # no limits at all
        ({"global_max_workers": 4}, (4, 0, 1000, 0)),
        ({"rate_limit": 5}, (0, 5, 1000, 5)),  # burst defaults to the rate
        ({"rate_limit": 5, "rate_burst": 20}, (0, 5, 1000, 20)),
        ({"rate_limit": 5, "rate_burst": 1}, (0, 5, 1000, 1)),
        ({"rate_limit": 2, "rate_period": 2.5}, (0, 2, 2500, 2)),
        ({"rate_limit": 2, "rate_period": 60}, (0, 2, 60_000, 2)),
        ({"rate_limit": 1, "rate_period": 0.001}, (0, 1, 1, 1)),  # the shortest period: 1 ms
        ({"rate_limit": 1, "rate_period": 0.0016}, (0, 1, 2, 1)),  # rounded to the nearest ms
        ({"global_max_workers": 3, "rate_limit": 7, "rate_burst": 9}, (3, 7, 1000, 9)),
    ],
)
def test_claim_limits(overrides: dict[str, object], expected: tuple[int, int, int, int]) -> None:
    limits = _config(**overrides).claim_limits()
    assert limits == expected
    assert all(type(v) is int for v in limits)


def test_config_is_frozen() -> None:
    cfg = _config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_workers = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, QueuePriority.HIGH),
        (2, QueuePriority.MEDIUM),
        (3, QueuePriority.LOW),
        (QueuePriority.LOW, QueuePriority.LOW),
    ],
)
def test_priority_int_is_coerced(value: object, expected: QueuePriority) -> None:
    assert _config(priority=value).priority is expected
    assert coerce_priority(value) is expected


@pytest.mark.parametrize("value", [True, False, 0, 4, 1.0, "1", "HIGH", None])
def test_coerce_priority_rejects(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        coerce_priority(value)


def test_priority_order_lower_value_first() -> None:
    assert [p.value for p in QueuePriority] == [1, 2, 3]
    assert sorted(QueuePriority, key=lambda p: p.value) == [
        QueuePriority.HIGH,
        QueuePriority.MEDIUM,
        QueuePriority.LOW,
    ]


def test_task_status_values_and_terminal() -> None:
    assert {s.value for s in TaskStatus} >= {"queued", "processing", "completed", "failed", "retry"}
    assert TaskStatus("retry") is TaskStatus.RETRY
    assert TaskStatus("cancelled") is TaskStatus.CANCELLED
    assert {s for s in TaskStatus if s.is_terminal} == {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
    assert not any(s.is_terminal for s in (TaskStatus.QUEUED, TaskStatus.PROCESSING))
    assert not TaskStatus.RETRY.is_terminal


# -- TaskInfo -------------------------------------------------------------------------------

NOW_MS = 1_700_000_000_123


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0)


def _hash(**fields: object) -> dict[bytes, bytes]:
    """A task HASH as submit.lua writes it (bytes keys and values), with overrides."""
    base: dict[str, object] = {
        "id": "t1",
        "queue": "orders",
        "type": "email",
        "priority": 1,
        "status": "queued",
        "queued": NOW_MS,
        "due": 0,
        "func": b"rmod:f",
        "args": b"",
        "retries": 0,
        "attempts": 0,
        "fence": 0,
        "seq": 1,
    }
    base.update(fields)
    return {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in base.items()}


def test_from_hash_reads_every_field() -> None:
    fields = _hash(
        status="completed",
        started=NOW_MS + 1000,
        completed=NOW_MS + 2500,
        retries=2,
        attempts=3,
        error="boom",
    )
    info = TaskInfo.from_hash(fields, result={"ok": 1})
    assert info.task_id == "t1"
    assert info.task_type == "email"
    assert info.queue_name == "orders"
    assert info.priority == 1
    assert info.status is TaskStatus.COMPLETED
    assert info.queued_time == _local(NOW_MS)
    assert info.started_time == _local(NOW_MS + 1000)
    assert info.completed_time == _local(NOW_MS + 2500)
    assert info.completed_time.tzinfo is None
    assert info.result == {"ok": 1}
    assert info.error == "boom"
    assert info.retry_count == 2
    assert info.attempts == 3
    assert info.due_time is None


def test_from_hash_fresh_task_has_no_times_beyond_queued() -> None:
    info = TaskInfo.from_hash(_hash())
    assert info.status is TaskStatus.QUEUED
    assert info.started_time is None
    assert info.completed_time is None
    assert info.error is None
    assert info.result is None
    assert info.retry_count == 0


def test_from_hash_ready_now_task_has_no_due_time() -> None:
    # submit.lua stores due = "0" for a task that is ready now; TaskInfo documents
    # "due_time ... None when ready now".
    info = TaskInfo.from_hash(_hash(due=0))
    assert info.due_time is None


def test_from_hash_deferred_and_retry_tasks_have_due_time() -> None:
    due = NOW_MS + 60_000
    assert TaskInfo.from_hash(_hash(due=due)).due_time == _local(due)
    retry = TaskInfo.from_hash(_hash(status="retry", due=due, retries=1, error="x"))
    assert retry.status is TaskStatus.RETRY
    assert retry.due_time == _local(due)
    running = TaskInfo.from_hash(_hash(status="processing", due=due, started=NOW_MS))
    assert running.due_time is None


def test_from_hash_missing_fields_fall_back_to_defaults() -> None:
    info = TaskInfo.from_hash({})
    assert info.task_id == ""
    assert info.task_type == ""
    assert info.queue_name == ""
    assert info.priority == 2
    assert info.status is TaskStatus.QUEUED
    assert info.queued_time is None
    assert info.retry_count == 0
    assert info.attempts == 0


def test_from_hash_decodes_unicode() -> None:
    info = TaskInfo.from_hash(_hash(id="tâche-✓".encode(), error="échec ✗".encode()))
    assert info.task_id == "tâche-✓"
    assert info.error == "échec ✗"


def test_to_dict_is_json_friendly() -> None:
    info = TaskInfo.from_hash(
        _hash(status="failed", started=NOW_MS, completed=NOW_MS + 5, error="e", retries=1),
        result=None,
    )
    d = info.to_dict()
    assert d == {
        "task_id": "t1",
        "task_type": "email",
        "queue_name": "orders",
        "priority": 1,
        "status": "failed",
        "queued_time": _local(NOW_MS).isoformat(),
        "started_time": _local(NOW_MS).isoformat(),
        "completed_time": _local(NOW_MS + 5).isoformat(),
        "result": None,
        "error": "e",
        "retry_count": 1,
        "attempts": 0,
        "errors": [],
        "progress": None,
        "progress_message": None,
    }
    assert json.loads(json.dumps(d)) == d


def test_to_dict_carries_errors_and_progress() -> None:
    info = TaskInfo.from_hash(
        _hash(
            status="processing",
            errors="first\x1esecond",
            progress="0.25",
            progress_message="row 5",
        )
    )
    d = info.to_dict()
    assert (d["errors"], d["progress"], d["progress_message"]) == (
        ["first", "second"],
        0.25,
        "row 5",
    )
    assert d["errors"] is not info.errors  # a copy: the dict can be changed freely
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, []),
        (b"", []),
        (b"boom", ["boom"]),
        (b"e1\x1ee2\x1ee3", ["e1", "e2", "e3"]),
        ("échec ✗\x1eValueError".encode(), ["échec ✗", "ValueError"]),
        (b"a b\x1e\x1ec", ["a b", "", "c"]),  # an empty middle entry is kept in place
    ],
)
def test_from_hash_errors_history(stored: bytes | None, expected: list[str]) -> None:
    fields = _hash(status="failed", error="last")
    if stored is not None:
        fields[b"errors"] = stored
    info = TaskInfo.from_hash(fields)
    assert info.errors == expected
    assert info.error == "last"


def test_from_hash_errors_lists_are_not_shared() -> None:
    a, b = TaskInfo.from_hash(_hash()), TaskInfo.from_hash(_hash())
    a.errors.append("x")
    assert b.errors == []
    assert TaskInfo("a", "t", "q", 2).errors == []


@pytest.mark.parametrize(
    ("progress", "message", "expected"),
    [
        (None, None, (None, None)),
        (b"0.5", b"half", (0.5, "half")),
        (b"0.0", b"", (0.0, "")),  # 0 and an empty message are values, not "none"
        (b"42", b"rows", (42.0, "rows")),
        (b"-1.5", "étape ✓".encode(), (-1.5, "étape ✓")),
        (b"1e-06", None, (1e-06, None)),
    ],
)
def test_from_hash_progress(
    progress: bytes | None, message: bytes | None, expected: tuple[float | None, str | None]
) -> None:
    fields = _hash(status="processing")
    if progress is not None:
        fields[b"progress"] = progress
    if message is not None:
        fields[b"progress_message"] = message
    info = TaskInfo.from_hash(fields)
    assert (info.progress, info.progress_message) == expected
    assert info.progress is None or type(info.progress) is float


def test_from_hash_cancelled_task() -> None:
    info = TaskInfo.from_hash(_hash(status="cancelled", completed=NOW_MS + 9, due=NOW_MS + 60_000))
    assert info.status is TaskStatus.CANCELLED
    assert info.status.is_terminal
    assert info.completed_time == _local(NOW_MS + 9)
    assert info.due_time is None  # only QUEUED and RETRY tasks have a due time


def test_to_dict_of_new_task_has_none_times() -> None:
    d = TaskInfo("a", "t", "q", 2).to_dict()
    assert d["status"] == "queued"
    assert d["queued_time"] is None
    assert d["started_time"] is None
    assert d["completed_time"] is None
