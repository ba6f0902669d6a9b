"""Shared parts of turnout's predictors: argument checks, encoding, compact linear weights.

Every quality predictor here follows scikit-learn's estimator contract: ``__init__`` stores
its hyperparameters unchanged, ``fit`` validates its input and returns ``self``, fitted state
ends in ``_`` (``models_``), and ``predict`` before ``fit`` raises
:class:`~turnout.errors.NotFittedError`.

Most predictors read prompts through an encoder (:mod:`turnout.features.encoders`) and share
:class:`EncodedPredictor`: ``predict`` of one prompt with the hashing encoder takes a fast path
(:meth:`EncodedPredictor._predict_row`) that skips building a sparse matrix, so one routing
decision stays well under a millisecond.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any, Self, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from turnout.errors import NotFittedError
from turnout.features.encoders import HashingEncoder, SparseRow, make_encoder

__all__ = [
    "CompactLinear",
    "EncodedPredictor",
    "Features",
    "check_fit_args",
    "check_prompts",
    "column_means",
    "single_thread",
]

FloatArray = npt.NDArray[np.float64]
#: Encoded prompts: a CSR matrix (hashing encoder) or a dense array (sentence encoder).
Features: TypeAlias = sp.csr_matrix | FloatArray


class _OneBlasThread:
    """Context manager: BLAS libraries on one thread inside, their thread counts restored after.

    Calls each loaded BLAS library's own get/set-threads functions (through threadpoolctl's
    library controllers, looked up once), about a microsecond each: threadpoolctl's
    ``limit`` re-reads every library's info on each use and costs about 10 microseconds.
    Nested or concurrent blocks share one limit: the first entry saves the thread counts,
    the last exit restores them.
    """

    def __init__(self) -> None:
        self._libs: list[Any] | None = None
        self._saved: list[tuple[Any, int]] = []
        self._depth = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            if self._libs is None:
                from threadpoolctl import ThreadpoolController

                # The BLAS libraries numpy and scipy loaded (both are imported by then).
                self._libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
            saved = []
            for lib in self._libs:
                threads = lib.get_num_threads()
                if threads != 1:
                    lib.set_num_threads(1)
                    saved.append((lib, threads))
            self._saved = saved

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, threads in self._saved:
                    lib.set_num_threads(threads)
                self._saved = []


_ONE_THREAD = _OneBlasThread()


def single_thread() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread for a block (restored on exit; a few microseconds).

    One prompt's products are small; a multi-threaded BLAS spends far longer waking and
    synchronising its threads than computing (milliseconds instead of microseconds on a
    busy machine), so the single-prompt path runs single-threaded. Not re-entrant, and
    meant for the routing thread (BLAS thread counts are process-wide).
    """
    return _ONE_THREAD


def check_prompts(prompts: Sequence[str], name: str = "prompts") -> list[str]:
    """``prompts`` as a list of str.

    Raises:
        TypeError: If ``prompts`` is a bare string or holds a non-string (names the index).
    """
    if isinstance(prompts, str):
        raise TypeError(f"`{name}` must be a sequence of str, not one str; got {prompts[:40]!r}")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"`{name}[{i}]` must be a str; got {type(p).__name__}")
    return out


def check_fit_args(
    prompts: Sequence[str],
    scores: npt.ArrayLike,
    models: Sequence[str],
    *,
    bounded: bool = True,
) -> tuple[list[str], FloatArray, list[str]]:
    """Validate the arguments of ``fit``.

    Args:
        prompts: Training prompt texts, shape (n_prompts,).
        scores: Targets, shape (n_prompts, n_models); NaN marks a missing outcome.
        models: Column names, shape (n_models,), unique.
        bounded: Whether scores must lie in [0, 1] (quality) or only be >= 0 (token counts).

    Returns:
        The prompts as a list, scores as float64, models as a list.

    Raises:
        ValueError: On a shape mismatch, duplicate model names, an empty table, a column
            with no observed value, or a value out of range (each message names the field).
    """
    prompts = check_prompts(prompts)
    y = np.asarray(scores, dtype=np.float64)
    names = [str(m) for m in models]
    if y.ndim != 2 or y.shape != (len(prompts), len(names)):
        raise ValueError(
            f"`scores` must have shape (n_prompts, n_models) = ({len(prompts)}, {len(names)}); "
            f"got {y.shape}"
        )
    if not prompts or not names:
        raise ValueError(
            f"`fit` needs at least one prompt and one model; got {len(prompts)} prompts "
            f"and {len(names)} models"
        )
    if len(set(names)) != len(names):
        dup = sorted({m for m in names if names.count(m) > 1})
        raise ValueError(f"`models` must be unique; got duplicates {dup}")
    observed = ~np.isnan(y)
    empty = [names[j] for j in np.flatnonzero(~observed.any(axis=0))]
    if empty:
        raise ValueError(f"`scores` has no observed value for model(s) {empty}")
    finite = y[observed]
    if np.isinf(finite).any():
        raise ValueError("`scores` must be finite or NaN; got an infinite value")
    low, high = float(finite.min()), float(finite.max())
    if low < 0 or (bounded and high > 1):
        allowed = "[0, 1]" if bounded else ">= 0"
        bad = low if low < 0 else high
        raise ValueError(f"`scores` must be {allowed} (NaN = missing); got {bad!r}")
    return prompts, y, names


def column_means(y: FloatArray) -> FloatArray:
    """NaN-aware mean of each column, shape (n_models,)."""
    observed = ~np.isnan(y)
    total = np.where(observed, y, 0.0).sum(axis=0)
    return np.asarray(total / np.maximum(observed.sum(axis=0), 1), dtype=np.float64)


