"""``threshold``: strong/weak routing as in RouteLLM (Ong et al., 2024).

RouteLLM sends a request to the strong model when the router's estimated win rate of the
strong model exceeds a threshold. Here the router's signal is the predicted quality gap
``predicted_quality[strong] - predicted_quality[weak]``: above ``threshold`` the strong model is
chosen, otherwise the weak one. :func:`calibrate_threshold` picks the threshold that sends a
target share of (held-out or recent) traffic to the strong model, as RouteLLM calibrates its
thresholds on a sample of queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from turnout.errors import ConfigError
from turnout.policies.base import Choice
from turnout.types import CandidateScore, RouteRequest

__all__ = ["ThresholdPolicy", "calibrate_threshold"]

_INF = float("inf")


class ThresholdPolicy:
    """Strong model if its predicted quality gain over the weak one exceeds ``threshold``.

    If only one of the pair is eligible it is chosen; if neither is, the cheapest eligible
    candidate. Candidates outside the pair follow, by cost.

    Args:
        strong: Model id of the strong (expensive) model.
        weak: Model id of the weak (cheap) model.
        threshold: Gap in predicted quality points, in [-1, 1].

    Raises:
        ConfigError: If ``strong == weak`` or ``threshold`` is outside [-1, 1].
    """

    name = "threshold"

    def __init__(self, strong: str, weak: str, threshold: float = 0.0) -> None:
        if strong == weak:
            raise ConfigError(
                f"`strong` and `weak` must differ; both are {strong!r}", field="strong"
            )
        if not (isinstance(threshold, int | float) and -1.0 <= threshold <= 1.0):
            raise ConfigError(
                f"`threshold` must be a number in [-1, 1]; got {threshold!r}", field="threshold"
            )
        self.strong = strong
        self.weak = weak
        self.threshold = float(threshold)

    def choose(
        self, candidates: Sequence[CandidateScore], request: RouteRequest, *, seed: int
    ) -> Choice:
        """Pick strong or weak by the predicted gap; the rest by cost."""
        by_id = {c.model: c for c in candidates}
        strong, weak = by_id.get(self.strong), by_id.get(self.weak)
        if strong is not None and weak is not None:
            gap = strong.predicted_quality - weak.predicted_quality
            first, second = (strong, weak) if gap > self.threshold else (weak, strong)
            verb = ">" if gap > self.threshold else "<="
            reason = (
                f"predicted gain of {self.strong} over {self.weak} {gap:+.3f} {verb} "
                f"threshold {self.threshold:+.3f}"
            )
            head = [replace(first, score=gap), replace(second, score=-gap)]
        elif strong is not None or weak is not None:
            only = strong if strong is not None else weak
            assert only is not None
            head = [replace(only, score=0.0)]
            reason = f"only {only.model} of the strong/weak pair is eligible"
        else:
            head = []
            reason = "neither model of the strong/weak pair is eligible; cheapest instead"
        chosen = {c.model for c in head}
        rest = sorted(
            (c for c in candidates if c.model not in chosen),
            key=lambda c: (_INF if c.cost_usd is None else c.cost_usd, c.model),
        )
        return Choice(tuple(head) + tuple(replace(c, score=-_INF) for c in rest), reason)


def calibrate_threshold(gaps: npt.ArrayLike, strong_share: float) -> float:
    """The threshold that sends ``strong_share`` of the prompts to the strong model.

    Args:
        gaps: Predicted ``quality[strong] - quality[weak]`` per prompt, shape (n_prompts,).
        strong_share: Target share of strong calls, in [0, 1].

    Returns:
        A threshold in [-1, 1]: about ``strong_share`` of ``gaps`` lie strictly above it.

    Raises:
        ValueError: If ``gaps`` is empty.
        ConfigError: If ``strong_share`` is outside [0, 1].
    """
    if not (isinstance(strong_share, int | float) and 0.0 <= strong_share <= 1.0):
        raise ConfigError(
            f"`strong_share` must be a number in [0, 1]; got {strong_share!r}",
            field="strong_share",
        )
    g = np.sort(np.asarray(gaps, dtype=np.float64).reshape(-1))
    if g.size == 0:
        raise ValueError("`gaps` must hold at least one value; got none")
    n_strong = int(round(strong_share * g.size))
    if n_strong <= 0:
        return 1.0
    if n_strong >= g.size:
        return float(max(-1.0, np.nextafter(g[0], -_INF)))
    # Everything strictly above the (n - n_strong)-th smallest gap goes to the strong model.
    return float(np.clip(g[g.size - n_strong - 1], -1.0, 1.0))
