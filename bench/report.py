"""Tables of a run: markdown (README, job summary) and rich (the terminal), from one model.

Every table is built once as a title, a header row and body rows of strings; :func:`markdown`
and :func:`print_rich` only render them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .gates import Verdict
from .scenarios import BY_ID
from .stats import CEILING_OF, CEILINGS, KEW, Range, Summary, figure_keys, metric_of

__all__ = ["Table", "markdown", "print_rich", "tables"]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _num(v: float, unit: str) -> str:
    if unit in ("tasks/s", "ops/s"):
        return f"{v:,.0f}"
    if unit == "ms":
        return f"{v:.2f}" if v < 100 else f"{v:,.0f}"
    if unit in ("MiB", "s"):
        return f"{v:.1f}"
    if unit == "x":
        return f"{v:.2f}"
    if unit == "%":
        return f"{v * 100:.0f}"
    return f"{v:g}"


def _cell(r: Range | None, unit: str) -> str:
    if r is None:
        return "—"
    if r.count == 1 or r.low == r.high:
        return _num(r.median, unit)
    return f"{_num(r.median, unit)} ({_num(r.low, unit)}-{_num(r.high, unit)})"


def _label(key: str) -> str:
    sc, _, _ = key.partition(".")
    m = metric_of(key)
    title = BY_ID[sc].title
    return f"{title}: {m.label} ({m.unit})" if m.label != "throughput" else f"{title} ({m.unit})"


def _figures(doc: dict[str, Any], s: Summary) -> Table:
    libs = list(doc["libraries"])
    rows = []
    for key in figure_keys():
        if key.startswith("crash."):
            continue
        cells = [_cell(s.figures.get(lib, {}).get(key), metric_of(key).unit) for lib in libs]
        if any(c != "—" for c in cells):
            rows.append([_label(key), *cells])
    return Table(
        "Figures: median (min-max) over rounds",
        ["", *libs],
        rows,
        "A dash: not measured (no such API, a setting that changes nothing there, or a failure "
        "listed below).",
    )


def _ratios(s: Summary) -> Table:
    peers = [p for p in s.peers if p in s.ratios]
    rows = []
    for key in figure_keys():
        if key.startswith("crash."):
            continue
        cells = [_cell(s.ratios[p].get(key), "x") for p in peers]
        fast = _cell(s.fastest.get(key), "x")
        if any(c != "—" for c in cells):
            rows.append([_label(key), *cells, fast])
    return Table(
        "kew's advantage, per round then summarized: median (min-max)",
        ["", *peers, "best peer"],
        rows,
        "kew / peer for rates, peer / kew for latencies and memory: above 1 kew is better. "
        "'best peer' compares kew with the best peer of each round.",
    )


def _ceilings(doc: dict[str, Any], s: Summary) -> Table:
    envs = list(s.ceilings)
    head = []
    for env in envs:
        versions = doc["libraries"].get(env, {}).get("versions", {})
        head.append(f"{env} env (redis-py {versions.get('redis', '?')})")
    rows = []
    for key, label in CEILINGS.items():
        cells = [_cell(s.ceilings[env].get(key), "ops/s") for env in envs]
        if any(c != "—" for c in cells):
            rows.append([f"{label} (ops/s)", *cells])
    for key in CEILING_OF:
        for env in envs:
            name = key if env == KEW else f"{env}:{key}"
            share = s.shares.get(name)
            if share is not None:
                rows.append(
                    [
                        f"{env}: {_label(key)} as % of {s.share_basis.get(name, CEILING_OF[key])}",
                        *(_cell(share, "%") if e == env else "" for e in envs),
                    ]
                )
    return Table(
        "Ceilings of this machine, measured in the same run",
        ["", *head],
        rows,
        "redis-benchmark rows do not depend on the Python environment.",
    )


def _commands(doc: dict[str, Any], s: Summary) -> Table:
    libs = [lib for lib in doc["libraries"] if lib in s.commands]
    rows = []
    for sc, label in (
        ("enqueue_seq", "per submit (sequential enqueue)"),
        ("e2e_local", "per task, enqueue + processing (end to end in one loop)"),
        ("pickup", "per pickup try, worker idle 2-20 ms between tries (pickup latency)"),
    ):
        cells = [f"{s.commands[lib][sc]:.1f}" if sc in s.commands[lib] else "—" for lib in libs]
        rows.append([label, *cells])
    return Table(
        "Redis commands per task (INFO commandstats)",
        ["", *libs],
        rows,
        "Commands run inside Lua scripts count too; background polling and heartbeats during "
        "the measurement are included.",
    )


def _crash(doc: dict[str, Any]) -> Table:
    rows = []
    for rec in doc["records"]:
        if rec["scenario"] != "crash":
            continue
        r = rec["result"]
        if r is None:
            rows.append([rec["library"], str(rec["round"]), "failed", "", "", "", rec["error"]])
            continue
        rec_s = "—" if r.get("recovery_s") is None else f"{r['recovery_s']:.1f}"
        rows.append([
            rec["library"], str(rec["round"]), str(r["lost"]), str(r["completed_twice"]),
            str(r["restarted"]), rec_s, f"window {r['window_s']:.0f} s",
        ])  # fmt: skip
    n = doc["plan"]["sizes"].get("crash", "?")
    rec_s = doc["plan"]["recovery_s"]
    return Table(
        f"Crash: {n} tasks of 20 ms on 2 worker processes, the busier one SIGKILLed half way",
        [
            "library",
            "round",
            "lost",
            "completed twice",
            "started twice",
            "all done after kill (s)",
            "",
        ],
        rows,
        f"Each library's recovery setting (lease / visibility / stall timeout) is {rec_s:g} s. "
        "Lost: never completed within the window. Completed twice: the task body ran to the end "
        "twice. Started twice: re-run after the kill (at-least-once delivery).",
    )


def _scale(doc: dict[str, Any], s: Summary) -> Table:
    recs = [
        r
        for r in doc["records"]
        if r["scenario"] == "scale" and r["result"] and "unsupported" not in r["result"]
    ]
    rows = []
    for lib in dict.fromkeys(r["library"] for r in recs):
        mine = [r["result"] for r in recs if r["library"] == lib]
        figs = s.figures.get(lib, {})
        for target, label in (("single", "1 Redis"), ("cluster", "3-master cluster")):
            rows.append([
                f"{lib}, {label}",
                _cell(figs.get(f"scale.{target}_rate"), "tasks/s"),
                _cell(Range.of(r.get(f"{target}_submit_s") for r in mine), "s"),
                _cell(Range.of(r.get(f"{target}_seconds") for r in mine), "s"),
            ])  # fmt: skip
        rows.append([f"{lib}: cluster / 1 Redis", _cell(figs.get("scale.cluster_ratio"), "x")])
        rows[-1] += ["", ""]
    facts: dict[str, Any] = next(
        (r["result"]["cluster"] for r in recs if r["result"].get("cluster")), {}
    )
    spread = "; ".join(f"{m}: {', '.join(qs)}" for m, qs in facts.get("spread", {}).items())
    n = doc["plan"]["sizes"].get("scale", "?")
    cores = doc["machine"]["cores"]
    return Table(
        f"Scale: {n} no-op tasks round-robin over 8 queues, 4 worker processes, "
        "1 Redis vs a 3-master Redis Cluster",
        ["", "throughput (tasks/s)", "all submitted after (s)", "all done after (s)"],
        rows,
        "Every worker process consumes all 8 queues (concurrency "
        f"{doc['plan']['concurrency']} per queue); one producer sends batches (submit_tasks, "
        "100 per queue, the 8 queues' calls gathered); throughput counts from the first submit "
        "until every result is stored. The two runs of a round are back to back, their order "
        "alternating from round to round; the ratio is taken per round. The cluster is started "
        f"for each measurement ({facts.get('describe', 'not started')}); queues by master: "
        f"{spread or '?'}. Only kew runs this: arq cannot run on Redis Cluster, and the other "
        f"peers' drivers here connect to one Redis. This machine has {cores} cores: the "
        "cluster's 3 redis-server processes, the 4 workers and the producer share them, so the "
        "cluster gets no extra CPU here and may well come out slower than one Redis; that is "
        "what this machine measures, not what 3 masters on 3 hosts would do. When 'all "
        "submitted after' is close to 'all done after', the one producer bounds the figure.",
    )


def _failures(doc: dict[str, Any]) -> Table | None:
    rows = [
        [rec["library"], rec["scenario"], str(rec["round"]), str(rec["error"])[:300]]
        for rec in doc["records"]
        if rec["result"] is None or rec["error"]  # scale: one of its two runs may fail
    ]
    rows += [[lib, "(all)", "", f"skipped: {why}"] for lib, why in doc["skipped"].items()]
    if not rows:
        return None
    return Table("Failed or skipped", ["library", "scenario", "round", "reason"], rows)


def _gate(verdicts: list[Verdict]) -> Table:
    rows = [
        [v.name, "—" if v.value is None else f"{v.value:.2f}", v.bound, v.status, v.detail]
        for v in verdicts
    ]
    return Table("Gate (bench/gates.toml)", ["bar", "observed", "bound", "status", ""], rows)


def header(doc: dict[str, Any]) -> list[str]:
    """Lines describing the run: when, where, what."""
    m, p = doc["machine"], doc["plan"]
    libs = []
    for name, info in doc["libraries"].items():
        v = info["versions"]
        core = v.get(name.split("-")[0]) or v.get("kew", "")
        client = ", ".join(f"{k} {v[k]}" for k in ("redis", "hiredis", "coredis") if k in v)
        note = f"; {info['note']}" if info.get("note") else ""
        libs.append(f"{name} {core} ({client}{note})")
    commit = f", commit {m['commit']}" if m.get("commit") else ""
    return [
        f"Run {doc['started']} ({doc['duration_s'] / 60:.1f} min{commit}): `{doc['command']}`",
        f"{p['mode']} mode, {p['rounds']} rounds, {p['loop']} loop, concurrency "
        f"{p['concurrency']}, sizes {', '.join(f'{k} {v}' for k, v in p['sizes'].items())}",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"{doc['server']['describe']}",
        "Libraries: " + "; ".join(libs),
    ]


def tables(doc: dict[str, Any], s: Summary, verdicts: list[Verdict] | None) -> list[Table]:
    """Every table of the report, in order."""
    out = [_figures(doc, s), _ratios(s), _ceilings(doc, s), _commands(doc, s)]
    if any(rec["scenario"] == "crash" for rec in doc["records"]):
        out.append(_crash(doc))
    if any(rec["scenario"] == "scale" and rec["result"] for rec in doc["records"]):
        out.append(_scale(doc, s))
    if (f := _failures(doc)) is not None:
        out.append(f)
    if verdicts is not None:
        out.append(_gate(verdicts))
    return out


def markdown(doc: dict[str, Any], s: Summary, verdicts: list[Verdict] | None = None) -> str:
    """The whole report as GitHub-flavoured markdown."""
    lines = ["## kew benchmark", ""]
    lines += [f"- {h}" for h in header(doc)]
    for t in tables(doc, s, verdicts):
        lines += ["", f"### {t.title}", ""]
        lines.append("| " + " | ".join(t.header) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "--:" for i in range(len(t.header))) + "|")
        for row in t.rows:
            lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
        if t.note:
            lines += ["", t.note]
    return "\n".join(lines) + "\n"


def print_rich(doc: dict[str, Any], s: Summary, verdicts: list[Verdict] | None = None) -> None:
    """Print the report with rich (falls back to markdown text when rich is missing)."""
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table as RichTable
    except ImportError:
        print(markdown(doc, s, verdicts))
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.rule("kew benchmark")
    for h in header(doc):
        console.print(h.replace("`", ""), highlight=False)
    for t in tables(doc, s, verdicts):
        rt = RichTable(title=t.title, box=box.SIMPLE_HEAVY, title_justify="left")
        for i, h in enumerate(t.header):
            rt.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
        for row in t.rows:
            styled = [
                f"[bold red]{c}[/]" if c == "FAIL" else f"[green]{c}[/]" if c == "pass" else c
                for c in row
            ]
            rt.add_row(*styled)
        console.print(rt)
        if t.note:
            console.print(f"[dim]{t.note}[/]")
