"""The cost-quality plot of an evaluation (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from turnout.evaluation.report import EvalReport

__all__ = ["plot_report"]


def plot_report(report: EvalReport, path: Path, *, title: str | None = None) -> None:
    """Draw the report's curves and baselines and save them as a PNG at ``path``.

    Cost (x, mean USD per prompt) is on a log scale; quality (y) is the mean recorded score.

    Raises:
        ImportError: If matplotlib (the ``lab`` extra) is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'turnout[lab]'") from exc
    b = report.baselines
    fig, ax = plt.subplots(figsize=(8, 6.2), dpi=110)
    for s in report.routers:
        order = np.argsort([c for _, _, c, _ in s.points])
        cost = np.array([s.points[i][2] for i in order])
        quality = np.array([s.points[i][1] for i in order])
        ax.plot(cost, quality, marker=".", linewidth=1.5, label=f"{s.name} (utility sweep)")
    right = max(b.cost_max_usd, *(max(c for _, _, c, _ in s.points) for s in report.routers))
    # A random mix is linear in cost: sample it densely so it reads right on a log axis.
    zc = np.unique(np.concatenate((np.geomspace(b.zero_cost_usd[0], right, 400), b.zero_cost_usd)))
    zq = np.interp(zc, b.zero_cost_usd, b.zero_quality)
    ax.plot(zc, zq, linestyle="--", color="grey", label="random mix (zero router)")
    for p in b.models:
        ax.scatter([p.cost_usd], [p.quality], color="black", s=18, zorder=3)
        ax.annotate(
            p.name, (p.cost_usd, p.quality), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    ax.scatter(
        [b.oracle.cost_usd],
        [b.oracle.quality],
        marker="*",
        s=140,
        color="gold",
        edgecolors="black",
        zorder=4,
        label="oracle (limit)",
    )
    ax.axhline(
        b.best.quality,
        color="red",
        linewidth=0.8,
        linestyle=":",
        label=f"best single: {b.best.name}",
    )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap within one decade
    ax.set_xlabel(f"mean cost per prompt, USD ({report.cost_kind} costs, log scale)")
    ax.set_ylabel("mean quality (recorded scores)")
    split = report.split + (
        f": test on {', '.join(report.test_tasks)}" if report.test_tasks else ""
    )
    ax.set_title(
        title or f"{Path(report.dataset).name}, {split} ({report.n_test_prompts} held-out prompts)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    # Room for the model labels at the right edge and every point inside the axes; the legend
    # goes under the axes so it never hides a point or a label.
    costs = [p.cost_usd for p in b.models] + [b.oracle.cost_usd]
    qualities = [p.quality for p in b.models] + [b.oracle.quality]
    for s in report.routers:
        costs += [c for _, _, c, _ in s.points]
        qualities += [q for _, q, _, _ in s.points]
    ax.set_xlim(min(costs) / 1.3, max(costs) * 2.5)
    span = max(max(qualities) - min(qualities), 0.02)
    ax.set_ylim(min(qualities) - 0.05 * span, max(qualities) + 0.08 * span)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
