"""bench/stats.py: kew's share of the EVALSHA ceiling is taken against the rate measured
alongside its submits when the run has it (issue 5: a once-per-round ceiling, measured at
another moment on a shared machine, made the bar flaky), else against the round's figure."""

from __future__ import annotations

from typing import Any

import pytest

from bench.gates import check
from bench.stats import summarize


def run(paired: list[float | None]) -> dict[str, Any]:
    records = []
    for rnd, (rate, pair) in enumerate(zip([9000.0, 8000.0, 6000.0], paired, strict=True), 1):
        result: dict[str, Any] = {"rate": rate, "p50_ms": 0.1, "p99_ms": 0.2}
        if pair is not None:
            result["evalsha_paired"] = pair
        records.append(
            {
                "library": "kew",
                "scenario": "enqueue_seq",
                "round": rnd,
                "result": result,
                "params": {"n": 1000},
            }
        )
    ceilings = [{"round": r, "kew": {"evalsha_seq": 10000.0}} for r in (1, 2, 3)]
    return {"records": records, "libraries": {"kew": {}}, "ceilings": ceilings}


def test_the_share_uses_the_paired_ceiling() -> None:
    s = summarize(run([9000.0, 10000.0, 6000.0]))
    share = s.shares["enqueue_seq.rate"]
    assert (share.median, share.low, share.high) == pytest.approx((1.0, 0.8, 1.0))
    assert s.share_basis["enqueue_seq.rate"] == "evalsha_paired"
    assert s.ceilings["kew"]["evalsha_paired"].median == pytest.approx(9000.0)
    verdict = next(v for v in check(s) if "EVALSHA" in v.name)
    assert verdict.detail == "share of evalsha_paired"


def test_a_run_without_it_falls_back_to_the_round_ceiling() -> None:
    s = summarize(run([None, None, None]))
    share = s.shares["enqueue_seq.rate"]
    assert (share.median, share.low, share.high) == pytest.approx((0.8, 0.6, 0.9))
    assert s.share_basis["enqueue_seq.rate"] == "evalsha_seq"
