"""The key schema: every key of a queue shares the queue's hash tag; namespace patterns."""

from __future__ import annotations

import fnmatch
import inspect
import re

import pytest
from kew.keys import QueueKeys, namespace_pattern, queues_key

TAG = re.compile(r"\{([^}]*)\}")


NAMESPACE_WIDE = {"id_prefix"}  # task-id keys: one per id across every queue of a namespace


def _queue_keys(qk: QueueKeys) -> dict[str, str]:
    """Every per-queue key name QueueKeys can produce (properties and methods)."""
    keys: dict[str, str] = {}
    for name, member in inspect.getmembers(type(qk)):
        if name.startswith("_") or name in NAMESPACE_WIDE:
            continue
        if isinstance(member, property):
            keys[name] = getattr(qk, name)
    keys["task"] = qk.task("t-1")
    keys["staging"] = qk.staging("b-1")
    return keys


def _hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes (the first non-empty {...})."""
    m = TAG.search(key)
    assert m is not None and m.group(1), key
    return m.group(1)


@pytest.mark.parametrize(
    ("namespace", "queue"),
    [("kew", "orders"), ("app-1", "emails:eu"), ("x", "a b"), ("kew", "ü-queue")],
)
def test_every_queue_key_carries_the_same_tag(namespace: str, queue: str) -> None:
    qk = QueueKeys(namespace, queue)
    keys = _queue_keys(qk)
    assert {"ready", "scheduled", "leased", "wake", "meta", "breaker", "events"} <= set(keys)
    for name, key in keys.items():
        assert key.startswith(f"{namespace}:"), name
        assert _hash_tag(key) == queue, name
        # the tag is the first brace pair: nothing before it may open another tag
        assert key.index("{") == len(namespace) + 1, name


def test_key_names_are_distinct_and_exact() -> None:
    qk = QueueKeys("kew", "orders")
    keys = _queue_keys(qk)
    names = [v for k, v in keys.items() if k != "task_prefix"]
    assert len(set(names)) == len(names)
    assert qk.base == "kew:{orders}"
    assert qk.ready == "kew:{orders}:ready"
    assert qk.scheduled == "kew:{orders}:scheduled"
    assert qk.leased == "kew:{orders}:leased"
    assert qk.wake == "kew:{orders}:wake"
    assert qk.meta == "kew:{orders}:meta"
    assert qk.breaker == "kew:{orders}:breaker"
    assert qk.events == "kew:{orders}:events"
    assert qk.task("a:b") == "kew:{orders}:task:a:b"
    assert qk.task("a") == qk.task_prefix + "a"
    assert qk.staging("z") == "kew:{orders}:staging:z"


def test_queues_of_one_namespace_do_not_share_keys() -> None:
    a = set(_queue_keys(QueueKeys("kew", "a")).values())
    b = set(_queue_keys(QueueKeys("kew", "b")).values())
    assert not a & b


def test_queues_key_is_in_the_namespace() -> None:
    assert queues_key("kew") == "kew:queues"
    assert fnmatch.fnmatchcase(queues_key("kew"), "kew:*")


def test_namespace_pattern_plain() -> None:
    assert namespace_pattern("kew") == "kew:{*"


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("a*b", r"a\*b:{*"),
        ("a?b", r"a\?b:{*"),
        ("a[b]", r"a\[b\]:{*"),
        ("a\\b", "a\\\\b:{*"),
        ("*", r"\*:{*"),
    ],
)
def test_namespace_pattern_escapes_glob_characters(namespace: str, expected: str) -> None:
    assert namespace_pattern(namespace) == expected


def _redis_glob_match(pattern: str, key: str) -> bool:
    """Redis' stringmatch for the subset used here: escapes, '*', '?' and '[...]'."""
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        if c == "*":
            regex += ".*"
        elif c == "?":
            regex += "."
        elif c == "[":
            j = pattern.index("]", i)
            regex += "[" + re.escape(pattern[i + 1 : j]) + "]"
            i = j
        else:
            regex += re.escape(c)
        i += 1
    return re.fullmatch(regex, key, re.S) is not None


@pytest.mark.parametrize("namespace", ["a*", "a?", "[ab]", "k\\w", "plain"])
def test_namespace_pattern_matches_only_its_namespace(namespace: str) -> None:
    pattern = namespace_pattern(namespace)
    own = QueueKeys(namespace, "q")
    for key in (own.ready, own.task("t:1"), own.staging("b"), own.meta):
        assert _redis_glob_match(pattern, key), key
    for other in ("aX", "a!", "a", "b", "kw", "k\\\\w", "other"):
        if other == namespace:
            continue
        assert not _redis_glob_match(pattern, QueueKeys(other, "q").ready), other


def test_namespace_pattern_does_not_match_a_longer_namespace() -> None:
    pattern = namespace_pattern("app")
    assert _redis_glob_match(pattern, QueueKeys("app", "q").ready)
    assert not _redis_glob_match(pattern, QueueKeys("app:staging", "q").ready)
    assert not _redis_glob_match(pattern, queues_key("app:staging"))
    assert not _redis_glob_match(pattern, QueueKeys("app-2", "q").ready)


def test_task_id_keys_are_namespace_wide_and_never_collide_with_a_queue() -> None:
    """Ids are unique across a namespace's queues; their keys use the empty tag ``{}``, which no
    queue can have (queue names are non-empty), and are matched by the namespace pattern."""
    a, b = QueueKeys("kew", "a"), QueueKeys("kew", "b")
    assert a.id_prefix == b.id_prefix == "kew:{}:id:"
    assert fnmatch.fnmatchcase(a.id_prefix + "t-1", namespace_pattern("kew"))
    assert not fnmatch.fnmatchcase(a.id_prefix + "t-1", namespace_pattern("other"))
    assert QueueKeys("kew2", "a").id_prefix != a.id_prefix
