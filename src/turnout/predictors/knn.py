"""``knn``: quality of a model on a prompt = its mean score on the most similar training prompts.

Similarity is the cosine of encoded prompts. With the hashing encoder (2**18 sparse
features) and ``n_components`` set (the default), prompts are first reduced to a small dense
space so that one prompt is compared with the whole training set in one small matrix-vector
product: the sparse row is count-sketched (each feature added, with a hashed sign, to one of
``4096`` buckets; Charikar, Chen and Farach-Colton, 2002), then projected on the top
``n_components`` singular vectors of the training sketches (latent semantic analysis) and
L2-normalised. With ``n_components=None`` the exact sparse cosine is used instead, leaving
out features present in more than ``max_df`` of the training prompts (slower for one prompt).

``n_components`` defaults to 64. Against 128, measured inside the training splits only
(``python benchmarks/knn_dimensions.py``, results in ``benchmarks/results/knn_dimensions.md``),
the default ensemble's savings and max quality moved by less than the split noise, while the
float32 training matrix halves (5,610 prompts: 1.4 MB instead of 2.9 MB, under one core's
2 MB L2 cache), which took one routing decision from about 0.55 to 0.43 ms p50
(``benchmarks/route_latency.py``).

The estimate is shrunk towards the model's mean score (a Bayesian average)::

    quality[m] = (sum_k w_k * score[k, m] + shrinkage * mean[m]) / (sum_k w_k + shrinkage)

over the ``n_neighbors`` most similar prompts with an observed score for ``m``, with weights
``w_k = max(similarity_k, 0) ** power`` (a larger ``power`` trusts the closest neighbours more).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from turnout.errors import ConfigError
from turnout.features.encoders import SparseRow
from turnout.predictors._common import EncodedPredictor, Features, FloatArray, column_means

__all__ = ["KNNPredictor"]

_CHUNK = 512
_BUCKETS = 4096


def _bucket_sign(idx: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Count-sketch bucket in [0, 4096) and sign (+1/-1) of each feature index."""
    h = (idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    bucket = (h & np.uint64(_BUCKETS - 1)).astype(np.int64)
    sign = 1.0 - 2.0 * ((h >> np.uint64(12)) & np.uint64(1)).astype(np.float64)
    return bucket, sign


def _signed_buckets(
    idx: npt.NDArray[np.int64], val: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """One prompt's count-sketch buckets and its values with their signs, as float32.

    The same numbers as :func:`_bucket_sign` (``(val * sign).astype(np.float32)``) in fewer
    passes: the sign flips the value where bit 12 of the hash is set.
    """
    h = (idx.view(np.uint64) if idx.dtype == np.int64 else idx.astype(np.uint64)) * np.uint64(
        0x9E3779B97F4A7C15
    )
    h >>= np.uint64(40)
    flip = (h & np.uint64(_BUCKETS)) != 0
    h &= np.uint64(_BUCKETS - 1)
    signed = val.astype(np.float32)
    np.negative(signed, out=signed, where=flip)
    return h.view(np.int64), signed


def _sketch(x: sp.csr_matrix) -> FloatArray:
    """Dense count sketch of sparse rows, shape (n, 4096)."""
    bucket, sign = _bucket_sign(x.indices.astype(np.int64))
    out = sp.csr_matrix((x.data * sign, bucket, x.indptr), shape=(x.shape[0], _BUCKETS))
    return np.asarray(out.toarray(), dtype=np.float64)


def _unit_rows(z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = np.sqrt(np.einsum("ij,ij->i", z, z))[:, None]
    return np.asarray(z / np.where(norm > 0, norm, 1.0), dtype=np.float32)


class KNNPredictor(EncodedPredictor):
    """k-nearest-neighbour quality predictor over an encoder.

    Args:
        n_neighbors: Neighbours averaged per prompt (fewer if the training set is smaller).
        shrinkage: Pseudo-weight of the model's mean score; larger = smoother.
        max_df: Sparse encoders only: features present in more than this share of training
            prompts are ignored by the similarity (in (0, 1]; 1 keeps all).
        power: Exponent applied to the similarities (> 0).
        n_components: Sparse encoders only: dimensions of the reduced space (``None``: exact
            sparse cosine); see the module docstring for the choice of 64.
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        scores_: Training scores, shape (n_train, n_models), NaN = missing.
        prior_: Mean score per model, shape (n_models,).
    """

    _blas_heavy = True

    def __init__(
        self,
        n_neighbors: int = 40,
        shrinkage: float = 1.0,
        max_df: float = 0.05,
        power: float = 1.0,
        n_components: int | None = 64,
        encoder: str = "hashing",
    ) -> None:
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.max_df = max_df
        self.power = power
        self.n_components = n_components
        self.encoder = encoder

    def _check_params(self) -> None:
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 1:
            raise ConfigError(
                f"`n_neighbors` must be an int >= 1; got {self.n_neighbors!r}", field="n_neighbors"
            )
        if not self.shrinkage >= 0:
            raise ConfigError(
                f"`shrinkage` must be >= 0; got {self.shrinkage!r}", field="shrinkage"
            )
        if not self.power > 0:
            raise ConfigError(f"`power` must be > 0; got {self.power!r}", field="power")
        if not 0 < self.max_df <= 1:
            raise ConfigError(f"`max_df` must be in (0, 1]; got {self.max_df!r}", field="max_df")

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        self.__dict__.pop("_targets", None)  # built from the new fit on first use
        self.scores_ = y
        self.prior_ = column_means(y)
        self._observed = ~np.isnan(y)
        self._filled = np.where(self._observed, y, 0.0)
        if sp.issparse(x) and self.n_components is not None:
            sketch = _sketch(sp.csr_matrix(x))
            k = max(1, min(self.n_components, sketch.shape[0] - 1, _BUCKETS - 1))
            svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=0)
            svd.fit(sketch)
            # float32: one prompt's projection and similarities then take tens of microseconds.
            self.projection_ = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
            self.train_ = _unit_rows(sketch.astype(np.float32) @ self.projection_)
        elif sp.issparse(x):
            csr = sp.csr_matrix(x, dtype=np.float64)
            df = np.bincount(csr.indices, minlength=csr.shape[1])
            self.keep_ = df <= self.max_df * csr.shape[0]
            csr = csr.multiply(self.keep_[None, :]).tocsr()
            csr.eliminate_zeros()
            self.index_ = csr.T.tocsr()  # (n_features, n_train): the inverted index
        else:
            self.train_ = np.asarray(x, dtype=np.float32)

    def _similarity(self, x: Features) -> FloatArray:
        if hasattr(self, "projection_"):
            z = _unit_rows(_sketch(sp.csr_matrix(x)).astype(np.float32) @ self.projection_)
            return np.asarray(z @ self.train_.T, dtype=np.float64)
        if hasattr(self, "index_"):
            return np.asarray(
                (sp.csr_matrix(x).multiply(self.keep_[None, :]) @ self.index_).toarray()
            )
        return np.asarray(np.asarray(x, dtype=np.float32) @ self.train_.T, dtype=np.float64)

    def _estimate(self, sims: FloatArray) -> FloatArray:
        """Shrunk neighbour means from similarities, shape (n, n_train) -> (n, n_models)."""
        n_train = sims.shape[1]
        k = min(self.n_neighbors, n_train)
        if k < n_train:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n_train), (sims.shape[0], n_train))
        w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0)
        if self.power != 1.0:
            w = w**self.power
        num = np.einsum("ik,ikm->im", w, self._filled[top]) + self.shrinkage * self.prior_
        den = np.einsum("ik,ikm->im", w, self._observed[top].astype(np.float64)) + self.shrinkage
        safe = den > 0
        out = np.where(safe, num / np.where(safe, den, 1.0), self.prior_)
        return np.asarray(out, dtype=np.float64)

    def _predict_features(self, x: Features) -> FloatArray:
        n = x.shape[0]
        out = np.empty((n, len(self.models_)))
        for start in range(0, n, _CHUNK):
            out[start : start + _CHUNK] = self._estimate(
                self._similarity(x[start : start + _CHUNK])
            )
        return out

    def _estimate_one(self, sims: npt.NDArray[np.float32] | FloatArray) -> FloatArray:
        """:meth:`_estimate` for one prompt's similarities, shape (n_train,) -> (n_models,).

        The same neighbours and formula with fewer temporary arrays: the scores and the
        observed mask are gathered together from one (n_train, 2 * n_models) array. ``sims``
        is a scratch array: it is overwritten.
        """
        n_train = sims.shape[0]
        k = min(self.n_neighbors, n_train)
        if k < n_train:
            # The same selection as argpartition(-sims), negated in place (no copy).
            negated = np.negative(sims, out=sims)
            top = negated.argpartition(k - 1)[:k]
            w = np.maximum(np.negative(negated[top]), 0.0, dtype=np.float64)
        else:
            top = np.arange(n_train)
            w = np.maximum(sims, 0.0, dtype=np.float64)
        if self.power != 1.0:
            w = w**self.power
        targets = self.__dict__.get("_targets")
        if targets is None:  # built on first use, not saved (see __getstate__)
            targets = np.hstack([self._filled, self._observed.astype(np.float64)])
            self._targets = targets
        both = np.dot(w, targets.take(top, axis=0))
        m = self.prior_.size
        num = both[:m] + self.shrinkage * self.prior_
        den = both[m:] + self.shrinkage
        if self.shrinkage > 0:  # then every den > 0 (weights are >= 0)
            return np.asarray(num / den)
        safe = den > 0
        return np.asarray(np.where(safe, num / np.where(safe, den, 1.0), self.prior_))

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_targets"}

    def _predict_row(self, row: SparseRow) -> FloatArray:
        idx, val = row
        if hasattr(self, "projection_"):
            if idx.size == 0:
                return np.asarray(self._estimate(np.zeros((1, self.train_.shape[0])))[0])
            bucket, signed = _signed_buckets(idx, val)
            # The count sketch times the projection, as one product over the prompt's
            # features (rows of the projection gathered by bucket; equal buckets add up).
            z = np.dot(signed, self.projection_.take(bucket, axis=0))
            norm = np.sqrt(np.dot(z, z))
            if norm > 0:
                z /= norm
            return self._estimate_one(np.dot(self.train_, z))
        keep = self.keep_[idx]
        idx, val = idx[keep], val[keep]
        index = self.index_
        starts = index.indptr[idx]
        lengths = index.indptr[idx + 1] - starts
        total = int(lengths.sum())
        n_train = index.shape[1]
        sims: FloatArray
        if total == 0:
            sims = np.zeros(n_train)
        else:
            offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            pos = np.arange(total) + offsets
            sims = np.bincount(
                index.indices[pos],
                weights=index.data[pos] * np.repeat(val, lengths),
                minlength=n_train,
            ).astype(np.float64)
        return self._estimate_one(sims)
