"""The demo's cost-quality picture (PNG, matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from turnout.demo.report import DemoReport

__all__ = ["plot_cost_quality"]


def plot_cost_quality(
    report: DemoReport,
    singles: Mapping[str, tuple[float, float]],
    path: Path,
    *,
    curve: Sequence[tuple[float, float]] = (),
) -> Path:
    """Draw cost per request against quality and save it as a PNG.

    Args:
        report: The run's report (the router's point comes from the gateway's ledger).
        singles: ``{model: (cost per request in USD, mean quality)}`` of always calling that
            model on the same prompts (from the dataset).
        path: Where to write the PNG.
        curve: Optional offline points ``(cost per request in USD, quality)`` of the same
            router at other settings, drawn as a line.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    cheap = report.always_cheapest
    best = report.always_best
    ax.plot(
        [cheap.cost_per_request_usd, best.cost_per_request_usd],
        [cheap.mean_quality, best.mean_quality],
        linestyle="--",
        color="grey",
        label="random mix of cheapest and best",
    )
    if curve:
        xs, ys = zip(*sorted(curve), strict=True)
        ax.plot(
            xs,
            ys,
            color="tab:blue",
            alpha=0.5,
            label="same router at other willingness to pay (offline replay)",
        )
    right = max((c for c, _ in singles.values()), default=0.0)
    for model, (cost, quality) in singles.items():
        ax.scatter([cost], [quality], s=60, marker="o", zorder=3)
        at_right = cost >= 0.5 * right
        ax.annotate(
            f"always {model.rsplit('/', 1)[-1]}",
            (cost, quality),
            textcoords="offset points",
            xytext=(-8, 8) if at_right else (8, 8),
            ha="right" if at_right else "left",
            fontsize=8,
        )
    ax.scatter(
        [report.oracle.cost_per_request_usd],
        [report.oracle.mean_quality],
        marker="^",
        s=70,
        color="black",
        zorder=3,
        label="oracle (upper bound)",
    )
    ax.scatter(
        [report.cost_per_request_usd],
        [report.mean_quality],
        marker="*",
        s=260,
        color="tab:red",
        zorder=4,
        label=f"turnout auto, from the ledger (saves {report.savings_vs_best:.0%})",
    )
    ax.set_xlim(left=0)
    ax.set_xlabel(f"cost per request, USD ({report.cost_kind})")
    ax.set_ylabel("quality: mean recorded score")
    ax.set_title(f"turnout demo on {report.dataset}: {report.n_ok} held-out prompts")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
