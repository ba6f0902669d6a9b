"""Quality and output-length predictors (scikit-learn style), registered in :data:`PREDICTORS`.

Quality predictors (``fit(prompts, scores, models)`` / ``predict(prompts)``, shape
(n_prompts, n_models), quality in [0, 1]):

==================  ===========================================================================
name                what
==================  ===========================================================================
``ensemble``        :data:`DEFAULT_PREDICTOR`: 0.4 knn + 0.2 irt + 0.4 logistic, hashed words
``knn``             mean score of the most similar training prompts, shrunk to the model mean
``linear``          one ridge regression per model
``logistic``        one logistic regression per model (P(score >= 0.5))
``irt``             multidimensional 2PL IRT, prompt difficulty/discrimination from text
``tfidf-logreg``    the simple baseline: TF-IDF + one logistic regression per model
==================  ===========================================================================

:class:`LengthPredictor` predicts output tokens per (prompt, model) for cost estimates.
Save and load any of them with :func:`save_predictor` / :func:`load_predictor`.
"""

from turnout.predictors.base import FloatArray, OutputLengthPredictor, QualityPredictor
from turnout.predictors.baseline import TfidfLogRegPredictor
from turnout.predictors.ensemble import EnsemblePredictor
from turnout.predictors.irt import IRTPredictor
from turnout.predictors.knn import KNNPredictor
from turnout.predictors.length import LengthPredictor
from turnout.predictors.linear import LinearPredictor, LogisticPredictor

#: Quality predictors by name; each builds with no arguments.
PREDICTORS: dict[str, type] = {
    "ensemble": EnsemblePredictor,
    "irt": IRTPredictor,
    "knn": KNNPredictor,
    "linear": LinearPredictor,
    "logistic": LogisticPredictor,
    "tfidf-logreg": TfidfLogRegPredictor,
}

#: The predictor ``turnout train`` and ``turnout eval`` use when none is named.
DEFAULT_PREDICTOR = "ensemble"

__all__ = [
    "DEFAULT_PREDICTOR",
    "PREDICTORS",
    "EnsemblePredictor",
    "FloatArray",
    "IRTPredictor",
    "KNNPredictor",
    "LengthPredictor",
    "LinearPredictor",
    "LogisticPredictor",
    "OutputLengthPredictor",
    "QualityPredictor",
    "TfidfLogRegPredictor",
]
