"""The public surface: one sorted ``__all__`` that re-exports every module's ``__all__``."""

from __future__ import annotations

import importlib

import kew_testkit

MODULES = [
    "assertions",
    "backends",
    "clock",
    "cluster",
    "config",
    "eager",
    "managers",
    "namespace",
    "redis_server",
    "sentinel",
    "waiting",
]


def test_all_is_sorted_and_resolves() -> None:
    assert kew_testkit.__all__ == sorted(kew_testkit.__all__)
    for name in kew_testkit.__all__:
        assert hasattr(kew_testkit, name), name


def test_every_module_export_is_re_exported() -> None:
    exported = {"__version__"}
    for module in MODULES:
        exported |= set(importlib.import_module(f"kew_testkit.{module}").__all__)
    assert exported == set(kew_testkit.__all__)


def test_public_objects_have_docstrings() -> None:
    for name in kew_testkit.__all__:
        obj = getattr(kew_testkit, name)
        if (callable(obj) and not name[0].isupper()) or isinstance(obj, type):
            assert obj.__doc__, f"{name} has no docstring"
