"""``ensemble``: a weighted mean of several encoded predictors that share one encoder.

The prompt is encoded once; each member (``knn``, ``linear``, ``irt``) is fitted on the same
features and the predicted qualities are averaged with fixed weights. Neighbours capture
what is local (a benchmark's format, a family of questions); the IRT model shares strength
across models and smooths the noise of 0/1 scores.

The defaults (``knn`` 0.4 + ``irt`` 0.2 + ``logistic`` 0.4 over the ``hashing-words``
encoder) are turnout's default predictor. They were chosen on a validation split *inside* the
training split of ``llmrouter`` and ``routellm`` (80/20 by prompt text, seed 0, then 75/25,
seed 1), never on the test prompts: ``knn`` alone is as good on ``llmrouter`` but worse on
``routellm``, where the logistic member helps; ``linear`` and ``irt`` alone, and the character
n-gram encoder, did worse or no better, and the words-only encoder is about three times
faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from turnout.errors import ConfigError
from turnout.features.encoders import SparseRow
from turnout.predictors._common import EncodedPredictor, Features, FloatArray
from turnout.predictors.irt import IRTPredictor
from turnout.predictors.knn import KNNPredictor
from turnout.predictors.linear import LinearPredictor, LogisticPredictor

__all__ = ["MEMBERS", "EnsemblePredictor"]

#: Predictors an ensemble can hold, by name (built with their default hyperparameters).
MEMBERS: dict[
    str, type[IRTPredictor] | type[KNNPredictor] | type[LinearPredictor] | type[LogisticPredictor]
] = {
    "irt": IRTPredictor,
    "knn": KNNPredictor,
    "linear": LinearPredictor,
    "logistic": LogisticPredictor,
}


class EnsemblePredictor(EncodedPredictor):
    """Weighted mean of encoded predictors over one shared encoder.

    Args:
        members: ``(name, weight)`` pairs; names from :data:`MEMBERS`, weights >= 0 with a
            positive sum (they are normalised).
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        members_: The fitted members, in ``members`` order.
        weights_: Normalised weights, shape (n_members,).
    """

    _blas_heavy = True

    def __init__(
        self,
        members: tuple[tuple[str, float], ...] = (("knn", 0.4), ("irt", 0.2), ("logistic", 0.4)),
        encoder: str = "hashing-words",
    ) -> None:
        self.members = members
        self.encoder = encoder

    def _check_params(self) -> None:
        if not self.members:
            raise ConfigError("`members` must name at least one predictor; got ()", field="members")
        for name, weight in self.members:
            if name not in MEMBERS:
                raise ConfigError(
                    f"`members` names must be in {sorted(MEMBERS)}; got {name!r}", field="members"
                )
            if not weight >= 0:
                raise ConfigError(
                    f"`members` weights must be >= 0; got {weight!r}", field="members"
                )
        if not sum(w for _, w in self.members) > 0:
            raise ConfigError("`members` weights must have a positive sum", field="members")

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        self.__dict__.pop("_fused", None)  # built from the new fit on first use
        fitted = []
        for name, _ in self.members:
            member = MEMBERS[name](encoder=self.encoder)
            member._check_params()
            member.encoder_ = self.encoder_
            member.models_ = self.models_
            member._fit_features(x, y)
            fitted.append(member)
        weights = np.array([w for _, w in self.members], dtype=np.float64)
        self.members_ = fitted
        self.weights_ = weights / weights.sum()

    def _predict_features(self, x: Features) -> FloatArray:
        pairs = zip(self.weights_, self.members_, strict=True)
        return np.asarray(sum(w * m._predict_features(x) for w, m in pairs), dtype=np.float64)

    def _fused_linear(self) -> _Fused | None:
        """One gather for the members whose fast path is a linear map over the same rows.

        ``logistic``, ``linear`` and ``irt`` fitted on the same features keep weights for the
        same feature rows; their weight columns side by side are read with one index lookup
        and one gather per prompt instead of one each (each is a cache miss per feature once
        the kNN scan has filled the cache). Built on first use, not saved.
        """
        cached = self.__dict__.get("_fused", False)
        if cached is not False:
            fused: _Fused | None = cached
            return fused
        parts = [
            (i, *m._row_linear()) for i, m in enumerate(self.members_) if hasattr(m, "_row_linear")
        ]
        fused = None
        if len(parts) >= 2 and all(
            np.array_equal(lin.lookup, parts[0][1].lookup) for _, lin, _ in parts[1:]
        ):
            stops = np.cumsum([lin.weights.shape[1] for _, lin, _ in parts])
            fused = _Fused(
                lookup=parts[0][1].lookup,
                weights=np.ascontiguousarray(np.hstack([lin.weights for _, lin, _ in parts])),
                intercept=np.concatenate([lin.intercept for _, lin, _ in parts]),
                outputs=[
                    (i, int(stop - lin.weights.shape[1]), int(stop), post)
                    for (i, lin, post), stop in zip(parts, stops, strict=True)
                ],
            )
        self._fused = fused
        return fused

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_fused"}

    def _predict_row(self, row: SparseRow) -> FloatArray:
        fused = self._fused_linear()
        preds: dict[int, FloatArray] = {}
        if fused is not None:
            idx, val = row
            z = np.dot(val, fused.weights.take(fused.lookup[idx], axis=0)) + fused.intercept
            for i, start, stop, post in fused.outputs:
                preds[i] = post(z[start:stop])
        total: FloatArray | None = None
        for i, (w, m) in enumerate(zip(self.weights_, self.members_, strict=True)):
            part = w * (preds[i] if i in preds else m._predict_row(row))
            total = part if total is None else total + part
        return np.asarray(total, dtype=np.float64)


@dataclass(frozen=True)
class _Fused:
    """Side-by-side linear maps of several members (see ``_fused_linear``)."""

    lookup: npt.NDArray[np.int32]
    weights: FloatArray
    intercept: FloatArray
    #: (member index, first column, end column, output transform) per fused member.
    outputs: list[tuple[int, int, int, Callable[[FloatArray], FloatArray]]]
