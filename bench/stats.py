"""From a run's raw records to medians, ranges and kew's ratios (pure; no I/O).

kew's *advantage* over a peer for a figure, in one round, is ``kew / peer`` for a rate and
``peer / kew`` for a latency or a memory size: above 1 kew is better, whatever the unit. Ratios
are taken per round (the peers ran minutes apart at most) and then summarized, because on a
noisy machine absolute figures drift while ratios within one round hold.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .scenarios import BY_ID, SCENARIOS, Metric

__all__ = [
    "KEW",
    "Summary",
    "ceiling_values",
    "figure_keys",
    "metric_of",
    "summarize",
]

KEW = "kew"
CEILINGS = {
    "evalsha_seq": "one client, sequential EVALSHA",
    "evalsha_paired": "one client, sequential EVALSHA, in blocks alternating with kew's submits",
    "set_seq": "one client, sequential SET",
    "set_pipelined": "one client, pipelined SET (1000 per pipeline)",
    "redis_benchmark_c1": "redis-benchmark SET, 1 client",
    "redis_benchmark_c50": "redis-benchmark SET, 50 clients",
}
# kew figure -> the ceiling it is shown against. Sequential enqueue is compared with the EVALSHA
# rate measured alongside it (scenarios.enqueue_seq); runs made before that existed fall back to
# the once-per-round figure (FALLBACK).
CEILING_OF = {
    "enqueue_seq.rate": "evalsha_paired",
    "enqueue_gather.rate": "redis_benchmark_c50",
    "enqueue_batch.rate": "set_pipelined",
}
FALLBACK = {"evalsha_paired": "evalsha_seq"}


@dataclass(frozen=True)
class Range:
    """Median and extremes of some values (one per round)."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Range | None:
        vals = [v for v in values if v is not None]
        if not vals:
            return None
        return cls(statistics.median(vals), min(vals), max(vals), len(vals))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": self.count}


def figure_keys() -> list[str]:
    """Every ``scenario.metric`` in catalogue order."""
    return [f"{sc.id}.{m.key}" for sc in SCENARIOS for m in sc.metrics]


def metric_of(key: str) -> Metric:
    scenario, _, metric = key.partition(".")
    return next(m for m in BY_ID[scenario].metrics if m.key == metric)


def _per_round(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[int, float]]]:
    """``{library: {figure: {round: value}}}`` of the successful measurements."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for rec in records:
        r = rec.get("result")
        if not r or "unsupported" in r:
            continue
        for m in BY_ID[rec["scenario"]].metrics:
            v = r.get(m.key)
            if isinstance(v, int | float):
                out.setdefault(rec["library"], {}).setdefault(f"{rec['scenario']}.{m.key}", {})[
                    rec["round"]
                ] = float(v)
    return out


def ceiling_values(
    ceilings: list[dict[str, Any]], env: str = KEW, records: Iterable[dict[str, Any]] = ()
) -> dict[str, dict[int, float]]:
    """``{ceiling: {round: value}}`` as measured with ``env``'s redis-py (and redis-benchmark);
    ``evalsha_paired`` comes from ``env``'s sequential-enqueue records."""
    out: dict[str, dict[int, float]] = {}
    for rec in records:
        r = rec.get("result") or {}
        if rec["library"] == env and isinstance(r.get("evalsha_paired"), int | float):
            out.setdefault("evalsha_paired", {})[rec["round"]] = float(r["evalsha_paired"])
    for row in ceilings:
        rnd = row["round"]
        for key, v in (row.get(env) or {}).items():
            if key in CEILINGS and isinstance(v, int | float):
                out.setdefault(key, {})[rnd] = float(v)
        for c in ("c1", "c50"):
            rb = row.get(f"redis_benchmark_{c}") or {}
            if isinstance(rb.get("set"), int | float):
                out.setdefault(f"redis_benchmark_{c}", {})[rnd] = float(rb["set"])
    return out


def _advantage(kew: float, peer: float, higher_is_better: bool) -> float | None:
    if kew <= 0 or peer <= 0:
        return None
    return kew / peer if higher_is_better else peer / kew


