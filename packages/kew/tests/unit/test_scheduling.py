"""The pure timing rules: due time, backoff, retries, wait bounds, breaker state."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from kew.exceptions import InvalidArgumentError
from kew.scheduling import (
    backoff_delay,
    breaker_state,
    due_time,
    should_retry,
    to_ms,
    wait_seconds,
)

NOW = 1_700_000_000.0


# -- due_time ---------------------------------------------------------------------------------


def test_no_deferral_is_ready_now() -> None:
    assert due_time(NOW) is None
    assert due_time(NOW, None, None) is None


@pytest.mark.parametrize("delay", [1, 2.5, 0.001, 86_400 * 30])
def test_defer_by_number(delay: float) -> None:
    assert due_time(NOW, defer_by=delay) == NOW + delay


def test_defer_by_timedelta() -> None:
    assert due_time(NOW, defer_by=timedelta(minutes=5)) == NOW + 300
    assert due_time(NOW, defer_by=timedelta(milliseconds=250)) == NOW + 0.25


@pytest.mark.parametrize("zero", [0, 0.0, timedelta(0)])
def test_zero_delay_is_ready_now(zero: object) -> None:
    assert due_time(NOW, defer_by=zero) is None


def test_aware_datetime_is_exact() -> None:
    at = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert due_time(NOW, defer_until=at) == NOW + 90
    other_zone = at.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
    assert due_time(NOW, defer_until=other_zone) == NOW + 90


@pytest.fixture
def kolkata_time() -> Iterator[None]:
    """Local time is UTC+05:30 (no DST) for the duration of the test."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() is not available")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_naive_datetime_is_local_time(kolkata_time: None) -> None:
    naive = datetime(2030, 1, 1, 12, 0, 0)
    expected = datetime(2030, 1, 1, 6, 30, 0, tzinfo=UTC).timestamp()
    assert due_time(NOW, defer_until=naive) == expected
    assert due_time(NOW, defer_until=naive) == naive.timestamp()


def test_naive_datetime_in_the_near_future() -> None:
    naive = datetime.fromtimestamp(NOW + 30)  # local wall time, 30 s from NOW
    assert due_time(NOW, defer_until=naive) == pytest.approx(NOW + 30, abs=1e-6)


@pytest.mark.parametrize("seconds_ago", [0, 0.001, 60, 86_400 * 365])
def test_datetime_not_in_the_future_is_ready_now(seconds_ago: float) -> None:
    aware = datetime.fromtimestamp(NOW - seconds_ago, tz=UTC)
    naive = datetime.fromtimestamp(NOW - seconds_ago)
    assert due_time(NOW, defer_until=aware) is None
    assert due_time(NOW, defer_until=naive) is None


@pytest.mark.parametrize(
    ("defer_by", "defer_until"),
    [
        (5, datetime.fromtimestamp(NOW + 10, tz=UTC)),
        (0, datetime.fromtimestamp(NOW - 10, tz=UTC)),
        (timedelta(0), datetime.fromtimestamp(NOW)),
    ],
)
def test_both_arguments_is_an_error(defer_by: object, defer_until: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        due_time(NOW, defer_by=defer_by, defer_until=defer_until)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "bad",
    [-1, -0.001, math.nan, math.inf, -math.inf, timedelta(seconds=-1), timedelta(days=-3)],
)
def test_negative_nan_inf_delay_is_an_error(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        due_time(NOW, defer_by=bad)


@pytest.mark.parametrize("bad", [True, False, "5", b"5", [5], object()])
def test_defer_by_wrong_type_is_an_error(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        due_time(NOW, defer_by=bad)


@pytest.mark.parametrize(
    "bad", [NOW + 10, "2030-01-01T00:00:00", datetime(2030, 1, 1).date(), True]
)
def test_defer_until_must_be_a_datetime(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        due_time(NOW, defer_until=bad)


# -- to_ms --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        (0, 0),
        (1, 1000),
        (1.5, 1500),
        (0.0019, 1),
        (NOW, 1_700_000_000_000),
        (NOW + 0.25, 1_700_000_000_250),
    ],
)
def test_to_ms_rounds_down_to_int(seconds: float, ms: int) -> None:
    assert to_ms(seconds) == ms
    assert type(to_ms(seconds)) is int


# -- backoff and retries --------------------------------------------------------------------------


def test_backoff_doubles() -> None:
    assert [backoff_delay(1.0, n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [backoff_delay(0.5, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_delay(0, 5) == 0
    assert type(backoff_delay(1, 3)) is float


@pytest.mark.parametrize("n", [0, -1])
def test_backoff_failure_number_is_one_based(n: int) -> None:
    with pytest.raises(ValueError):
        backoff_delay(1.0, n)


@pytest.mark.parametrize(
    ("retry_count", "max_retries", "expected"),
    [(0, 0, False), (0, 1, True), (1, 1, False), (2, 3, True), (3, 3, False), (4, 3, False)],
)
def test_should_retry(retry_count: int, max_retries: int, expected: bool) -> None:
    assert should_retry(retry_count, max_retries) is expected


# -- wait_seconds ---------------------------------------------------------------------------------


def test_wait_without_anything_due_is_the_cap() -> None:
    assert wait_seconds(1000, None, 30.0) == 30.0


def test_wait_until_next_due() -> None:
    assert wait_seconds(1000, 1500, 30.0) == 0.5
    assert wait_seconds(1000, 1001, 30.0) == 0.001


def test_wait_is_capped() -> None:
    assert wait_seconds(0, 10_000_000, 30.0) == 30.0


@pytest.mark.parametrize("due", [1000, 999, 0, -5])
def test_wait_never_means_forever(due: int) -> None:
    w = wait_seconds(1000, due, 30.0)
    assert w == 0.001
    assert w > 0


# -- breaker_state --------------------------------------------------------------------------------


def test_breaker_without_fields_is_closed() -> None:
    assert breaker_state({}, 5) == "closed"


def test_breaker_closed_with_failures_is_closed() -> None:
    assert breaker_state({b"state": b"closed", b"failures": b"2"}, 5) == "closed"


def test_breaker_open_until_probe_time_then_half_open() -> None:
    fields = {b"state": b"open", b"failures": b"3", b"opened_at": b"1000", b"probe_at": b"61000"}
    assert breaker_state(fields, 1000) == "open"
    assert breaker_state(fields, 60_999) == "open"
    assert breaker_state(fields, 61_000) == "half-open"
    assert breaker_state(fields, 99_000) == "half-open"


def test_breaker_open_without_probe_time_is_half_open() -> None:
    assert breaker_state({b"state": b"open"}, 1) == "half-open"
