"""The predictor seams: expected quality per (prompt, model) and output length per model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "OutputLengthPredictor", "QualityPredictor"]

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class QualityPredictor(Protocol):
    """Predicts quality in [0, 1] for each (prompt, model), scikit-learn style.

    ``fit`` returns ``self``; fitted attributes end in ``_``; ``models_`` lists the columns.
    Using it before ``fit`` raises :class:`turnout.errors.NotFittedError`.
    """

    models_: list[str]

    def fit(self, prompts: Sequence[str], scores: FloatArray, models: Sequence[str]) -> Self:
        """Learn from ``scores`` of shape (n_prompts, n_models); NaN marks a missing outcome."""
        ...

    def predict(self, prompts: Sequence[str]) -> FloatArray:
        """Expected quality, shape (n_prompts, n_models), columns in ``models_`` order."""
        ...


@runtime_checkable
class OutputLengthPredictor(Protocol):
    """Predicts output tokens per (prompt, model); shape (n_prompts, n_models)."""

    models_: list[str]

    def predict(self, prompts: Sequence[str]) -> FloatArray:
        """Expected output tokens, shape (n_prompts, n_models), columns in ``models_`` order."""
        ...
