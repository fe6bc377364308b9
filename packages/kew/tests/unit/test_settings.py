"""ManagerSettings: defaults and validation."""

from __future__ import annotations

import dataclasses
import math

import pytest
from kew.exceptions import InvalidArgumentError
from kew.settings import (
    DEFAULT_CLAIM_LIMIT,
    DEFAULT_IDLE_WAIT,
    DEFAULT_LEASE_TIMEOUT,
    DEFAULT_NAMESPACE,
    DEFAULT_RETENTION,
    DEFAULT_SUBMIT_CHUNK,
    ManagerSettings,
)


def test_defaults() -> None:
    s = ManagerSettings()
    assert s.namespace == DEFAULT_NAMESPACE == "kew"
    assert s.lease_timeout == DEFAULT_LEASE_TIMEOUT == 30.0
    assert s.retention == DEFAULT_RETENTION == 86_400.0
    assert s.idle_wait == DEFAULT_IDLE_WAIT
    assert s.submit_chunk == DEFAULT_SUBMIT_CHUNK
    assert DEFAULT_CLAIM_LIMIT >= 1
    assert s.dead_letter_ttl == DEFAULT_RETENTION


def test_dead_letter_ttl_defaults_to_the_retention() -> None:
    s = ManagerSettings(retention=120)
    assert s.dead_letter_ttl == 120.0
    assert type(s.dead_letter_ttl) is float


def test_dead_letter_ttl_of_its_own() -> None:
    s = ManagerSettings(retention=60, dead_letter_retention=7 * 86_400)
    assert s.dead_letter_ttl == 7 * 86_400.0
    assert type(s.dead_letter_ttl) is float
    assert s.retention == 60.0  # finished tasks still use the retention
    shorter = ManagerSettings(retention=86_400, dead_letter_retention=30)
    assert shorter.dead_letter_ttl == 30.0


@pytest.mark.parametrize("value", [0, 0.0, -1, math.nan, math.inf, -math.inf, True, "5", [1]])
def test_invalid_dead_letter_retention(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ManagerSettings(dead_letter_retention=value)  # type: ignore[arg-type]


def test_dead_letter_retention_has_the_retention_lower_bound() -> None:
    """Like ``retention``: below 1 ms it would become 0 ms, and a failed task's record (and its
    dead-letter entry) would be deleted the moment it fails."""
    with pytest.raises(InvalidArgumentError):
        ManagerSettings(dead_letter_retention=0.0005)
    assert ManagerSettings(dead_letter_retention=0.001).dead_letter_ttl == 0.001


def test_renew_interval_is_a_third_of_the_lease() -> None:
    assert ManagerSettings(lease_timeout=9).renew_interval == 3.0
    assert ManagerSettings().renew_interval == pytest.approx(10.0)


def test_seconds_are_stored_as_float() -> None:
    s = ManagerSettings(lease_timeout=5, retention=60, idle_wait=2)
    assert type(s.lease_timeout) is float
    assert type(s.retention) is float
    assert type(s.idle_wait) is float


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ManagerSettings().namespace = "x"  # type: ignore[misc]


@pytest.mark.parametrize("namespace", ["app", "app-1", "a.b", "ns:sub", "ü"])
def test_valid_namespace(namespace: str) -> None:
    assert ManagerSettings(namespace=namespace).namespace == namespace


@pytest.mark.parametrize("namespace", ["", "a{b", "a}b", "a b", "a\tb", "a\nb", None, 1, b"kew"])
def test_invalid_namespace(namespace: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ManagerSettings(namespace=namespace)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("field", ["lease_timeout", "retention", "idle_wait"])
@pytest.mark.parametrize("value", [0, 0.0, -1, math.nan, math.inf, -math.inf, True, "5", None])
def test_invalid_seconds(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ManagerSettings(**{field: value})  # type: ignore[arg-type]


def test_lease_timeout_lower_bound() -> None:
    with pytest.raises(InvalidArgumentError):
        ManagerSettings(lease_timeout=0.099)
    assert ManagerSettings(lease_timeout=0.1).lease_timeout == 0.1


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "10", None])
def test_invalid_submit_chunk(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ManagerSettings(submit_chunk=value)  # type: ignore[arg-type]


def test_small_positive_values_accepted() -> None:
    s = ManagerSettings(retention=0.001, idle_wait=0.01, submit_chunk=1)
    assert (s.retention, s.idle_wait, s.submit_chunk) == (0.001, 0.01, 1)
