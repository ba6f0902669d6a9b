"""Output-length predictor: expected output tokens per (prompt, model), for cost estimates.

One ridge regression per model of ``log(1 + output_tokens)`` on the encoded prompt (the log
keeps a few very long answers from dominating); the prediction is ``exp(.) - 1``, at least 1
token. Train it on an outcome table's ``output_tokens`` (recorded, counted from responses, or
the dataset loader's per-task estimates: see :mod:`turnout.evaluation.datasets`).
"""

from __future__ import annotations

import numpy as np

from turnout.errors import ConfigError
from turnout.features.encoders import SparseRow
from turnout.predictors._common import EncodedPredictor, Features, FloatArray
from turnout.predictors.linear import fit_ridge

__all__ = ["LengthPredictor"]


class LengthPredictor(EncodedPredictor):
    """Per-model ridge regression of log output tokens on the encoded prompt.

    ``fit(prompts, output_tokens, models)`` takes tokens >= 0 of shape (n_prompts, n_models)
    (NaN = missing); ``predict`` returns expected output tokens of the same layout.

    Args:
        alpha: L2 penalty (> 0).
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        linear_: The fitted weights.
    """

    _bounded = False

    def __init__(self, alpha: float = 1.0, encoder: str = "hashing-words") -> None:
        self.alpha = alpha
        self.encoder = encoder

    def _check_params(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"`alpha` must be > 0; got {self.alpha!r}", field="alpha")

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        self.linear_ = fit_ridge(x, np.log1p(y), self.alpha)

    def _predict_features(self, x: Features) -> FloatArray:
        return np.maximum(np.expm1(self.linear_.apply(x)), 1.0)

    def _predict_row(self, row: SparseRow) -> FloatArray:
        return np.maximum(np.expm1(self.linear_.apply_row(row)), 1.0)
