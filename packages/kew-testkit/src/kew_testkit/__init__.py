"""kew-testkit: what an application's test suite needs to test code that uses kew.

A throwaway Redis (:func:`redis_server`, with or without pytest), a virtual clock that makes
deferrals and retry backoffs instant and exact (:class:`FakeClock`), bounded waits
(:func:`wait_for_status`, :func:`drain`), an eager manager (:func:`eager_manager`), readable
assertions, and a pytest plugin (registered on install) with the ``kew_redis_url``,
``kew_manager``, ``kew_manager_factory``, ``kew_eager_manager`` and ``fake_clock`` fixtures.
For Redis Cluster and Sentinel tests: :class:`RedisClusterServer`, :class:`RedisSentinelServer`
(local processes that can be crashed to test failover), the ``cluster`` and ``sentinel``
backends and the ``kew_redis_cluster`` and ``kew_redis_sentinel`` fixtures.
"""

from __future__ import annotations

import importlib.metadata

from .assertions import (
    assert_task_completed,
    assert_task_failed,
    assert_task_status,
    describe_task,
)
from .backends import (
    Backend,
    BackendUnavailableError,
    choose_backend,
    describe_choice,
    docker_available,
    mask_url,
    redis_server,
)
from .clock import FakeClock, Load, Probe
from .cluster import RedisClusterServer, find_redis_cli, key_slot
from .config import BackendName, TestkitConfig, resolve_config
from .eager import EagerManager, eager_manager, run_to_completion
from .managers import LeakedTasksError, ManagerFactory, running_task_ids
from .namespace import delete_namespace, namespace_keys, unique_namespace
from .redis_server import RedisServer, RedisServerError, find_free_port, redis_server_version
from .sentinel import RedisSentinelServer
from .waiting import (
    UnexpectedStatusError,
    drain,
    manager_load,
    wait_for_status,
    wait_until,
    watch_manager,
)

__version__ = importlib.metadata.version("kew-testkit")

__all__ = [
    "Backend",
    "BackendName",
    "BackendUnavailableError",
    "EagerManager",
    "FakeClock",
    "LeakedTasksError",
    "Load",
    "ManagerFactory",
    "Probe",
    "RedisClusterServer",
    "RedisSentinelServer",
    "RedisServer",
    "RedisServerError",
    "TestkitConfig",
    "UnexpectedStatusError",
    "__version__",
    "assert_task_completed",
    "assert_task_failed",
    "assert_task_status",
    "choose_backend",
    "delete_namespace",
    "describe_choice",
    "describe_task",
    "docker_available",
    "drain",
    "eager_manager",
    "find_free_port",
    "find_redis_cli",
    "key_slot",
    "manager_load",
    "mask_url",
    "namespace_keys",
    "redis_server",
    "redis_server_version",
    "resolve_config",
    "run_to_completion",
    "running_task_ids",
    "unique_namespace",
    "wait_for_status",
    "wait_until",
    "watch_manager",
]
