"""``python -m bench``: kew head to head with its peers, in one run, as ratios.

Examples (from the repository root)::

    uv run python -m bench                       # quick: about 2-3 minutes
    uv run python -m bench --full                # the issue's sizes, 5 rounds
    uv run --group bench python -m bench --plot bench.png --json bench.json --gate
    uv run python -m bench --libs kew,arq --scenarios enqueue_seq,e2e_local
    uv run python -m bench --report bench.json   # re-render a saved run (and --gate it)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from .gates import check
from .harness import Plan, prepare_envs, run_plan
from .peers import LIBRARIES, by_name
from .report import markdown, print_rich
from .scenarios import BY_ID, SCENARIOS
from .stats import summarize

ALL_SCENARIOS = [sc.id for sc in SCENARIOS]
QUICK_SCENARIOS = [sc.id for sc in SCENARIOS if sc.quick]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="the issue's task counts, 5 rounds")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --full 5)")
    p.add_argument(
        "--redis-url", default=None, help="use this Redis (never flushed) instead of starting one"
    )
    p.add_argument(
        "--libs",
        default=None,
        help="comma-separated libraries (default: "
        + ",".join(lib.name for lib in LIBRARIES if lib.default)
        + ")",
    )
    p.add_argument(
        "--scenarios",
        default=None,
        help=f"comma-separated scenarios of {','.join(ALL_SCENARIOS)} (default: "
        f"all with --full, else {','.join(QUICK_SCENARIOS)})",
    )
    p.add_argument("--uvloop", action="store_true", help="run every library on uvloop")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every task count")
    p.add_argument(
        "--recovery",
        type=float,
        default=2.0,
        help="crash scenario: seconds of lease / visibility timeout (default 2)",
    )
    p.add_argument(
        "--crash-rounds",
        type=int,
        default=None,
        help="rounds that include the crash scenario (default 1, --full all)",
    )
    p.add_argument(
        "--crash-peers",
        action="store_true",
        help="run the crash scenario for the peers too (default with --full)",
    )
    p.add_argument("--json", metavar="PATH", help="write the run (raw + summary) as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the report as markdown")
    p.add_argument("--plot", metavar="PATH", help="write a grouped bar chart (PNG)")
    p.add_argument("--gate", action="store_true", help="exit 1 when kew misses a bar")
    p.add_argument("--report", metavar="JSON", help="re-render a saved --json run; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _select_libs(arg: str | None) -> list[Any]:
    if not arg:
        return [lib for lib in LIBRARIES if lib.default]
    try:
        libs = [by_name(n.strip()) for n in arg.split(",") if n.strip()]
    except KeyError as exc:
        raise SystemExit(f"--libs: {exc.args[0]}") from None
    if not any(lib.name == "kew" for lib in libs):
        libs.insert(0, by_name("kew"))
    return libs


def _select_scenarios(arg: str | None, full: bool) -> list[Any]:
    if not arg:
        return [sc for sc in SCENARIOS if full or sc.quick]
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_ID]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {ALL_SCENARIOS}")
    return [sc for sc in SCENARIOS if sc.id in names]


# options that only shape a run (meaningless with --report), and the fewest tasks a scenario
# may be scaled down to
_RUN_ONLY = (
    "full", "rounds", "redis_url", "libs", "scenarios", "uvloop", "scale", "recovery",
    "crash_rounds", "crash_peers",
)  # fmt: skip
_MIN_TASKS = 20


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad options before anything runs (a run takes minutes; its outputs come last).

    Raises:
        SystemExit: naming the option and what is wrong with it.
    """
    for name in ("rounds", "crash_rounds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    for name in ("scale", "recovery"):
        value = getattr(args, name)
        if not (value > 0 and math.isfinite(value)):
            raise SystemExit(f"--{name} must be a positive number, not {value}")
    if args.report:
        _check_report_alone(args)
    else:
        _check_selection(args)
    for name in ("json", "markdown", "plot"):
        if (path := getattr(args, name)) is not None:
            _check_writable(f"--{name}", path)
    needs = [("--plot", "matplotlib", args.plot), ("--uvloop", "uvloop", args.uvloop)]
    for option, module, wanted in needs:
        if wanted and importlib.util.find_spec(module) is None:
            raise SystemExit(
                f"{option} needs {module}: run with `uv run --group bench python -m bench ...`"
            )
    if args.redis_url and not args.report:
        _check_redis(args.redis_url)


def _check_report_alone(args: argparse.Namespace) -> None:
    defaults = _parser()
    given = [
        f"--{n.replace('_', '-')}" for n in _RUN_ONLY if getattr(args, n) != defaults.get_default(n)
    ]
    if given:
        raise SystemExit(f"--report runs nothing: {', '.join(given)} would be ignored")


def _check_selection(args: argparse.Namespace) -> None:
    for name in ("libs", "scenarios"):
        value = getattr(args, name)
        if value is not None and not value.replace(",", "").strip():
            raise SystemExit(f"--{name} names nothing; leave it out for the default set")
    mode = 1 if args.full else 0
    small = min(SCENARIOS, key=lambda sc: sc.n[mode])
    least = max(1, round(small.n[mode] * args.scale))
    if least < _MIN_TASKS:
        raise SystemExit(
            f"--scale {args.scale} leaves {least} tasks (or tries) for {small.id}; "
            f"figures from fewer than {_MIN_TASKS} mean nothing"
        )


def _check_writable(option: str, path: str) -> None:
    if Path(path).is_dir():
        raise SystemExit(f"{option} {path}: is a directory; give a file name")
    parent = Path(path).resolve().parent
    try:  # a file made and removed at once: os.access says yes to root everywhere
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise SystemExit(f"{option} {path}: cannot write in {parent} ({exc})") from None


def _check_redis(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except (ValueError, redis.RedisError) as exc:
        raise SystemExit(f"--redis-url {url}: {exc}") from None


def _load_report(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"--report {path}: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise SystemExit(f"--report {path}: not JSON (give a run written by --json)") from None
    doc = doc.get("run", doc) if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or "records" not in doc:
        raise SystemExit(f"--report {path}: not a run written by --json")
    return doc


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from .server import acquire

    rounds = args.rounds or (5 if args.full else 3)
    plan = Plan(
        libraries=_select_libs(args.libs),
        scenarios=_select_scenarios(args.scenarios, args.full),
        rounds=rounds,
        full=args.full,
        uvloop=args.uvloop,
        scale=args.scale,
        recovery=args.recovery,
        crash_rounds=args.crash_rounds or (rounds if args.full else 1),
        crash_peers=args.crash_peers or args.full,
    )

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    prepare_envs(plan, log)
    if "kew" not in plan.envs:
        raise SystemExit("kew itself cannot run: " + plan.skipped.get("kew", "?"))
    with acquire(args.redis_url) as server:
        log(f"server: {server.describe}" + ("" if server.owned else " (not ours: never flushed)"))
        return run_plan(plan, server, log)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)
    doc = _load_report(args.report) if args.report else _run(args)
    summary = summarize(doc)
    verdicts = check(summary)
    print_rich(doc, summary, verdicts)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"run": doc, "summary": summary.as_dict(), "gate": [v.__dict__ for v in verdicts]},
                indent=1,
            )
        )
    if args.markdown:
        Path(args.markdown).write_text(markdown(doc, summary, verdicts))
    if args.plot:
        from .plot import plot

        plot(doc, summary, Path(args.plot))
    failed = [v for v in verdicts if v.status == "FAIL"]
    if args.gate and failed:
        print(
            f"gate: {len(failed)} bar(s) missed: " + "; ".join(v.name for v in failed),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
