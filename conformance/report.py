"""The areas x backend report printed at the end of a run that includes conformance tests.

One row per area (a ``conformance/test_<area>.py`` file), one column per backend: passed / failed /
skipped, then the reason of every skip. A test counts once, by its worst phase (an error in setup
or teardown is a failure). The backend of this run is the kew-testkit session backend; columns of
other backends come from their latest run of the same areas, kept in pytest's cache
(``.pytest_cache``) and marked "earlier" with the time of that run, so running the suite once per
backend fills the table.

Registered from ``conftest.py`` (``report.register(config)``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ConformanceReport", "note_backend", "register"]

_KEY = pytest.StashKey["ConformanceReport"]()
_CACHE_PREFIX = "kew-conformance/"
_ORDER = {"passed": 0, "skipped": 1, "failed": 2}


def register(config: pytest.Config) -> None:
    """Install the report plugin once per run."""
    if _KEY in config.stash:
        return
    plugin = ConformanceReport(config)
    config.stash[_KEY] = plugin
    config.pluginmanager.register(plugin, "kew-conformance-report")


def note_backend(config: pytest.Config, name: str, description: str) -> None:
    """Record which backend the run's tests use (called by the session fixture)."""
    plugin = config.stash.get(_KEY, None)
    if plugin is not None:
        plugin.backend = name
        plugin.backend_description = description


def _area(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    p = Path(path)
    if p.parent.name != "conformance" or not p.name.startswith("test_"):
        return None
    return p.stem.removeprefix("test_")


def _skip_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@dataclass
class _Area:
    counts: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "skips": dict(self.skips)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Area:
        return cls(Counter(data.get("counts", {})), Counter(data.get("skips", {})))


class ConformanceReport:
    """pytest plugin: collects outcomes of conformance tests and prints the table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.backend = "?"
        self.backend_description = "backend not started"
        self._outcome: dict[str, tuple[str, str, str | None]] = {}  # nodeid -> area, outcome, why

    # -- collecting -------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        area = _area(report.nodeid)
        if area is None:
            return
        if report.when == "call" or report.failed or report.skipped:
            outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
            why = _skip_reason(report) if outcome == "skipped" else None
            old = self._outcome.get(report.nodeid)
            if old is None or _ORDER[outcome] > _ORDER[old[1]]:
                self._outcome[report.nodeid] = (area, outcome, why)

    def _areas(self) -> dict[str, _Area]:
        areas: dict[str, _Area] = defaultdict(_Area)
        for area, outcome, why in self._outcome.values():
            areas[area].counts[outcome] += 1
            if why is not None:
                areas[area].skips[why] += 1
        return dict(areas)

    # -- remembering other backends ---------------------------------------------------------

    def _cache(self) -> Any:
        return getattr(self.config, "cache", None)

    def _load(self, backend: str) -> dict[str, tuple[str, _Area]]:
        cache = self._cache()
        data = cache.get(_CACHE_PREFIX + backend, None) if cache is not None else None
        if not isinstance(data, dict):
            return {}
        return {
            area: (str(v.get("when", "?")), _Area.from_json(v))
            for area, v in data.items()
            if isinstance(v, dict)
        }

    def _previous(self, areas: set[str]) -> dict[str, tuple[str, dict[str, _Area]]]:
        """Other backends' latest results for the areas of this run: name -> (when, areas)."""
        cache = self._cache()
        if cache is None:
            return {}
        found: dict[str, tuple[str, dict[str, _Area]]] = {}
        for name in cache.get(_CACHE_PREFIX + "backends", []):
            if name == self.backend:
                continue
            stored = {a: v for a, v in self._load(name).items() if a in areas}
            if stored:
                when = min(w for w, _ in stored.values())
                found[name] = (when, {a: area for a, (_, area) in stored.items()})
        return found

    def _save(self, areas: dict[str, _Area]) -> None:
        cache = self._cache()
        if cache is None or self.backend == "?" or not areas:
            return
        when = time.strftime("%m-%d %H:%M")
        stored = {a: {"when": w, **v.to_json()} for a, (w, v) in self._load(self.backend).items()}
        stored.update({a: {"when": when, **v.to_json()} for a, v in areas.items()})
        cache.set(_CACHE_PREFIX + self.backend, stored)
        names = set(cache.get(_CACHE_PREFIX + "backends", [])) | {self.backend}
        cache.set(_CACHE_PREFIX + "backends", sorted(names))

    # -- printing ---------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        current = self._areas()
        if not current:
            return
        previous = self._previous(set(current))
        self._save(current)
        columns: list[tuple[str, str, dict[str, _Area]]] = [(self.backend, "this run", current)]
        for name, (when, areas) in sorted(previous.items()):
            columns.append((name, f"earlier {when}", areas))
        for line in self._table(columns):
            terminalreporter.write_line(line)

    def _table(self, columns: list[tuple[str, str, dict[str, _Area]]]) -> list[str]:
        names = sorted({a for _, _, areas in columns for a in areas})
        width = max(len("area"), *(len(n) for n in names))
        cell = 20

        def fmt(area: _Area | None) -> str:
            if area is None:
                return "-".center(cell)
            c = area.counts
            text = f"{c['passed']:>3} / {c['failed']:>2} / {c['skipped']:>2}"
            return (text + (" !" if c["failed"] else "")).ljust(cell)

        head = "area".ljust(width) + " | " + " | ".join(n.ljust(cell) for n, _, _ in columns)
        sub = "".ljust(width) + " | " + " | ".join(w[:cell].ljust(cell) for _, w, _ in columns)
        rule = "-" * len(head)
        lines = [
            "",
            f"kew conformance: passed / failed / skipped per area and backend "
            f"(this run: {self.backend_description})",
            rule,
            head,
            sub,
            rule,
        ]
        totals = [_Area() for _ in columns]
        for name in names:
            row = []
            for i, (_, _, areas) in enumerate(columns):
                area = areas.get(name)
                if area is not None:
                    totals[i].counts.update(area.counts)
                row.append(fmt(area))
            lines.append(name.ljust(width) + " | " + " | ".join(row))
        lines.append(rule)
        lines.append("total".ljust(width) + " | " + " | ".join(fmt(t) for t in totals))
        skips = [
            (backend, name, why, n)
            for backend, _, areas in columns
            for name in names
            if name in areas
            for why, n in sorted(areas[name].skips.items())
        ]
        if skips:
            lines.append("skipped:")
            for backend, name, why, n in skips:
                lines.append(f"  [{backend}] {name} ({n}): {why}")
        return lines
