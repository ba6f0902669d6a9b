"""Contract suite over every registered policy, plus each policy's own rules and calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from turnout import Catalog, Router, RouteRequest
from turnout.catalog import ModelCard
from turnout.errors import ConfigError
from turnout.policies import (
    POLICIES,
    QualityFloorPolicy,
    RandomPolicy,
    ThresholdPolicy,
    UtilityPolicy,
    calibrate_quality_floor,
    calibrate_threshold,
)
from turnout.policies.floor import floor_choices
from turnout.types import CandidateScore

# Constructor arguments for each registered policy in the contract suite.
PARAMS: dict[str, dict[str, object]] = {
    "cheapest": {},
    "fixed": {"model": "big"},
    "quality_floor": {"floor": 0.6},
    "random": {},
    "threshold": {"strong": "big", "weak": "small", "threshold": 0.1},
    "utility": {"willingness_to_pay_usd": 0.05},
}


def test_every_registered_policy_is_in_the_contract_suite() -> None:
    assert set(PARAMS) == set(POLICIES)


def _catalog() -> Catalog:
    return Catalog(
        [
            ModelCard(id="small", provider="a", input_usd_per_mtok=0.1, output_usd_per_mtok=0.4),
            ModelCard(id="mid", provider="b", input_usd_per_mtok=1.0, output_usd_per_mtok=4.0),
            ModelCard(id="big", provider="c", input_usd_per_mtok=5.0, output_usd_per_mtok=20.0),
        ]
    )


class _Fixed:
    """A stand-in quality predictor: fixed quality per model, any prompt."""

    def __init__(self, quality: dict[str, float]) -> None:
        self.models_ = list(quality)
        self._q = np.array(list(quality.values()))

    def fit(self, prompts, scores, models):  # type: ignore[no-untyped-def]
        return self

    def predict(self, prompts):  # type: ignore[no-untyped-def]
        return np.tile(self._q, (len(prompts), 1))


def _router(name: str) -> Router:
    quality = _Fixed({"small": 0.5, "mid": 0.7, "big": 0.9})
    return Router(
        _catalog(), ["small", "mid", "big"], POLICIES[name](**PARAMS[name]), predictor=quality
    )


def _candidates() -> list[CandidateScore]:
    return [
        CandidateScore("small", 0.5, 0.0001, 1.0, 100),
        CandidateScore("mid", 0.7, 0.001, 1.5, 100),
        CandidateScore("big", 0.9, 0.01, 2.0, 100),
    ]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_ranks_every_candidate_and_is_deterministic(name: str) -> None:
    policy = POLICIES[name](**PARAMS[name])
    request = RouteRequest(prompt="hi")
    first = policy.choose(_candidates(), request, seed=7)
    again = policy.choose(list(reversed(_candidates())), request, seed=7)
    assert sorted(c.model for c in first.ranked) == ["big", "mid", "small"]
    assert first.ranked[0].model == again.ranked[0].model
    assert first.reason and "\n" not in first.reason
    assert policy.name == name


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_router_decision_is_a_catalog_candidate_and_repeatable(name: str) -> None:
    router = _router(name)
    request = RouteRequest(prompt="What is the capital of France?", input_tokens=12)
    decision = router.route(request)
    assert decision.model in router.catalog and decision.model in router.candidates
    assert router.route(request) == decision
    assert set(decision.ranked) == {"small", "mid", "big"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_max_cost_constraint_is_respected(name: str) -> None:
    router = _router(name)
    cheap_only = router.route(RouteRequest(prompt="x", input_tokens=1000, max_cost_usd=0.0012))
    assert cheap_only.model == "small"
    for c in cheap_only.candidates:
        assert c.cost_usd is not None and c.cost_usd <= 0.0012
    assert {r.model for r in cheap_only.removed} == {"mid", "big"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_empty_prompt_gets_a_valid_decision(name: str) -> None:
    decision = _router(name).route(RouteRequest())
    assert decision.model in {"small", "mid", "big"}


def test_utility_trades_quality_against_cost_at_the_willingness_to_pay() -> None:
    request = RouteRequest()
    cands = _candidates()
    assert UtilityPolicy(0).choose(cands, request, seed=0).ranked[0].model == "small"
    assert UtilityPolicy(math.inf).choose(cands, request, seed=0).ranked[0].model == "big"
    # mid over small: +0.2 quality for +$0.0009 -> worth it above $0.0045 per quality point.
    assert UtilityPolicy(0.004).choose(cands, request, seed=0).ranked[0].model == "small"
    assert UtilityPolicy(0.005).choose(cands, request, seed=0).ranked[0].model == "mid"
    top = UtilityPolicy(0.005).choose(cands, request, seed=0).ranked[0]
    assert top.score == pytest.approx(0.7 - 0.001 / 0.005)


def test_utility_latency_penalty_and_unpriced_candidates() -> None:
    fast = CandidateScore("fast", 0.8, 0.001, 0.5, 10)
    slow = CandidateScore("slow", 0.85, 0.001, 5.0, 10)
    assert UtilityPolicy(1.0).choose([fast, slow], RouteRequest(), seed=0).ranked[0].model == "slow"
    penalised = UtilityPolicy(1.0, latency_penalty_per_s=0.05)
    assert penalised.choose([fast, slow], RouteRequest(), seed=0).ranked[0].model == "fast"
    unpriced = CandidateScore("free?", 0.99, None, 1.0, 10)
    assert (
        UtilityPolicy(1.0).choose([unpriced, fast], RouteRequest(), seed=0).ranked[0]
        == (UtilityPolicy(1.0).choose([fast], RouteRequest(), seed=0).ranked[0])
    )


def test_utility_rejects_a_negative_willingness_to_pay() -> None:
    with pytest.raises(ConfigError, match="`willingness_to_pay_usd` must be a number >= 0"):
        UtilityPolicy(-1.0)


def test_quality_floor_picks_the_cheapest_clearing_candidate() -> None:
    request = RouteRequest()
    assert QualityFloorPolicy(0.6).choose(_candidates(), request, seed=0).ranked[0].model == "mid"
    assert QualityFloorPolicy(0.4).choose(_candidates(), request, seed=0).ranked[0].model == "small"
    none = QualityFloorPolicy(0.95).choose(_candidates(), request, seed=0)
    assert none.ranked[0].model == "big" and "no candidate" in none.reason
    with pytest.raises(ConfigError, match=r"`floor` must be a number in \[0, 1\]; got 1.5"):
        QualityFloorPolicy(1.5)


def test_quality_floor_calibration_meets_the_floor_on_held_out_data() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    # True success probabilities; the predictor is over-confident by 0.3 on the cheap model.
    p_true = np.column_stack([rng.uniform(0.2, 0.9, n), np.full(n, 0.9)])
    predicted = p_true + np.array([0.3, 0.0])
    cost = np.tile([0.001, 0.01], (n, 1))
    calib = rng.random((n, 2)) < p_true
    test = rng.random((n, 2)) < p_true
    floor = 0.8
    naive = test[np.arange(n), floor_choices(predicted, cost, floor)].mean()
    assert naive < floor  # the uncalibrated bar misses the floor
    threshold = calibrate_quality_floor(predicted, calib, cost, floor)
    assert threshold > floor
    realised = test[np.arange(n), floor_choices(predicted, cost, threshold)].mean()
    assert realised >= floor - 0.01
    # The calibrated policy is cheaper than always calling the expensive model.
    assert cost[np.arange(n), floor_choices(predicted, cost, threshold)].mean() < 0.01
    # With honest predictions a per-prompt bar at the floor overshoots the mean: calibration
    # lowers the bar (cheaper traffic) and still meets the floor.
    honest = calibrate_quality_floor(p_true, calib, cost, floor)
    assert honest < floor
    assert test[np.arange(n), floor_choices(p_true, cost, honest)].mean() >= floor - 0.01


def test_threshold_policy_sends_large_gaps_to_the_strong_model() -> None:
    policy = ThresholdPolicy("big", "small", threshold=0.3)
    request = RouteRequest()
    assert policy.choose(_candidates(), request, seed=0).ranked[0].model == "big"  # gap 0.4
    assert ThresholdPolicy("big", "small", 0.5).choose(_candidates(), request, seed=0).ranked[
        0
    ].model == ("small")
    only_weak = policy.choose(_candidates()[:2], request, seed=0)
    assert only_weak.ranked[0].model == "small" and "only" in only_weak.reason
    with pytest.raises(ConfigError, match="`strong` and `weak` must differ"):
        ThresholdPolicy("a", "a")


def test_threshold_calibration_hits_the_target_strong_share() -> None:
    gaps = np.random.default_rng(1).normal(0.1, 0.2, 1000)
    for share in (0.0, 0.2, 0.5, 0.8, 1.0):
        t = calibrate_threshold(gaps, share)
        assert np.mean(gaps > t) == pytest.approx(share, abs=0.002)
    with pytest.raises(ConfigError, match="`strong_share`"):
        calibrate_threshold(gaps, 1.2)


def test_random_policy_is_seeded_and_covers_every_candidate() -> None:
    policy = RandomPolicy()
    picks = [
        policy.choose(_candidates(), RouteRequest(), seed=s).ranked[0].model for s in range(300)
    ]
    assert set(picks) == {"small", "mid", "big"}
    counts = {m: picks.count(m) for m in set(picks)}
    assert min(counts.values()) > 60
    assert picks == [
        policy.choose(_candidates(), RouteRequest(), seed=s).ranked[0].model for s in range(300)
    ]
    weighted = RandomPolicy({"small": 0.0, "mid": 0.0})
    assert {
        weighted.choose(_candidates(), RouteRequest(), seed=s).ranked[0].model for s in range(50)
    } == {"big"}
    with pytest.raises(ConfigError, match=r"`weights\['mid'\]` must be a number >= 0"):
        RandomPolicy({"mid": -1})


def test_router_seed_differs_by_prompt_for_the_random_policy() -> None:
    router = _router("random")
    chosen = {router.route(RouteRequest(prompt=f"prompt {i}")).model for i in range(60)}
    assert chosen == {"small", "mid", "big"}


def _floor_world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cheap model right with a known per-prompt chance p (its prediction), strong with 0.95."""
    p = rng.uniform(0.3, 1.0, n)
    quality = np.column_stack([p, np.full(n, 0.95)])
    realised = (rng.random((n, 2)) < quality).astype(float)
    cost = np.tile([1.0, 10.0], (n, 1))
    return quality, realised, cost


