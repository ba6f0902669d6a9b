"""``linear`` and ``logistic``: one linear model per model column on the encoded prompt.

``logistic``: ``quality[m] = sigmoid(x @ w_m + b_m)``, one L2-penalised logistic regression per
model on the binarised score (``score >= 0.5``), fitted on the prompts where ``m`` was scored.
A column whose scores are all good (or all bad) predicts its mean.


``quality[m] = clip(x @ w_m + b_m, 0, 1)``, each ``w_m`` fitted on the prompts where model
``m`` has an observed score (L2 penalty ``alpha``). Columns observed on the same prompts are
fitted together in one multi-output solve. Weights are kept as compact numpy arrays
(:class:`~turnout.predictors._common.CompactLinear`) so that one prompt is scored with a
gather and a dot product, without scikit-learn's per-call validation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from turnout.errors import ConfigError
from turnout.features.encoders import SparseRow
from turnout.predictors._common import CompactLinear, EncodedPredictor, Features, FloatArray

__all__ = ["LinearPredictor", "LogisticPredictor", "fit_logistic", "fit_ridge"]


def fit_ridge(x: Features, y: FloatArray, alpha: float) -> CompactLinear:
    """Ridge regression of each column of ``y`` on ``x``, NaN rows left out per column.

    Args:
        x: Features, shape (n, n_features), sparse or dense.
        y: Targets, shape (n, n_outputs); NaN = missing.
        alpha: L2 penalty.

    Returns:
        The fitted map, shape (n_features,) -> (n_outputs,).
    """
    n_out = y.shape[1]
    coef = np.zeros((x.shape[1], n_out))
    intercept = np.zeros(n_out)
    observed = ~np.isnan(y)
    groups: dict[bytes, list[int]] = {}
    for j in range(n_out):
        groups.setdefault(observed[:, j].tobytes(), []).append(j)
    for cols in groups.values():
        rows = np.flatnonzero(observed[:, cols[0]])
        model = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-4)
        model.fit(x[rows], y[np.ix_(rows, np.asarray(cols, dtype=np.intp))])
        coef[:, cols] = np.asarray(model.coef_).reshape(len(cols), -1).T
        intercept[cols] = model.intercept_
    return CompactLinear(coef, intercept)


class LinearPredictor(EncodedPredictor):
    """Per-model ridge regression of quality on the encoded prompt.

    Args:
        alpha: L2 penalty of each ridge regression (> 0).
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        linear_: The fitted weights (:class:`~turnout.predictors._common.CompactLinear`).
    """

    def __init__(self, alpha: float = 1.0, encoder: str = "hashing") -> None:
        self.alpha = alpha
        self.encoder = encoder

    def _check_params(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"`alpha` must be > 0; got {self.alpha!r}", field="alpha")

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        self.linear_ = fit_ridge(x, y, self.alpha)

    def _predict_features(self, x: Features) -> FloatArray:
        return np.clip(self.linear_.apply(x), 0.0, 1.0)

    def _predict_row(self, row: SparseRow) -> FloatArray:
        return np.clip(self.linear_.apply_row(row), 0.0, 1.0)

    def _row_linear(self) -> tuple[CompactLinear, Callable[[FloatArray], FloatArray]]:
        """The linear map of the fast path and what turns its output into the prediction."""
        return self.linear_, _clip01


def logistic_columns(x: Features, y: FloatArray, c: float) -> tuple[FloatArray, FloatArray]:
    """One logistic regression per column of ``y`` (binarised at 0.5), NaN rows left out.

    A column whose labels are all one class gets no weights and the logit of its clipped mean
    as intercept.

    Args:
        x: Features, shape (n, n_features), sparse or dense.
        y: Scores in [0, 1], shape (n, n_outputs); NaN = missing.
        c: Inverse L2 strength (scikit-learn's ``C``).

    Returns:
        ``(coef, intercept)`` of the logits, shapes (n_features, n_outputs) and (n_outputs,).
    """
    n_out = y.shape[1]
    coef = np.zeros((x.shape[1], n_out))
    intercept = np.zeros(n_out)
    for j in range(n_out):
        rows = np.flatnonzero(~np.isnan(y[:, j]))
        label = y[rows, j] >= 0.5
        if label.all() or not label.any():
            mean = float(np.clip(y[rows, j].mean(), 1e-6, 1 - 1e-6))
            intercept[j] = np.log(mean / (1 - mean))
            continue
        clf = LogisticRegression(C=c, max_iter=1000).fit(x[rows], label)
        coef[:, j] = clf.coef_[0]
        intercept[j] = clf.intercept_[0]
    return coef, intercept


def fit_logistic(x: Features, y: FloatArray, c: float) -> CompactLinear:
    """:func:`logistic_columns` kept as a :class:`CompactLinear` (rows with weights only).

    Returns:
        The fitted logits, shape (n_features,) -> (n_outputs,).
    """
    return CompactLinear(*logistic_columns(x, y, c))


def _clip01(z: FloatArray) -> FloatArray:
    return np.clip(z, 0.0, 1.0)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


class LogisticPredictor(EncodedPredictor):
    """Per-model logistic regression of a good answer on the encoded prompt.

    Args:
        C: Inverse L2 strength of each logistic regression (> 0).
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        linear_: The fitted logits (:class:`~turnout.predictors._common.CompactLinear`).
    """

    def __init__(self, C: float = 1.0, encoder: str = "hashing") -> None:  # noqa: N803
        self.C = C
        self.encoder = encoder

    def _check_params(self) -> None:
        if not self.C > 0:
            raise ConfigError(f"`C` must be > 0; got {self.C!r}", field="C")

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        self.linear_ = fit_logistic(x, y, self.C)

    def _predict_features(self, x: Features) -> FloatArray:
        return _sigmoid(self.linear_.apply(x))

    def _predict_row(self, row: SparseRow) -> FloatArray:
        return _sigmoid(self.linear_.apply_row(row))

    def _row_linear(self) -> tuple[CompactLinear, Callable[[FloatArray], FloatArray]]:
        """The linear map of the fast path and what turns its output into the prediction."""
        return self.linear_, _sigmoid
