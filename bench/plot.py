"""``--plot out.png``: grouped bars, one group per figure, one bar per library (matplotlib).

Three panels: throughputs (tasks/s, log scale), latencies (ms, log scale) and peak RSS (MiB).
Each bar is the median over rounds; the whisker spans min-max.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .stats import Summary, figure_keys, metric_of

__all__ = ["plot"]

_PANELS = (
    ("throughput (tasks/s, higher is better)", "tasks/s", True),
    ("latency (ms, lower is better)", "ms", True),
    ("peak RSS (MiB, lower is better)", "MiB", False),
)


def plot(doc: dict[str, Any], s: Summary, path: Path) -> None:
    """Write the chart to ``path``.

    Raises:
        SystemExit: matplotlib is not installed (it lives in the ``bench`` dependency group).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: uv run --group bench python -m bench --plot out.png"
        ) from None
    libs = list(doc["libraries"])
    keys = [k for k in figure_keys() if not k.startswith("crash.")]
    panels = []
    for title, unit, log in _PANELS:
        ks = [
            k
            for k in keys
            if metric_of(k).unit == unit and any(k in s.figures.get(lib, {}) for lib in libs)
        ]
        if ks:
            panels.append((title, ks, log))
    widths = [max(2, len(ks)) for _, ks, _ in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4 + 1.6 * sum(widths), 5.5),
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )  # fmt: skip
    colors = plt.get_cmap("tab10").colors
    width = 0.8 / max(1, len(libs))
    for ax, (title, ks, log) in zip(axes[0], panels, strict=True):
        for j, lib in enumerate(libs):
            xs, ys, lo, hi = [], [], [], []
            for i, k in enumerate(ks):
                r = s.figures.get(lib, {}).get(k)
                if r is None:
                    continue
                xs.append(i + (j - (len(libs) - 1) / 2) * width)
                ys.append(r.median)
                lo.append(r.median - r.low)
                hi.append(r.high - r.median)
            ax.bar(xs, ys, width, yerr=[lo, hi], label=lib, color=colors[j % 10], capsize=2)
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels([k.replace(".", "\n") for k in ks], fontsize=8)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    p = doc["plan"]
    fig.suptitle(
        f"kew vs peers, {p['mode']} mode, {p['rounds']} rounds, {p['loop']}, "
        f"{doc['machine']['cores']} cores, {doc['started'][:10]}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
