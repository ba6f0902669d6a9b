"""Contract suite over every registered quality predictor, plus predictor-specific checks."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from turnout.artifact import load_predictor, save_predictor
from turnout.errors import ConfigError, NotFittedError
from turnout.predictors import (
    DEFAULT_PREDICTOR,
    PREDICTORS,
    IRTPredictor,
    KNNPredictor,
    LengthPredictor,
)

MODELS = ["small", "medium", "large", "coder"]
_TEMPLATES = {
    "math": "Solve for x: {a} x + {b} = {c}. Give the number only.",
    "code": "Write a python function `f{a}(n)` that returns n * {b} + {c}.",
    "trivia": "Which city hosted the {a} summer games? Answer with the city name.",
    "essay": "Write a short essay about the history of {word} in {a} words.",
}
_WORDS = ["bridges", "tea", "printing", "sailing", "maps", "bread", "glass", "clocks"]
# Probability of a good answer per (task, model): the large model is best except on code.
_SKILL = {
    "math": [0.2, 0.5, 0.9, 0.4],
    "code": [0.1, 0.3, 0.6, 0.95],
    "trivia": [0.7, 0.8, 0.9, 0.5],
    "essay": [0.6, 0.8, 0.85, 0.3],
}


def synthetic(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """Prompts from 4 task templates, 0/1 scores drawn from a task x model skill table."""
    rng = np.random.default_rng(seed)
    tasks = rng.choice(sorted(_TEMPLATES), size=n)
    prompts, scores = [], np.empty((n, len(MODELS)))
    for i, task in enumerate(tasks):
        a, b, c = (int(v) for v in rng.integers(2, 99, size=3))
        word = _WORDS[int(rng.integers(len(_WORDS)))]
        prompts.append(_TEMPLATES[task].format(a=a, b=b, c=c, word=word))
        scores[i] = rng.random(len(MODELS)) < np.array(_SKILL[task])
    return prompts, scores, list(MODELS)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, list[str]]:
    prompts, scores, models = synthetic(600)
    scores[::7, 1] = np.nan  # some missing outcomes
    return prompts, scores, models


_fitted: dict[str, object] = {}


def fitted(name: str, data: tuple[list[str], np.ndarray, list[str]]) -> object:
    if name not in _fitted:
        prompts, scores, models = data
        _fitted[name] = PREDICTORS[name]().fit(prompts[:500], scores[:500], models)
    return _fitted[name]


NAMES = sorted(PREDICTORS)


def test_default_predictor_is_registered() -> None:
    assert DEFAULT_PREDICTOR in PREDICTORS


@pytest.mark.parametrize("name", NAMES)
def test_init_stores_hyperparameters_unchanged(name: str) -> None:
    cls = PREDICTORS[name]
    est = cls()
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.name != "self":
            assert getattr(est, param.name) == param.default
    assert not hasattr(est, "models_")


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises_not_fitted(name: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        PREDICTORS[name]().predict(["hello"])


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_predicts_the_documented_shape(name: str, data) -> None:
    prompts, scores, models = data
    est = PREDICTORS[name]()
    assert est.fit(prompts[:500], scores[:500], models) is est
    assert est.models_ == models
    pred = est.predict(prompts[500:])
    assert pred.shape == (100, len(models))
    assert np.isfinite(pred).all() and pred.min() >= 0.0 and pred.max() <= 1.0
    assert est.predict([]).shape == (0, len(models))


@pytest.mark.parametrize("name", NAMES)
def test_learns_the_task_structure(name: str, data) -> None:
    """On held-out prompts, predictions beat the constant per-model mean (Brier score)."""
    prompts, scores, _ = data
    pred = fitted(name, data).predict(prompts[500:])  # type: ignore[attr-defined]
    truth = scores[500:]
    ok = ~np.isnan(truth)
    mean = np.nanmean(scores[:500], axis=0)
    brier = np.mean((pred - np.nan_to_num(truth))[ok] ** 2)
    brier_mean = np.mean((np.broadcast_to(mean, truth.shape) - np.nan_to_num(truth))[ok] ** 2)
    assert brier < brier_mean - 0.01


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_single_prompt_path_matches_batch(name: str, data) -> None:
    prompts, scores, models = data
    first = fitted(name, data)
    again = PREDICTORS[name]().fit(prompts[:500], scores[:500], models)
    batch = first.predict(prompts[500:510])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(batch, again.predict(prompts[500:510]))
    singles = np.vstack([first.predict([p]) for p in prompts[500:510]])  # type: ignore[attr-defined]
    np.testing.assert_allclose(singles, batch, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_empty_prompt_gets_a_valid_prediction(name: str, data) -> None:
    pred = fitted(name, data).predict([""])  # type: ignore[attr-defined]
    assert pred.shape == (1, 4) and np.isfinite(pred).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_gives_identical_predictions(name: str, data, tmp_path) -> None:
    prompts, _, _ = data
    est = fitted(name, data)
    path = tmp_path / f"{name}.predictor"
    save_predictor(est, path)
    back = load_predictor(path)
    np.testing.assert_array_equal(back.predict(prompts[500:]), est.predict(prompts[500:]))  # type: ignore[attr-defined]
    assert back.models_ == est.models_  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMES)
def test_bad_fit_input_names_the_field(name: str) -> None:
    est = PREDICTORS[name]()
    with pytest.raises(ValueError, match="`scores` must have shape"):
        est.fit(["a", "b"], np.zeros((3, 2)), ["m1", "m2"])
    with pytest.raises(ValueError, match=r"`scores` must be \[0, 1\]"):
        est.fit(["a", "b"], np.array([[0.0, 2.0], [1.0, 0.0]]), ["m1", "m2"])
    with pytest.raises(ValueError, match="`models` must be unique"):
        est.fit(["a", "b"], np.zeros((2, 2)), ["m1", "m1"])
    with pytest.raises(TypeError, match="not one str"):
        est.fit("a prompt", np.zeros((1, 1)), ["m1"])


def test_load_refuses_a_file_that_is_not_a_predictor(tmp_path: Path) -> None:
    path = tmp_path / "x.predictor"
    path.write_bytes(b"hello\n")
    with pytest.raises(ConfigError, match="not a turnout predictor file"):
        load_predictor(path)


def test_knn_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="`n_neighbors` must be an int >= 1; got 0"):
        KNNPredictor(n_neighbors=0).fit(["a"], np.zeros((1, 1)), ["m"])


def _irt_world(n_prompts: int, n_models: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts whose words set their difficulty; models of increasing ability (1-d IRT)."""
    rng = np.random.default_rng(seed)
    levels = ["trivial", "easy", "moderate", "hard", "brutal"]
    topics = ["algebra", "history", "poetry", "chemistry", "law", "music"]
    prompts, diff = [], np.empty(n_prompts)
    for i in range(n_prompts):
        k = int(rng.integers(len(levels)))
        t = topics[int(rng.integers(len(topics)))]
        prompts.append(f"A {levels[k]} question about {t} number {int(rng.integers(1000))}")
        diff[i] = (k - 2) * 1.2
    ability = np.linspace(-1.5, 1.5, n_models)
    p = 1 / (1 + np.exp(-(ability[None, :] - diff[:, None]) * 1.5))
    return prompts, (rng.random(p.shape) < p).astype(float)