class CompactLinear:
    """Linear maps ``X @ W + b`` over hashed features, storing only the rows that matter.

    A ridge model over 2**18 hashed features has non-zero weights only for features seen in
    training; keeping those rows (plus an index) keeps router files small and lets one prompt
    be scored with a gather and a small dot product.

    Args:
        coef: Weights, shape (n_features, n_outputs), dense or sparse.
        intercept: Shape (n_outputs,).
    """

    def __init__(self, coef: Any, intercept: FloatArray) -> None:
        dense = coef.toarray() if sp.issparse(coef) else np.asarray(coef)
        rows = np.flatnonzero(np.any(dense != 0, axis=1))
        self.n_features = dense.shape[0]
        self.lookup = np.full(self.n_features, -1, dtype=np.int32)
        self.lookup[rows] = np.arange(rows.size, dtype=np.int32)
        self.weights = np.vstack([dense[rows], np.zeros((1, dense.shape[1]))])  # row -1 = 0
        self.intercept = np.asarray(intercept, dtype=np.float64)

    def apply(self, x: Features) -> FloatArray:
        """``x @ W + b`` for a batch, shape (n_prompts, n_outputs)."""
        if sp.issparse(x):
            csr = sp.csr_matrix(x)
            rows = self.lookup[csr.indices]
            gathered = sp.csr_matrix(
                (csr.data, np.where(rows < 0, self.weights.shape[0] - 1, rows), csr.indptr),
                shape=(csr.shape[0], self.weights.shape[0]),
            )
            return np.asarray(gathered @ self.weights) + self.intercept
        return np.asarray(x, dtype=np.float64) @ self._dense() + self.intercept

    def apply_row(self, row: SparseRow) -> FloatArray:
        """``x @ W + b`` for one sparse row ``(indices, values)``, shape (n_outputs,)."""
        idx, val = row
        return np.asarray(np.dot(val, self.weights.take(self.lookup[idx], axis=0)) + self.intercept)

    def _dense(self) -> FloatArray:
        full = np.zeros((self.n_features, self.weights.shape[1]))
        known = self.lookup >= 0
        full[known] = self.weights[self.lookup[known]]
        return full


class EncodedPredictor:
    """Base of predictors that read prompts through an encoder.

    Subclasses implement ``_fit_features(X, y)`` and ``_predict_features(X)``, and may add
    ``_predict_row(row)`` for the single-prompt fast path of the hashing encoder. Both
    prediction paths must return the same numbers.
    """

    encoder: str
    #: Whether ``fit`` needs scores in [0, 1] (quality) or only >= 0 (token counts).
    _bounded = True
    #: Whether one prompt's prediction calls BLAS on sizeable arrays (then run it on one
    #: thread; see :func:`single_thread`).
    _blas_heavy = False

    def fit(self, prompts: Sequence[str], scores: npt.ArrayLike, models: Sequence[str]) -> Self:
        """Learn from recorded outcomes.

        Args:
            prompts: Training prompt texts, shape (n_prompts,).
            scores: Quality in [0, 1], shape (n_prompts, n_models); NaN = missing.
            models: Column names, shape (n_models,).

        Returns:
            ``self``, fitted (``models_`` holds the column order of :meth:`predict`).

        Raises:
            ValueError: If the arguments are inconsistent (see ``check_fit_args``).
            ConfigError: If a hyperparameter is invalid.
        """
        texts, y, names = check_fit_args(prompts, scores, models, bounded=self._bounded)
        self._check_params()
        encoder = make_encoder(self.encoder)
        encoder.fit(texts)
        x = encoder.transform(texts)
        self.encoder_ = encoder
        self.models_ = names
        self._fit_features(x, y)
        return self

    def _check_params(self) -> None:
        """Raise ``ConfigError`` on an invalid hyperparameter (subclasses extend)."""

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        raise NotImplementedError

    def _predict_features(self, x: Features) -> FloatArray:
        raise NotImplementedError

    def _predict_row(self, row: SparseRow) -> FloatArray:
        idx, val = row
        n = self.encoder_.dim
        x = sp.csr_matrix((val, idx.astype(np.int32), np.array([0, idx.size])), shape=(1, n))
        return np.asarray(self._predict_features(x)[0], dtype=np.float64)

    def _require_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call `fit` with "
                "prompts, scores and models before using it."
            )

    def encode(self, prompts: Sequence[str]) -> Features:
        """Encode prompts with the fitted encoder (shape (n_prompts, dim)).

        Raises:
            NotFittedError: Before :meth:`fit`.
        """
        self._require_fitted()
        return self.encoder_.transform(check_prompts(prompts))

    def predict(self, prompts: Sequence[str]) -> FloatArray:
        """Expected quality per (prompt, model).

        Args:
            prompts: Prompt texts, shape (n_prompts,).

        Returns:
            Shape (n_prompts, n_models), columns in ``models_`` order.

        Raises:
            NotFittedError: Before :meth:`fit`.
        """
        self._require_fitted()
        texts = check_prompts(prompts)
        if len(texts) == 1 and isinstance(self.encoder_, HashingEncoder):
            row = self.encoder_.encode_one(texts[0])
            if not self._blas_heavy:
                return self._predict_row(row)[None, :]
            with single_thread():
                return self._predict_row(row)[None, :]
        if not texts:
            return np.zeros((0, len(self.models_)))
        return self._predict_features(self.encoder_.transform(texts))
