"""``irt``: item response theory with prompt parameters predicted from text.

Each model has an ability; each prompt has a difficulty and a discrimination. In the
compensatory multidimensional two-parameter logistic model (Reckase, *Multidimensional Item
Response Theory*, 2009), the chance that model ``m`` answers prompt ``i`` well is::

    p[i, m] = sigmoid(a_i . theta_m + c_m - b_i)

with ``c_m`` the model's general ability, ``theta_m`` (``n_dims`` values) its ability on the
latent skills, ``b_i`` the prompt's difficulty and ``a_i`` its discrimination (loadings on the
skills). Soft scores in [0, 1] (MT-Bench grades, CommonGen) are used as soft labels of the
cross-entropy.

Fitting has three steps:

1. fit every parameter (per prompt and per model) to the training score matrix by
   full-batch Adam on the L2-penalised cross-entropy of the observed cells;
2. learn ridge regressions from the encoded prompt to ``(a_i, b_i)``, so new prompts get
   parameters from their text;
3. refit the model parameters on *cross-fitted* predicted prompt parameters (each prompt's
   ``(a, b)`` predicted by a regression that did not see it), so that predicted
   probabilities are calibrated for unseen prompts.

Because prompts are described in the same latent space for every model, a new model needs
only a handful of outcomes to be placed in it: :meth:`IRTPredictor.add_model` fits its
``(theta, c)`` from a few scored prompts, starting from the mean of the known models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
import numpy.typing as npt

from turnout.errors import ConfigError
from turnout.features.encoders import SparseRow
from turnout.predictors._common import (
    CompactLinear,
    EncodedPredictor,
    Features,
    FloatArray,
    check_prompts,
)
from turnout.predictors.linear import fit_ridge

__all__ = ["IRTPredictor"]


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


class _Adam:
    """Adam (Kingma and Ba, 2015) over a list of arrays, updated in place."""

    def __init__(self, params: list[FloatArray], lr: float) -> None:
        self.params = params
        self.lr = lr
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[FloatArray]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + 1e-8)


def _fit_models(
    a: FloatArray,
    b: FloatArray,
    y: FloatArray,
    observed: npt.NDArray[np.bool_],
    theta: FloatArray,
    c: FloatArray,
    *,
    l2: float,
    steps: int,
    lr: float,
    prior: tuple[FloatArray, float] | None = None,
) -> None:
    """Fit ``theta`` (n_models, d) and ``c`` (n_models,) in place, prompt params fixed."""
    weight = observed / max(int(observed.sum()), 1)
    opt = _Adam([theta, c], lr)
    for _ in range(steps):
        g = (_sigmoid(a @ theta.T + c - b[:, None]) - y) * weight
        t0, c0 = prior if prior is not None else (0.0, 0.0)
        total = max(int(observed.sum()), 1)
        opt.step([g.T @ a + l2 * (theta - t0) / total, g.sum(axis=0) + l2 * (c - c0) / total])


class IRTPredictor(EncodedPredictor):
    """Multidimensional 2PL item response model with text-predicted prompt parameters.

    Args:
        n_dims: Latent skill dimensions ``d`` (>= 1).
        l2: L2 penalty on every latent parameter (per observed cell).
        alpha: Ridge penalty of the regressions from text to prompt parameters.
        steps: Adam steps of the joint fit.
        learning_rate: Adam step size.
        cv: Folds of the cross-fitting used to calibrate model parameters (>= 2).
        encoder: Name in :data:`turnout.features.encoders.ENCODERS`.
        random_state: Seed of the initial latent values and of the folds.

    Attributes:
        models_: Column names.
        encoder_: The fitted encoder.
        theta_: Skill abilities, shape (n_models, n_dims).
        ability_: General abilities ``c``, shape (n_models,).
        prompt_map_: Text -> ``(a_1..a_d, b)`` regression.
    """

    def __init__(
        self,
        n_dims: int = 2,
        l2: float = 1.0,
        alpha: float = 1.0,
        steps: int = 300,
        learning_rate: float = 0.05,
        cv: int = 3,
        encoder: str = "hashing",
        random_state: int = 0,
    ) -> None:
        self.n_dims = n_dims
        self.l2 = l2
        self.alpha = alpha
        self.steps = steps
        self.learning_rate = learning_rate
        self.cv = cv
        self.encoder = encoder
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.n_dims, int) or self.n_dims < 1:
            raise ConfigError(f"`n_dims` must be an int >= 1; got {self.n_dims!r}", field="n_dims")
        if not isinstance(self.cv, int) or self.cv < 2:
            raise ConfigError(f"`cv` must be an int >= 2; got {self.cv!r}", field="cv")
        for name in ("l2", "alpha", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`{name}` must be > 0; got {getattr(self, name)!r}", field=name)

    def _fit_features(self, x: Features, y: FloatArray) -> None:
        n, n_models = y.shape
        d = self.n_dims
        rng = np.random.default_rng(self.random_state)
        observed = ~np.isnan(y)
        filled = np.where(observed, y, 0.0)
        a = rng.normal(0.0, 0.1, (n, d))
        b = np.zeros(n)
        theta = rng.normal(0.0, 0.1, (n_models, d))
        c = np.zeros(n_models)
        total = max(int(observed.sum()), 1)
        weight = observed / total
        opt = _Adam([a, b, theta, c], self.learning_rate)
        for _ in range(self.steps):
            g = (_sigmoid(a @ theta.T + c - b[:, None]) - filled) * weight
            opt.step(
                [
                    g @ theta + self.l2 * a / total,
                    -g.sum(axis=1) + self.l2 * b / total,
                    g.T @ a + self.l2 * theta / total,
                    g.sum(axis=0),
                ]
            )
        targets = np.column_stack([a, b])
        self.prompt_map_: CompactLinear = fit_ridge(x, targets, self.alpha)
        # Cross-fitted prompt parameters, to calibrate the model parameters for unseen prompts.
        folds = rng.permutation(n) % min(self.cv, n)
        crossed = np.empty_like(targets)
        for k in range(min(self.cv, n)):
            test = folds == k
            if test.all():
                crossed[test] = targets[test]
                continue
            crossed[test] = fit_ridge(x[~test], targets[~test], self.alpha).apply(x[test])
        _fit_models(
            crossed[:, :d],
            crossed[:, d],
            filled,
            observed,
            theta,
            c,
            l2=self.l2,
            steps=self.steps,
            lr=self.learning_rate,
        )
        self.theta_ = theta
        self.ability_ = c

    def _from_params(self, params: FloatArray) -> FloatArray:
        d = self.n_dims
        z = params[..., :d] @ self.theta_.T + self.ability_ - params[..., d : d + 1]
        return _sigmoid(z)

    def _predict_features(self, x: Features) -> FloatArray:
        return self._from_params(self.prompt_map_.apply(x))

    def _predict_row(self, row: SparseRow) -> FloatArray:
        return self._from_params(self.prompt_map_.apply_row(row))

    def _row_linear(self) -> tuple[CompactLinear, Callable[[FloatArray], FloatArray]]:
        """The linear map of the fast path and what turns its output into the prediction."""
        return self.prompt_map_, self._from_params

    def add_model(
        self,
        model: str,
        prompts: Sequence[str],
        scores: npt.ArrayLike,
        *,
        l2: float | None = None,
        steps: int = 200,
    ) -> Self:
        """Place a new model in the fitted latent space from a handful of its outcomes.

        Prompt parameters come from the text (the same regressions as for prediction); the
        new model's ``(theta, c)`` are fitted to ``scores`` with an L2 pull towards the mean
        of the known models, so with no or few outcomes it starts as an average model.

        Args:
            model: Name of the new column (appended to ``models_``); must be new.
            prompts: Prompts the new model answered, shape (k,); may be empty.
            scores: Its quality on them in [0, 1], shape (k,).
            l2: Strength of the pull towards the mean model (default: ``self.l2``).
            steps: Adam steps.

        Returns:
            ``self``, with one more column.

        Raises:
            NotFittedError: Before :meth:`fit`.
            ValueError: If ``model`` is already known, or the shapes or values are invalid.
        """
        self._require_fitted()
        texts = check_prompts(prompts)
        y = np.asarray(scores, dtype=np.float64).reshape(-1)
        if model in self.models_:
            raise ValueError(f"`model` must be a new column; got {model!r}, already fitted")
        if y.shape != (len(texts),):
            raise ValueError(f"`scores` must have shape ({len(texts)},); got {y.shape}")
        if y.size and (np.nanmin(y) < 0 or np.nanmax(y) > 1):
            raise ValueError(f"`scores` must be in [0, 1]; got {y!r}")
        prior = (self.theta_.mean(axis=0), float(self.ability_.mean()))
        theta = prior[0][None, :].copy()
        c = np.array([prior[1]])
        if texts:
            params = self.prompt_map_.apply(self.encoder_.transform(texts))
            d = self.n_dims
            observed = ~np.isnan(y)[:, None]
            _fit_models(
                params[:, :d],
                params[:, d],
                np.nan_to_num(y)[:, None],
                observed,
                theta,
                c,
                l2=self.l2 if l2 is None else l2,
                steps=steps,
                lr=self.learning_rate,
                prior=(prior[0], prior[1]),
            )
        self.theta_ = np.vstack([self.theta_, theta])
        self.ability_ = np.concatenate([self.ability_, c])
        self.models_ = [*self.models_, model]
        return self