@dataclass
class Summary:
    """Everything the report, the plot and the gate read.

    Attributes:
        figures: ``{library: {figure: Range}}``.
        ratios: ``{peer: {figure: Range of per-round advantages}}`` (kew vs that peer).
        fastest: ``{figure: Range}`` of kew's advantage over the best peer of each round.
        ceilings: ``{env: {ceiling: Range}}``.
        shares: ``{figure: Range}`` of kew's figure as a fraction of its ceiling.
        share_basis: ``{figure: ceiling}`` the ceiling each share was taken of (CEILING_OF's,
            or its FALLBACK in runs that did not measure it).
        commands: ``{library: {scenario: commands per task}}`` (median over rounds).
        peers: the libraries compared with kew.
        variant_ratios: ``{kew variant: {peer: {figure: Range}}}`` for the other kew
            configurations measured (``kew-redis5``), as ``ratios`` is for ``kew``.
    """

    figures: dict[str, dict[str, Range]]
    ratios: dict[str, dict[str, Range]]
    fastest: dict[str, Range]
    ceilings: dict[str, dict[str, Range]]
    shares: dict[str, Range]
    commands: dict[str, dict[str, float]]
    peers: list[str]
    variant_ratios: dict[str, dict[str, dict[str, Range]]] = field(default_factory=dict)
    share_basis: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def conv(d: dict[str, Any]) -> dict[str, Any]:
            return {k: (v.as_dict() if isinstance(v, Range) else conv(v)) for k, v in d.items()}

        return {
            "figures": conv(self.figures),
            "ratios": conv(self.ratios),
            "fastest": conv(self.fastest),
            "ceilings": conv(self.ceilings),
            "shares": conv(self.shares),
            "commands": self.commands,
            "peers": self.peers,
            "variant_ratios": conv(self.variant_ratios),
            "share_basis": self.share_basis,
        }


# scenarios whose Redis command counts the report divides per task; pickup's count shows what a
# library sends while its worker idles between tries (a polling worker sends many)
COMMAND_SCENARIOS = ("enqueue_seq", "e2e_local", "pickup")


def _commands(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    per: dict[str, dict[str, list[float]]] = {}
    for rec in records:
        r = rec.get("result")
        if not r or "unsupported" in r or rec["scenario"] not in COMMAND_SCENARIOS:
            continue
        if rec["scenario"] == "pickup":  # its tries, plus the 3 warm-up tries before them
            tasks = r["tries"] + 3
        else:
            tasks = rec["params"]["n"] + rec["params"].get("warmup", 50)
        total = sum(rec.get("commands", {}).values())
        per.setdefault(rec["library"], {}).setdefault(rec["scenario"], []).append(total / tasks)
    return {lib: {sc: statistics.median(v) for sc, v in scs.items()} for lib, scs in per.items()}


def _advantages(
    per: dict[str, dict[str, dict[int, float]]], kew_lib: str, peers: list[str]
) -> tuple[dict[str, dict[str, Range]], dict[str, Range]]:
    """``kew_lib``'s per-round advantage over each peer, and over the best peer of each round."""
    kew = per.get(kew_lib, {})
    ratio_lists: dict[str, dict[str, list[float]]] = {}
    fastest: dict[str, Range] = {}
    for key in figure_keys():
        m = metric_of(key)
        if key.startswith("crash."):
            continue
        best_adv: list[float] = []
        for rnd, kval in kew.get(key, {}).items():
            advs = []
            for p in peers:
                pv = per.get(p, {}).get(key, {}).get(rnd)
                if pv is not None and (a := _advantage(kval, pv, m.higher_is_better)):
                    advs.append(a)
                    ratio_lists.setdefault(p, {}).setdefault(key, []).append(a)
            if advs:
                best_adv.append(min(advs))
        if (r := Range.of(best_adv)) is not None:
            fastest[key] = r
    ratios = {
        p: {k: r for k, v in d.items() if (r := Range.of(v)) is not None}
        for p, d in ratio_lists.items()
    }
    return ratios, fastest


def summarize(doc: dict[str, Any]) -> Summary:
    """Summarize a run document (see :func:`bench.harness.run_plan`)."""
    per = _per_round(doc["records"])
    libs = list(doc["libraries"])
    peers = [lib for lib in libs if not lib.startswith(KEW)]
    figures = {
        lib: {key: r for key, vals in per.get(lib, {}).items() if (r := Range.of(vals.values()))}
        for lib in libs
    }
    ratios, fastest = _advantages(per, KEW, peers)
    variants = {v: _advantages(per, v, peers)[0] for v in libs if v.startswith(KEW) and v != KEW}
    ceilings: dict[str, dict[str, Range]] = {}
    shares: dict[str, Range] = {}
    basis: dict[str, str] = {}
    for env in [KEW, "kew-redis5"]:
        cv = ceiling_values(doc["ceilings"], env, doc["records"])
        if env != KEW and not any(env in row for row in doc["ceilings"]):
            continue
        ceilings[env] = {k: r for k, v in cv.items() if (r := Range.of(v.values()))}
        for key, ceil in CEILING_OF.items():
            if ceil not in cv:
                ceil = FALLBACK.get(ceil, ceil)
            kvals = per.get(env, {}).get(key, {})
            fr = [kvals[rnd] / cv[ceil][rnd] for rnd in kvals if rnd in cv.get(ceil, {})]
            if (r := Range.of(fr)) is not None:
                name = key if env == KEW else f"{env}:{key}"
                shares[name], basis[name] = r, ceil
    return Summary(
        figures,
        ratios,
        fastest,
        ceilings,
        shares,
        _commands(doc["records"]),
        peers,
        variants,
        basis,
    )
