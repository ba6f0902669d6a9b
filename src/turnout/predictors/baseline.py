"""``tfidf-logreg``: the simple baseline the issue compares the default router with.

Word uni- and bigram TF-IDF (scikit-learn's ``TfidfVectorizer``, sublinear TF) and one
logistic regression per model on the binarised score (``score >= 0.5``); the predicted
quality is the probability of a good answer. A model whose training scores are all good (or
all bad) predicts its mean score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer

from turnout.errors import ConfigError, NotFittedError
from turnout.predictors._common import FloatArray, check_fit_args, check_prompts
from turnout.predictors.linear import logistic_columns

__all__ = ["TfidfLogRegPredictor"]


class TfidfLogRegPredictor:
    """TF-IDF features and one logistic regression per model.

    Args:
        C: Inverse L2 strength of each logistic regression (> 0).
        max_features: Vocabulary size kept by the TF-IDF vectoriser.

    Attributes:
        models_: Column names.
        vectorizer_: The fitted ``TfidfVectorizer``.
        coef_: Weights, shape (n_vocabulary, n_models) (0 for constant columns).
        intercept_: Shape (n_models,); for a constant column, the logit of its mean.
    """

    def __init__(self, C: float = 1.0, max_features: int = 50_000) -> None:  # noqa: N803
        self.C = C
        self.max_features = max_features

    def fit(self, prompts: Sequence[str], scores: npt.ArrayLike, models: Sequence[str]) -> Self:
        """Fit the vectoriser and one logistic regression per model.

        Args:
            prompts: Training prompts, shape (n_prompts,).
            scores: Quality in [0, 1], shape (n_prompts, n_models); NaN = missing.
            models: Column names, shape (n_models,).

        Returns:
            ``self``.

        Raises:
            ValueError: If the arguments are inconsistent.
            ConfigError: If ``C`` is not > 0.
        """
        texts, y, names = check_fit_args(prompts, scores, models)
        if not self.C > 0:
            raise ConfigError(f"`C` must be > 0; got {self.C!r}", field="C")
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, max_features=self.max_features
        )
        x = vectorizer.fit_transform(texts)
        coef, intercept = logistic_columns(x, y, self.C)
        self.vectorizer_ = vectorizer
        self.coef_ = coef
        self.intercept_ = intercept
        self.models_ = names
        return self

    def predict(self, prompts: Sequence[str]) -> FloatArray:
        """Probability of a good answer per (prompt, model), shape (n_prompts, n_models).

        Raises:
            NotFittedError: Before :meth:`fit`.
        """
        if not hasattr(self, "models_"):
            raise NotFittedError(
                "This TfidfLogRegPredictor instance is not fitted yet. Call `fit` with "
                "prompts, scores and models before using it."
            )
        texts = check_prompts(prompts)
        if not texts:
            return np.zeros((0, len(self.models_)))
        z = np.asarray(self.vectorizer_.transform(texts) @ self.coef_) + self.intercept_
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))
