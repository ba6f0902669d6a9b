"""Metrics against small worked examples computed by hand (the arithmetic is in comments)."""

import math

import numpy as np
import pytest

from turnout.evaluation.metrics import (
    aiq,
    apgr,
    bootstrap_intervals,
    cheapest_point_reaching,
    cost_share,
    cpt,
    non_decreasing_convex_hull,
    oracle_choices,
    per_task_breakdown,
    pgr,
    savings_at_quality,
)


def test_hull_drops_points_below_the_envelope() -> None:
    # Points (cost, quality): (1,.5) (2,.4) (3,.8) (4,.7) (5,.9).
    # (2,.4) lies below the chord (1,.5)-(3,.8) (which is .65 at 2);
    # (4,.7) lies below the chord (3,.8)-(5,.9) (which is .85 at 4).
    # Slopes .15 then .05 decrease, so the envelope is (1,.5) (3,.8) (5,.9).
    c, q = non_decreasing_convex_hull([2, 1, 5, 3, 4], [0.4, 0.5, 0.9, 0.8, 0.7])
    assert c.tolist() == [1, 3, 5]
    assert q == pytest.approx([0.5, 0.8, 0.9])


def test_hull_stops_at_the_best_quality_and_keeps_the_best_of_equal_costs() -> None:
    # (1,.3) and (1,.5) share a cost: keep .5. Peak at (2,.9); (4,.6) is after the peak.
    c, q = non_decreasing_convex_hull([1, 1, 2, 4], [0.3, 0.5, 0.9, 0.6])
    assert c.tolist() == [1, 2]
    assert q == pytest.approx([0.5, 0.9])


def test_hull_rejects_no_points() -> None:
    with pytest.raises(ValueError, match="at least one finite point"):
        non_decreasing_convex_hull([math.nan], [0.5])


def test_aiq_worked_example() -> None:
    # Hull (1,.5) (3,.8) (5,.9) over [c_min, c_max] = [1, 5]:
    # area = (.5+.8)/2*2 + (.8+.9)/2*2 = 1.3 + 1.7 = 3.0; AIQ = 3.0 / (5-1) = 0.75.
    assert aiq([2, 1, 5, 3, 4], [0.4, 0.5, 0.9, 0.8, 0.7], 1.0, 5.0) == pytest.approx(0.75)


def test_aiq_flat_after_peak() -> None:
    # Hull (1,.5) (2,.9), flat at .9 up to 4:
    # area = (.5+.9)/2*1 + .9*2 = .7 + 1.8 = 2.5; AIQ = 2.5 / 3.
    assert aiq([1, 2, 4], [0.5, 0.9, 0.6], 1.0, 4.0) == pytest.approx(2.5 / 3)


def test_aiq_counts_zero_below_the_routers_cheapest_point() -> None:
    # Router only has (3,.6) (5,.8) over [1, 5]: 0 on [1,3), then (.6+.8)/2*2 = 1.4; /4 = .35.
    assert aiq([3, 5], [0.6, 0.8], 1.0, 5.0) == pytest.approx(0.35)


def test_aiq_clips_to_the_model_cost_range() -> None:
    # Hull (0,.2) (4,.6) crosses c_min=2 at .4 and is .6 from 4 on; range [2, 6]:
    # (.4+.6)/2*2 + .6*2 = 1.0 + 1.2 = 2.2; /4 = .55.
    assert aiq([0, 4], [0.2, 0.6], 2.0, 6.0) == pytest.approx(0.55)


def test_aiq_rejects_empty_cost_range() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        aiq([1], [0.5], 2.0, 2.0)


def test_pgr_and_no_gap() -> None:
    # (.7 - .6) / (.8 - .6) = .5
    assert pgr([0.7, 0.6, 0.8], 0.6, 0.8) == pytest.approx([0.5, 0.0, 1.0])
    assert np.isnan(pgr([0.7], 0.8, 0.8)).all()


