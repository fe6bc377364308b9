"""The declared public surface: kew.__all__ and every module's __all__ (style rule 6)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import kew
import pytest

DESIGN_NAMES = [
    "TaskQueueManager",
    "QueueConfig",
    "QueuePriority",
    "TaskStatus",
    "TaskInfo",
    "RedisCircuitBreaker",
    "TaskQueueError",
    "TaskAlreadyExistsError",
    "TaskNotFoundError",
    "QueueNotFoundError",
    "QueueProcessorError",
]


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(kew.__path__, "kew."))


def test_all_is_sorted_and_unique() -> None:
    assert list(kew.__all__) == sorted(kew.__all__)
    assert len(set(kew.__all__)) == len(kew.__all__)


def test_every_exported_name_exists() -> None:
    for name in kew.__all__:
        assert hasattr(kew, name), name


def test_star_import() -> None:
    namespace: dict[str, object] = {}
    exec("from kew import *", namespace)
    assert set(kew.__all__) <= set(namespace)


def test_design_names_are_exported() -> None:
    for name in DESIGN_NAMES:
        assert name in kew.__all__, name


def test_exceptions_importable_from_kew_exceptions() -> None:
    from kew.exceptions import (
        QueueNotFoundError,
        QueueProcessorError,
        TaskAlreadyExistsError,
        TaskNotFoundError,
        TaskQueueError,
    )

    assert kew.TaskQueueError is TaskQueueError
    assert kew.TaskAlreadyExistsError is TaskAlreadyExistsError
    assert kew.TaskNotFoundError is TaskNotFoundError
    assert kew.QueueNotFoundError is QueueNotFoundError
    assert kew.QueueProcessorError is QueueProcessorError


def test_models_importable_from_kew_models() -> None:
    from kew.models import QueueConfig, QueuePriority, TaskInfo, TaskStatus

    assert kew.QueueConfig is QueueConfig
    assert kew.QueuePriority is QueuePriority
    assert kew.TaskInfo is TaskInfo
    assert kew.TaskStatus is TaskStatus


def test_version_is_a_string() -> None:
    assert isinstance(kew.__version__, str)
    assert kew.__version__ != ""


def test_there_are_modules() -> None:
    names = _modules()
    for required in ("kew.exceptions", "kew.models", "kew.keys", "kew.scheduling", "kew.store"):
        assert required in names


@pytest.mark.parametrize("module_name", _modules())
def test_module_declares_all_and_its_names_exist(module_name: str) -> None:
    module: ModuleType = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported), module_name
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"


@pytest.mark.parametrize("module_name", _modules())
def test_reexported_names_are_the_same_objects(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        if name in kew.__all__:
            assert getattr(kew, name) is getattr(module, name), f"{module_name}.{name}"


def test_public_exceptions_and_models_are_reexported() -> None:
    """Drift check: a new exception or model class must reach ``kew.__all__``."""
    import kew.exceptions
    import kew.models

    for module in (kew.exceptions, kew.models):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__name__ != "ScriptCode":
                assert name in kew.__all__, f"{module.__name__}.{name} is not in kew.__all__"
