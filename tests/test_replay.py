"""Replay runs Router.route itself; curves, baselines and summaries on small hand examples."""

import math
from pathlib import Path

import numpy as np
import pytest

from fixtures.toy_router import FirstWordPredictor, ToyUtilityPolicy
from turnout import Catalog, ModelCard, Router
from turnout.evaluation import OutcomeTable, load_outcomes, split_by_prompt
from turnout.evaluation.baselines import baselines, summarize
from turnout.evaluation.lab import RouterSpec, evaluate
from turnout.evaluation.replay import (
    RouterCurve,
    outcomes_of,
    replay,
    requests_for,
    sweep,
    willingness_grid,
)
from turnout.policies import CheapestPolicy

FIXTURE = Path(__file__).parent / "fixtures" / "outcomes_small.jsonl"


def _table(scores: list[list[float]], cost: list[list[float]], tasks: list[str]) -> OutcomeTable:
    s, c = np.array(scores, dtype=float), np.array(cost, dtype=float)
    n, m = s.shape
    return OutcomeTable(
        prompt_ids=tuple(f"p{i}" for i in range(n)),
        prompts=tuple(f"prompt {i}" for i in range(n)),
        tasks=tuple(tasks),
        models=tuple(f"m{j}" for j in range(m)),
        scores=s,
        input_tokens=np.ones((n, m)),
        output_tokens=np.ones((n, m)),
        cost_usd=c,
        cost_recorded=np.ones((n, m), dtype=bool),
        tokens_recorded=np.ones((n, m), dtype=bool),
    )


def _router(table: OutcomeTable, wtp: float = 0.0) -> Router:
    predictor = FirstWordPredictor().fit(table.prompts, table.scores, table.models)
    return Router(table.to_catalog(), table.models, ToyUtilityPolicy(wtp), predictor=predictor)


def test_outcomes_of_worked_example() -> None:
    # choices [0, 1, 1]: quality (1 + 0 + 1)/3 = 2/3, cost (1 + 4 + 6)/3 = 11/3
    table = _table([[1, 0], [0, 0], [0, 1]], [[1, 2], [3, 4], [5, 6]], ["a", "a", "b"])
    quality, cost = outcomes_of(table, [0, 1, 1])
    assert quality[0] == pytest.approx(2 / 3) and cost[0] == pytest.approx(11 / 3)
    curve = RouterCurve.from_choices("x", table, [[0, 1, 1], [0, 0, 0]])
    np.testing.assert_allclose(curve.call_share, [[1 / 3, 2 / 3], [1.0, 0.0]])
    assert curve.quality[1] == pytest.approx(1 / 3) and curve.cost_usd[1] == pytest.approx(3.0)


def test_replay_is_router_route_prompt_by_prompt() -> None:
    table = load_outcomes(FIXTURE)
    router = _router(table, wtp=1.0)
    chosen = replay(router, table)
    one_by_one = [table.models.index(router.route(r).model) for r in requests_for(table.prompts)]
    assert chosen.tolist() == one_by_one


def test_replay_rejects_a_candidate_without_outcomes() -> None:
    table = load_outcomes(FIXTURE)
    catalog = Catalog([ModelCard(id="elsewhere", provider="x")])
    with pytest.raises(ValueError, match="'elsewhere'.*no recorded outcomes"):
        replay(Router(catalog, ["elsewhere"], CheapestPolicy()), table)


def test_willingness_grid_worked_example() -> None:
    # One prompt: m1 costs 4 USD more and is predicted .4 better -> switch at 4/.4 = 10.
    # Grid: 0, the quantiles of {10} (all 10), and inf (always the best predicted).
    grid = willingness_grid([[0.5, 0.9]], [[1.0, 5.0]], n_points=3)
    assert grid.tolist() == [0.0, 10.0, math.inf]
    # A dearer model predicted worse never switches: only the two ends.
    assert willingness_grid([[0.9, 0.5]], [[1.0, 5.0]]).tolist() == [0.0, math.inf]