def test_irt_gives_a_new_model_a_usable_prior_from_a_handful_of_outcomes() -> None:
    prompts, scores = _irt_world(400, 7, seed=1)
    models = [f"m{j}" for j in range(7)]
    train, heldout = slice(0, 300), slice(300, 400)
    known = [0, 1, 2, 4, 5, 6]  # m3 is the "new" model
    irt = IRTPredictor(n_dims=1).fit(
        prompts[train], scores[train][:, known], [models[j] for j in known]
    )
    few = list(range(10))  # ten outcomes of the new model
    irt.add_model("m3", [prompts[i] for i in few], scores[few, 3])
    assert irt.models_[-1] == "m3"
    pred = irt.predict(prompts[heldout])[:, -1]
    truth = scores[heldout, 3]
    brier = np.mean((pred - truth) ** 2)
    brier_flat = np.mean((scores[few, 3].mean() - truth) ** 2)
    # Prompt difficulty carries over from the other models: far better than a flat prior.
    assert brier < brier_flat - 0.05
    assert np.corrcoef(pred, truth)[0, 1] > 0.4
    with pytest.raises(ValueError, match="must be a new column"):
        irt.add_model("m3", [], [])


def test_irt_add_model_with_no_outcomes_is_an_average_model() -> None:
    prompts, scores = _irt_world(200, 4, seed=2)
    irt = IRTPredictor(n_dims=1).fit(prompts, scores, ["a", "b", "c", "d"])
    irt.add_model("e", [], [])
    pred = irt.predict(prompts[:50])
    assert pred.shape == (50, 5)
    assert pred[:, 0].mean() < pred[:, 4].mean() < pred[:, 3].mean()