def test_quality_floor_calibration_with_confidence_meets_the_floor_on_new_traffic() -> None:
    rng = np.random.default_rng(11)
    floor, met = 0.85, {0.5: 0, 0.9: 0}
    trials = 60
    for _ in range(trials):
        q, y, c = _floor_world(rng, 300)
        fresh_q, fresh_y, fresh_c = _floor_world(rng, 3000)
        rows = np.arange(len(fresh_q))
        for conf in met:
            t = calibrate_quality_floor(q, y, c, floor, confidence=conf)
            got = fresh_y[rows, floor_choices(fresh_q, fresh_c, t)].mean()
            met[conf] += bool(got >= floor)
    # point-estimate calibration meets the floor on new traffic only about half the time
    assert met[0.5] / trials < 0.75
    assert met[0.9] / trials >= 0.8
    q, y, c = _floor_world(np.random.default_rng(3), 300)
    assert calibrate_quality_floor(q, y, c, floor, confidence=0.9) >= calibrate_quality_floor(
        q, y, c, floor, confidence=0.5
    )


@pytest.mark.parametrize("bad", [0.4, 1.0, "high"])
def test_quality_floor_calibration_rejects_a_bad_confidence(bad: object) -> None:
    q, y, c = _floor_world(np.random.default_rng(0), 10)
    with pytest.raises(ConfigError, match="confidence"):
        calibrate_quality_floor(q, y, c, 0.8, confidence=bad)  # type: ignore[arg-type]
