"""The gate: reads ``bench/gates.toml`` and checks a run's summary against every bar."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .peers import LIBRARIES
from .stats import CEILING_OF, KEW, Summary

__all__ = ["GATES_FILE", "Verdict", "check", "load_bars"]

GATES_FILE = Path(__file__).with_name("gates.toml")


@dataclass(frozen=True)
class Verdict:
    """One bar's outcome: ``status`` is ``pass``, ``FAIL`` or ``skipped``."""

    name: str
    status: str
    value: float | None
    bound: str
    detail: str


def load_bars(path: Path = GATES_FILE) -> list[dict[str, Any]]:
    """The ``[[bar]]`` tables of the gates file."""
    with open(path, "rb") as f:
        bars: list[dict[str, Any]] = tomllib.load(f).get("bar", [])
    for bar in bars:
        if not {"name", "figure", "against"} <= bar.keys() or not (
            "at_least" in bar or "at_most" in bar
        ):
            raise ValueError(f"{path}: incomplete bar {bar}")
    return bars


# "The fastest peer" is the fastest of the default peers; each of them must have run
DEFAULT_PEERS = tuple(lib.name for lib in LIBRARIES if lib.default and not lib.is_kew)


def _observed(bar: dict[str, Any], s: Summary) -> tuple[float | None, str]:
    fig, against = bar["figure"], bar["against"]
    if against == "absolute":
        r = s.figures.get(KEW, {}).get(fig)
        return (None, "kew has no figure") if r is None else (r.high, f"worst of {r.count} rounds")
    if against == "ceiling":
        r = s.shares.get(fig)
        ceil = s.share_basis.get(fig) or CEILING_OF.get(fig, "?")
        return (None, f"no {ceil} share") if r is None else (r.median, f"share of {ceil}")
    if against == "fastest":
        absent = [p for p in DEFAULT_PEERS if fig not in s.figures.get(p, {})]
        if absent:  # a peer that did not run (or install) must not make the bar easier
            return None, f"not measured: {', '.join(absent)}"
        r = s.fastest.get(fig)
        if r is None:
            kew_ran = fig in s.figures.get(KEW, {})
            return None, "no peer measured" if kew_ran else "kew not measured"
        return r.median, "vs best peer per round"
    variant = bar.get("kew", KEW)
    table = s.ratios if variant == KEW else s.variant_ratios.get(variant, {})
    r = table.get(against, {}).get(fig)
    label = f"vs {against}" if variant == KEW else f"{variant} vs {against}"
    return (None, f"{variant} or {against} not measured") if r is None else (r.median, label)


def check(s: Summary, bars: list[dict[str, Any]] | None = None) -> list[Verdict]:
    """Judge every bar; a missing kew figure fails, a missing optional peer skips."""
    out = []
    for bar in load_bars() if bars is None else bars:
        value, detail = _observed(bar, s)
        if "at_least" in bar:
            bound = f">= {bar['at_least']:g}"
            ok = value is not None and value >= bar["at_least"]
        else:
            bound = f"<= {bar['at_most']:g}"
            ok = value is not None and value <= bar["at_most"]
        kew_missing = s.figures.get(bar.get("kew", KEW), {}).get(bar["figure"]) is None
        if value is None and not kew_missing and not bar.get("required", False):
            status = "skipped"
        else:
            status = "pass" if ok else "FAIL"
        out.append(Verdict(bar["name"], status, value, bound, detail))
    return out
