"""The task-category classifier: TF-IDF over :func:`prompt_terms` and a linear model.

The weights are plain numpy arrays loaded from ``turnout/data/classifier/model.npz``
(rebuilt by ``scripts/train_classifier.py``); scoring one prompt is a dictionary lookup
per term and one small matrix product, with no scikit-learn on the request path. The same
file carries a linear difficulty estimate trained on the recorded outcomes' failure rates.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from turnout.errors import ConfigError
from turnout.signals.terms import prompt_terms

__all__ = [
    "CATEGORIES",
    "UNKNOWN",
    "Category",
    "CategoryClassifier",
    "CategoryPrediction",
    "default_classifier",
]

Category = Literal[
    "code",
    "math",
    "reasoning",
    "knowledge_qa",
    "creative_writing",
    "summarisation",
    "extraction",
    "translation",
    "chat",
]
#: The task categories the classifier knows, in the order of its weight columns.
CATEGORIES: tuple[Category, ...] = get_args(Category)
#: The category reported when the classifier's confidence is below its threshold.
UNKNOWN = "unknown"

FloatArray = npt.NDArray[np.float64]

# prompt_terms appends at most this many shape markers ("#chars:3", "#lines:1", "#fence").
_MAX_MARKERS = 3


def _is_marker(term: str) -> bool:
    # Text never yields these: symbols are single characters and bigrams contain a space.
    return term[0] == "#" and len(term) > 1 and " " not in term


@dataclass(frozen=True, slots=True)
class CategoryPrediction:
    """The classifier's answer for one prompt.

    Attributes:
        category: One of :data:`CATEGORIES`, or ``"unknown"`` below the threshold.
        confidence: Probability of the most likely category, in [0, 1] (reported even when
            the category is ``"unknown"``).
        best_guess: The most likely category, whatever the confidence.
        difficulty: Estimated difficulty in [0, 1]: the expected share of models that fail.
    """

    category: str
    confidence: float
    best_guess: str
    difficulty: float


class CategoryClassifier:
    """A fitted linear classifier over TF-IDF weighted prompt terms.

    Args:
        vocabulary: Term -> column index, shape (n_terms,).
        idf: Inverse document frequency per term, shape (n_terms,).
        coef: Class weights, shape (n_terms, n_categories), columns in ``categories`` order.
        intercept: Class biases, shape (n_categories,).
        categories: Category name per column.
        difficulty_coef: Difficulty regression weights, shape (n_terms,).
        difficulty_intercept: Difficulty regression bias.
        threshold: Confidence below which the category is ``"unknown"``, in [0, 1].

    Raises:
        ConfigError: If the array shapes disagree or ``threshold`` is outside [0, 1].
    """

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: FloatArray,
        coef: FloatArray,
        intercept: FloatArray,
        categories: Sequence[str],
        difficulty_coef: FloatArray,
        difficulty_intercept: float,
        threshold: float = 0.5,
    ) -> None:
        n_terms = len(vocabulary)
        if idf.shape != (n_terms,) or difficulty_coef.shape != (n_terms,):
            raise ConfigError(
                f"classifier: idf and difficulty_coef must have shape ({n_terms},); "
                f"got {idf.shape} and {difficulty_coef.shape}"
            )
        if coef.shape != (n_terms, len(categories)) or intercept.shape != (len(categories),):
            raise ConfigError(
                f"classifier: coef must have shape ({n_terms}, {len(categories)}) and "
                f"intercept ({len(categories)},); got {coef.shape} and {intercept.shape}"
            )
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"`threshold` must be a float in [0, 1]; got {threshold}")
        self.vocabulary = vocabulary
        self.idf = idf
        self.categories = tuple(categories)
        self.threshold = threshold
        # One matrix for the class scores and the difficulty, so one product serves both.
        self._weights = np.concatenate([coef, difficulty_coef[:, None]], axis=1)
        self._bias = np.concatenate([intercept, [difficulty_intercept]])

    def features(self, text: str) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Sparse TF-IDF row of ``text``: column indices and L2-normalised values.

        Term frequency is sublinear (``1 + ln tf``), as scikit-learn's ``sublinear_tf``.
        A text with no known word (only shape markers) gives an empty row.
        """
        terms = prompt_terms(text)
        get = self.vocabulary.get
        hits = [i for i in map(get, terms) if i is not None]
        markers = sum(1 for t in terms[-_MAX_MARKERS:] if _is_marker(t) and t in self.vocabulary)
        if len(hits) <= markers:
            return np.empty(0, dtype=np.intp), np.empty(0)
        cols, counts = np.unique(np.asarray(hits, dtype=np.intp), return_counts=True)
        values = (1.0 + np.log(counts)) * self.idf[cols]
        values /= np.sqrt(values @ values)
        return cols, values

    def predict_one(self, text: str) -> CategoryPrediction:
        """Classify one prompt (the per-request fast path).

        Args:
            text: The prompt text.

        Returns:
            The category (or ``"unknown"``), its probability, and a difficulty estimate.
        """
        cols, values = self.features(text)
        raw = values @ self._weights[cols] + self._bias if cols.size else self._bias.copy()
        logits = raw[:-1]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        # No known word at all: no evidence, whatever the priors say.
        confidence = float(probs[best]) if cols.size else 0.0
        guess = self.categories[best]
        return CategoryPrediction(
            category=guess if confidence >= self.threshold else UNKNOWN,
            confidence=confidence,
            best_guess=guess,
            difficulty=min(1.0, max(0.0, float(raw[-1]))),
        )

    def predict(self, texts: Sequence[str]) -> list[CategoryPrediction]:
        """Classify many prompts; same answers as :meth:`predict_one` on each."""
        return [self.predict_one(t) for t in texts]

    def save(self, path: str | Path) -> None:
        """Write the arrays to a compressed ``.npz`` file."""
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        n_cat = len(self.categories)
        np.savez_compressed(
            path,
            terms=np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8),
            categories=np.asarray(self.categories),
            idf=self.idf.astype(np.float32),
            coef=self._weights[:, :n_cat].astype(np.float32),
            intercept=self._bias[:n_cat],
            difficulty_coef=self._weights[:, n_cat].astype(np.float32),
            difficulty_intercept=np.asarray(self._bias[n_cat]),
            threshold=np.asarray(self.threshold),
        )

    @classmethod
    def load(cls, source: str | Path | bytes) -> CategoryClassifier:
        """Read a classifier written by :meth:`save` (a path, or the file's bytes).

        Raises:
            ConfigError: If the file is missing, unreadable or malformed.
        """
        try:
            data = np.load(io.BytesIO(source) if isinstance(source, bytes) else source)
            terms = data["terms"].tobytes().decode("utf-8").split("\n")
            return cls(
                vocabulary={t: i for i, t in enumerate(terms)},
                idf=data["idf"].astype(np.float64),
                coef=data["coef"].astype(np.float64),
                intercept=data["intercept"].astype(np.float64),
                categories=[str(c) for c in data["categories"]],
                difficulty_coef=data["difficulty_coef"].astype(np.float64),
                difficulty_intercept=float(data["difficulty_intercept"]),
                threshold=float(data["threshold"]),
            )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"cannot load category classifier {source!r:.80}: {exc}") from exc


@cache
def default_classifier() -> CategoryClassifier:
    """The classifier shipped in ``turnout/data/classifier/model.npz`` (loaded once).

    Raises:
        ConfigError: If the shipped file is missing or malformed.
    """
    ref = resources.files("turnout.data").joinpath("classifier/model.npz")
    return CategoryClassifier.load(ref.read_bytes())