def test_sweep_spans_cheapest_to_best() -> None:
    table = load_outcomes(FIXTURE)
    train, test = split_by_prompt(table, 0.3, seed=1)
    predictor = FirstWordPredictor().fit(train.prompts, train.scores, train.models)
    router = Router(table.to_catalog(), table.models, ToyUtilityPolicy(0.0), predictor=predictor)
    ticks: list[tuple[int, int]] = []
    curve = sweep(
        router, test, ToyUtilityPolicy, n_points=8, progress=lambda d, t: ticks.append((d, t))
    )
    assert ticks[-1][0] == ticks[-1][1] == len(curve.quality)
    # willingness 0: always the cheapest model ("small")
    assert (curve.choices[0] == table.models.index("small")).all()
    # the top of the grid: the best predicted model (ties broken by cost), quality 1 here
    assert curve.quality[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve.willingness_to_pay) > 0)


def test_baselines_worked_example() -> None:
    # m0: quality (1+0+0)/3 = 1/3, cost 1; m1: (1+1+0)/3 = 2/3, cost 2; m2: (0+1+1)/3 = 2/3,
    # cost 9. Best single = m1 (tied on quality with m2, and cheaper); weak = m0.
    # Oracle: p0 -> m0 (cost 1), p1 -> m1 (2), p2 -> m2 (9): quality 1, cost 12/3 = 4.
    table = _table(
        [[1, 1, 0], [0, 1, 1], [0, 0, 1]], [[1, 2, 9], [1, 2, 9], [1, 2, 9]], ["a", "a", "b"]
    )
    base = baselines(table)
    assert base.best.name == "m1" and base.weak.name == "m0"
    assert base.oracle.quality == pytest.approx(1.0)
    assert base.oracle.cost_usd == pytest.approx(4.0)
    assert base.cost_min_usd == 1 and base.cost_max_usd == 9
    # random mix hull: (1, 1/3) -> (2, 2/3); m2 at (9, 2/3) adds no quality
    assert base.zero_cost_usd.tolist() == [1, 2]
    np.testing.assert_allclose(base.zero_quality, [1 / 3, 2 / 3])


def test_summarize_two_models_uses_call_share() -> None:
    # weak m0 (q .5, cost 1), strong m1 (q 1, cost 3) on 4 prompts; m0 right on p0, p1.
    table = _table([[1, 1], [1, 1], [0, 1], [0, 1]], [[1, 3]] * 4, ["a", "a", "b", "b"])
    base = baselines(table)
    # Router points: all weak, [0,0,1,1] (q 1, share .5, cost 2), all strong.
    curve = RouterCurve.from_choices(
        "r", table, [[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]], [0, 1, 2]
    )
    s = summarize("r", curve.quality, curve.cost_usd, table, base, curve)
    # PGR: 0, 1, 1 at shares 0, .5, 1: APGR = (0+1)/2*.5 + 1*.5 = .75; CPT(50%) = .25
    assert s.share_kind == "calls"
    assert s.apgr == pytest.approx(0.75) and s.cpt50 == pytest.approx(0.25)
    assert s.cpt80 == pytest.approx(0.4)
    # parity (q >= 1): cheapest point is cost 2 -> savings 1 - 2/3 = 1/3
    assert s.savings_at_parity == pytest.approx(1 / 3)
    assert s.max_quality == 1.0 and s.operating_point == 1
    # per task at the operating point: a -> m0 (q 1, cost 1); b -> m1 (q 1, cost 3)
    assert s.per_task["a"] == (2, 1.0, 1.0, 1.0, 3.0)
    assert s.per_task["b"] == (2, 1.0, 3.0, 1.0, 3.0)