def test_length_predictor_learns_per_model_lengths() -> None:
    rng = np.random.default_rng(0)
    prompts = [f"{'write an essay' if i % 2 else 'answer yes or no'} {i}" for i in range(120)]
    long = np.array([i % 2 for i in range(120)], dtype=float)
    tokens = np.column_stack([20 + 400 * long, 5 + 50 * long]) * rng.uniform(0.9, 1.1, (120, 2))
    est = LengthPredictor().fit(prompts, tokens, ["verbose", "terse"])
    pred = est.predict(["write an essay 999", "answer yes or no 998"])
    assert pred.shape == (2, 2) and (pred >= 1).all()
    assert pred[0, 0] > 200 and pred[1, 0] < 60 and pred[0, 1] < pred[0, 0]
    np.testing.assert_allclose(est.predict(["write an essay 999"]), pred[:1], atol=1e-9)
    with pytest.raises(ValueError, match=">= 0"):
        LengthPredictor().fit(["a"], np.array([[-1.0]]), ["m"])


@pytest.mark.parametrize("name", NAMES)
def test_router_with_each_predictor_respects_constraints(name: str, data) -> None:
    from turnout import Catalog, Router, RouteRequest
    from turnout.catalog import ModelCard
    from turnout.policies import UtilityPolicy

    prices = {"small": 0.1, "medium": 0.5, "large": 5.0, "coder": 1.0}
    catalog = Catalog(
        [
            ModelCard(id=m, provider="p", input_usd_per_mtok=p, output_usd_per_mtok=p)
            for m, p in prices.items()
        ]
    )
    router = Router(catalog, MODELS, UtilityPolicy(0.01), predictor=fitted(name, data))  # type: ignore[arg-type]
    for prompt in ("", "Solve for x: 3 x + 4 = 10. Give the number only."):
        request = RouteRequest(prompt=prompt, input_tokens=20)
        decision = router.route(request)
        assert decision.model in catalog and decision.model in MODELS
        assert router.route(request) == decision
        capped = router.route(RouteRequest(prompt=prompt, input_tokens=20, max_cost_usd=6e-5))
        assert all(c.cost_usd is not None and c.cost_usd <= 6e-5 for c in capped.candidates)
        assert "large" in {r.model for r in capped.removed}


def test_single_thread_limits_blas_and_restores_it_when_nested() -> None:
    from threadpoolctl import threadpool_info

    from turnout.predictors._common import single_thread

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with single_thread():
        assert set(blas_threads()) == {1}
        with single_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}  # the inner exit must not restore early
    assert blas_threads() == before


def test_ensemble_refit_does_not_reuse_the_previous_fits_fast_path() -> None:
    from turnout.predictors import EnsemblePredictor

    prompts = [f"What is {i} plus {i}?" for i in range(30)] + [
        f"Write a poem about the colour number {i}" for i in range(30)
    ]
    good = np.array([[1.0, 0.0]] * 30 + [[0.0, 1.0]] * 30)
    ens = EnsemblePredictor().fit(prompts, good, ["math", "poet"])
    first = ens.predict(["What is 7 plus 7?"])
    ens.fit(prompts, 1.0 - good, ["math", "poet"])
    again = ens.predict(["What is 7 plus 7?"])
    np.testing.assert_allclose(again, ens.predict(["What is 7 plus 7?", "x"])[:1], atol=1e-6)
    assert first[0, 0] > first[0, 1] and again[0, 0] < again[0, 1]