def test_apgr_worked_example() -> None:
    # q_weak .6, q_strong .8. Router (share, quality): (.25,.7) (.5,.75) -> PGR .5, .75.
    # With anchors (0,0) and (1,1):
    # area = (0+.5)/2*.25 + (.5+.75)/2*.25 + (.75+1)/2*.5 = .0625 + .15625 + .4375 = .65625.
    p = pgr([0.7, 0.75], 0.6, 0.8)
    assert apgr([0.25, 0.5], p) == pytest.approx(0.65625)


def test_apgr_of_the_random_mix_is_one_half() -> None:
    # Random mixing of weak and strong: PGR = share, so the area under y = x is 1/2.
    assert apgr([0.3, 0.6], [0.3, 0.6]) == pytest.approx(0.5)


def test_apgr_ignores_area_outside_zero_one() -> None:
    # A point at share 1.5 with PGR 1.2: the segment (1,1)-(1.5,1.2) lies outside [0,1].
    # A point at share .5 with PGR .5 on the diagonal: the area stays 1/2.
    assert apgr([0.5, 1.5], [0.5, 1.2]) == pytest.approx(0.5)


def test_cpt_worked_example() -> None:
    # Same curve as the APGR example: (0,0) (.25,.5) (.5,.75) (1,1).
    # CPT(50%): PGR .5 is first reached at share .25.
    # CPT(80%): between (.5,.75) and (1,1): .5 + (.8-.75)/(1-.75)*(1-.5) = .5 + .1 = .6.
    assert cpt([0.25, 0.5], [0.5, 0.75], 0.5) == pytest.approx(0.25)
    assert cpt([0.25, 0.5], [0.5, 0.75], 0.8) == pytest.approx(0.6)


def test_cpt_takes_the_first_crossing_of_a_non_monotone_curve() -> None:
    # (0,0) (.2,.6) (.4,.3) (1,1): PGR .5 is crossed between 0 and .2 at .5/.6*.2 = 1/6.
    assert cpt([0.2, 0.4], [0.6, 0.3], 0.5) == pytest.approx(1 / 6)


def test_cost_share() -> None:
    # (3 - 1) / (5 - 1) = .5; a point dearer than the strong model exceeds 1.
    assert cost_share([1, 3, 7], 1.0, 5.0) == pytest.approx([0.0, 0.5, 1.5])
    assert np.isnan(cost_share([1], 2.0, 2.0)).all()


def test_savings_at_parity_95_97_and_never() -> None:
    # Best single: quality .8 at cost 10. Router (cost, quality): (2,.7) (4,.78) (6,.8) (9,.82).
    cost, quality = [2, 4, 6, 9], [0.7, 0.78, 0.8, 0.82]
    # parity: cheapest with q >= .8 is cost 6 -> 1 - 6/10 = .4
    assert savings_at_quality(cost, quality, 0.8, 10.0) == pytest.approx(0.4)
    # 95%: q >= .76 -> cost 4 -> .6 ; 97%: q >= .776 -> cost 4 -> .6
    assert savings_at_quality(cost, quality, 0.95 * 0.8, 10.0) == pytest.approx(0.6)
    assert savings_at_quality(cost, quality, 0.97 * 0.8, 10.0) == pytest.approx(0.6)
    # Never reaches .9: NaN, not 0.
    assert math.isnan(savings_at_quality(cost, quality, 0.9, 10.0))


def test_oracle_picks_cheapest_best_model() -> None:
    # Prompt 0: both right -> cheaper (col 0). Prompt 1: only col 1 right.
    # Prompt 2: both wrong -> cheaper. Prompt 3: col 0 missing (NaN) -> col 1.
    scores = [[1, 1], [0, 1], [0, 0], [math.nan, 0.5]]
    cost = [[1, 5], [1, 5], [1, 5], [1, 5]]
    assert oracle_choices(scores, cost).tolist() == [0, 1, 0, 1]