def test_summarize_without_a_gap_reports_nan() -> None:
    # The best model is also the cheapest: PGR is undefined.
    table = _table([[1, 0], [1, 1]], [[1, 3], [1, 3]], ["a", "a"])
    base = baselines(table)
    curve = RouterCurve.from_choices("r", table, [[0, 0]], [0])
    s = summarize("r", curve.quality, curve.cost_usd, table, base, curve)
    assert math.isnan(s.apgr) and math.isnan(s.cpt50)
    assert s.savings_at_parity == pytest.approx(0.0)


def test_evaluate_end_to_end_on_the_fixture() -> None:
    table = load_outcomes(FIXTURE)
    report = evaluate(
        table,
        [RouterSpec("toy", FirstWordPredictor)],
        policy_factory=ToyUtilityPolicy,
        split="cross-task",
        test_tasks=["qa"],
        n_points=6,
    )
    data = report.to_json()
    assert data["best_single"]["model"] == "mid"
    assert data["test_tasks"] == ["qa"] and data["cost_kind"] == "modelled"
    toy = data["routers"]["toy"]
    for key in ("apgr", "cpt50", "cpt80", "aiq", "savings_at_parity", "savings_at_95"):
        assert key in toy
    assert "| toy |" in report.to_markdown()


def test_cross_fitted_evaluation_scores_every_prompt_once() -> None:
    table = load_outcomes(FIXTURE)
    fits: list[int] = []

    class CountingPredictor(FirstWordPredictor):
        def fit(self, prompts, scores, models):  # type: ignore[no-untyped-def]
            fits.append(len(prompts))
            return super().fit(prompts, scores, models)

    report = evaluate(
        table,
        [RouterSpec("toy", CountingPredictor)],
        policy_factory=ToyUtilityPolicy,
        folds=3,
        n_points=5,
    )
    assert len(fits) == 3 and report.n_test_prompts == table.n_prompts
    assert report.split == "random (3-fold)" and report.to_json()["folds"] == 3
    # the curve covers all prompts; per benchmark ("code", "qa") each gets its own baselines
    toy = report.to_json()["routers"]["toy"]
    assert set(toy["by_benchmark"]) == {"code", "qa"}
    assert toy["by_benchmark"]["code"]["n_prompts"] == 12
    loto = evaluate(
        table,
        [RouterSpec("toy", FirstWordPredictor)],
        policy_factory=ToyUtilityPolicy,
        split="cross-task",
        folds=2,
        n_points=5,
    )
    assert loto.test_tasks == ("code", "qa") and loto.split == "cross-task (leave-one-task-out)"


def test_report_json_and_markdown_say_never_reached_and_cost_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # weak m0 (q .5, cost 1), strong m1 (q 1, cost 3); the router never leaves m0.
    table = _table([[1, 1], [0, 1]], [[1, 3], [1, 3]], ["a", "b"])
    base = baselines(table)
    curve = RouterCurve.from_choices("stuck", table, [[0, 0]], [0.0])
    stuck = summarize("stuck", curve.quality, curve.cost_usd, table, base, curve)
    mix = summarize("random mix", base.zero_quality, base.zero_cost_usd, table, base)
    from turnout.evaluation.report import EvalReport

    report = EvalReport(
        dataset="t",
        split="random",
        seed=0,
        test_tasks=(),
        n_train_prompts=0,
        n_test_prompts=2,
        models=table.models,
        cost_kind=table.cost_kind,
        baselines=base,
        random_mix=mix,
        routers=(stuck,),
    )
    data = report.to_json()
    assert data["routers"]["stuck"]["savings_at_parity"] is None  # never reached: None, not 0
    assert data["cost_kind"] == "recorded" and "recorded by the dataset" in data["cost_note"]
    md = report.to_markdown()
    row = next(line for line in md.splitlines() if line.startswith("| stuck |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("0.500 [") and cells[2].startswith("n/a")
    assert "cost: recorded" in md
    low, high = data["routers"]["stuck"]["ci95"]["max_quality"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    report.print_rich()  # intervals such as "[n/a, 66.7%]" must print, not vanish as markup
    out = capsys.readouterr().out
    assert "[n/a, 66.7%]" in out and "95% paired-bootstrap interval" in out