def test_per_task_breakdown() -> None:
    # Two tasks; the router picks col 0 for prompts 0 and 2, col 1 for prompt 1 and 3.
    # task a (prompts 0,1): router q = (1 + 0)/2 = .5, cost = (1 + 4)/2 = 2.5;
    #   reference col 1: q = (1 + 0)/2 = .5, cost = (3 + 4)/2 = 3.5
    # task b (prompts 2,3): router q = (0 + 1)/2 = .5, cost = (2 + 6)/2 = 4;
    #   reference col 1: q = (1 + 1)/2 = 1, cost = (5 + 6)/2 = 5.5
    tasks = ["a", "a", "b", "b"]
    scores = [[1, 1], [0, 0], [0, 1], [1, 1]]
    cost = [[1, 3], [2, 4], [2, 5], [1, 6]]
    out = per_task_breakdown(tasks, scores, cost, [0, 1, 0, 1], reference=1)
    assert out["a"] == (2, 0.5, 2.5, 0.5, 3.5)
    assert out["b"] == (2, 0.5, 4.0, 1.0, 5.5)


# ---------------------------------------------------------------- bootstrap intervals


def test_bootstrap_intervals_bracket_the_estimate_and_repeat_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    n = 400
    ref_q = (rng.random(n) < 0.8).astype(float)
    ref_c = np.full(n, 1.0)
    # two points: the reference itself, and a point at 60% of its cost with 0.9x its quality
    cheap_q = np.where(rng.random(n) < 0.9, ref_q, 0.0)
    point_q = np.vstack([ref_q, cheap_q])
    point_c = np.vstack([ref_c, np.full(n, 0.6)])
    ci = bootstrap_intervals(point_q, point_c, ref_q, ref_c, n_boot=300, seed=1)
    assert set(ci) == {"savings_at_parity", "savings_at_95", "savings_at_97", "max_quality"}
    assert ci == bootstrap_intervals(point_q, point_c, ref_q, ref_c, n_boot=300, seed=1)
    low, high = ci["max_quality"]
    assert low <= ref_q.mean() <= high and high - low > 0.01
    # the cheap point's quality ratio is ~0.9: it never makes parity, so parity saves 0
    assert ci["savings_at_parity"] == (0.0, 0.0)
    # at 95% some resamples pass with the cheap point and none save more than 40%
    assert ci["savings_at_95"][1] <= 0.4 + 1e-12


def test_bootstrap_intervals_mark_unreached_targets_and_reject_bad_input() -> None:
    q = np.array([[0.0, 0.0, 0.0]])
    ref = np.array([1.0, 1.0, 1.0])
    ci = bootstrap_intervals(q, np.ones((1, 3)), ref, ref, n_boot=20)
    assert ci["savings_at_parity"] == (-math.inf, -math.inf)
    with pytest.raises(ValueError, match="shapes disagree"):
        bootstrap_intervals(q, np.ones((2, 3)), ref, ref)
    with pytest.raises(ValueError, match="finite"):
        bootstrap_intervals(q * np.nan, np.ones((1, 3)), ref, ref)
    with pytest.raises(ValueError, match="level"):
        bootstrap_intervals(q, np.ones((1, 3)), ref, ref, level=1.5)


def test_cheapest_point_reaching_keeps_a_margin_for_noise() -> None:
    # 4 prompts; the reference scores 1 on all. Point 0 (cost 1) scores [1, 1, 1, 0]: mean
    # difference from the target 0.75 is 0, sd(d) = 0.5, so its lower bound at 0.9 is
    # -1.28 * 0.5 / 2 < 0; point 1 (cost 2) scores 1 everywhere: d = 0.25 with sd 0.
    scores = [[1, 1, 1, 0], [1, 1, 1, 1]]
    costs = [[1, 1, 1, 1], [2, 2, 2, 2]]
    ref = [1, 1, 1, 1]
    assert cheapest_point_reaching(scores, costs, ref, 0.75, confidence=0.5) == (0, True)
    assert cheapest_point_reaching(scores, costs, ref, 0.75, confidence=0.9) == (1, True)
    # nothing reaches 100% with a margin except the perfect point; none reaches above it
    assert cheapest_point_reaching([[0, 0, 0, 0]], [[1, 1, 1, 1]], ref, 1.0) == (0, False)
    with pytest.raises(ValueError, match="confidence"):
        cheapest_point_reaching(scores, costs, ref, 0.75, confidence=1.0)
    with pytest.raises(ValueError, match="shapes"):
        cheapest_point_reaching(scores, costs, [1, 1], 0.75)
