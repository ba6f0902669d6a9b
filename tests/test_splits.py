from pathlib import Path

import numpy as np
import pytest

from turnout.evaluation import (
    OutcomeTable,
    concat_tables,
    kfold_by_prompt,
    leave_one_task_out,
    load_outcomes,
    split_by_prompt,
    split_cross_task,
    top_level_task,
)

FIXTURE = Path(__file__).parent / "fixtures" / "outcomes_small.jsonl"


@pytest.fixture(scope="module")
def table() -> OutcomeTable:
    return load_outcomes(FIXTURE)


def test_random_split_is_deterministic_and_disjoint(table: OutcomeTable) -> None:
    a, b = split_by_prompt(table, 0.25, seed=3), split_by_prompt(table, 0.25, seed=3)
    np.testing.assert_array_equal(a.test_indices, b.test_indices)
    assert set(a.train_indices).isdisjoint(a.test_indices)
    assert len(a.train_indices) + len(a.test_indices) == table.n_prompts
    other = split_by_prompt(table, 0.25, seed=4)
    assert not np.array_equal(a.test_indices, other.test_indices)
    train, test = a  # unpacks as (train, test)
    assert test.n_prompts == len(a.test_indices) and train.models == table.models


def test_random_split_holds_out_the_share_of_distinct_texts(table: OutcomeTable) -> None:
    # 37 ids but 36 distinct texts (dup-easy-0 repeats easy-0): round(0.25 * 36) = 9 texts.
    split = split_by_prompt(table, 0.25, seed=0)
    assert len(set(split.test.prompts)) == 9


@pytest.mark.parametrize("seed", range(12))
def test_duplicate_texts_never_straddle(table: OutcomeTable, seed: int) -> None:
    split = split_by_prompt(table, 0.5, seed=seed)
    assert set(split.train.prompts).isdisjoint(split.test.prompts)
    ids = set(split.test.prompt_ids)
    assert ("easy-0" in ids) == ("dup-easy-0" in ids)


def test_split_does_not_depend_on_line_order(table: OutcomeTable) -> None:
    shuffled = table.subset(np.random.default_rng(0).permutation(table.n_prompts))
    a, b = split_by_prompt(table, 0.3, seed=1), split_by_prompt(shuffled, 0.3, seed=1)
    assert set(a.test.prompt_ids) == set(b.test.prompt_ids)


def test_random_split_rejects_bad_sizes(table: OutcomeTable) -> None:
    with pytest.raises(ValueError, match="`test_size` must be a float in \\(0, 1\\); got 1.0"):
        split_by_prompt(table, 1.0)
    with pytest.raises(ValueError, match="at least 2 distinct prompt texts"):
        split_by_prompt(table.subset([0]), 0.5)


def test_cross_task_named_tasks(table: OutcomeTable) -> None:
    split = split_cross_task(table, test_tasks=["code"])
    assert set(split.test.tasks) == {"code"}
    assert "code" not in split.train.tasks and split.test_tasks == ("code",)
    # a top-level name holds out its sub-tasks
    qa = split_cross_task(table, test_tasks=["qa"])
    assert set(qa.test.tasks) == {"qa/easy", "qa/hard"} and set(qa.train.tasks) == {"code"}


def test_cross_task_default_is_a_seeded_top_level_choice(table: OutcomeTable) -> None:
    # top-level tasks: code, qa -> round(0.3 * 2) = 1 held out
    a, b = split_cross_task(table, seed=5), split_cross_task(table, seed=5)
    assert a.test_tasks == b.test_tasks and len(a.test_tasks) == 1
    assert {top_level_task(t) for t in a.test.tasks} == set(a.test_tasks)
    assert {split_cross_task(table, seed=s).test_tasks for s in range(10)} == {("code",), ("qa",)}


def test_cross_task_drops_training_rows_sharing_a_test_text(table: OutcomeTable) -> None:
    # Give one code prompt the text of easy-1: holding out qa must drop it from training.
    i = table.prompt_ids.index("code-0")
    prompts = list(table.prompts)
    prompts[i] = prompts[table.prompt_ids.index("easy-1")]
    from dataclasses import replace

    changed = replace(table, prompts=tuple(prompts))
    split = split_cross_task(changed, test_tasks=["qa"])
    assert "code-0" not in split.train.prompt_ids
    assert set(split.train.prompts).isdisjoint(split.test.prompts)


def test_cross_task_errors(table: OutcomeTable) -> None:
    with pytest.raises(ValueError, match="'nope', which matches no task"):
        split_cross_task(table, test_tasks=["nope"])
    with pytest.raises(ValueError, match="at least 2 top-level tasks"):
        split_cross_task(table.subset([0, 1]))
    with pytest.raises(ValueError, match="empty train or test side"):
        split_cross_task(table, test_tasks=["qa", "code"])


def test_kfold_partitions_rows_by_text(table: OutcomeTable) -> None:
    parts = kfold_by_prompt(table, k=4, seed=2)
    tests = np.concatenate([p.test_indices for p in parts])
    assert sorted(tests.tolist()) == list(range(table.n_prompts))
    for p in parts:
        assert set(p.train.prompts).isdisjoint(p.test.prompts)
        assert len(p.train_indices) + len(p.test_indices) == table.n_prompts
    # 36 distinct texts dealt to 4 folds: 9 each
    assert [len(set(p.test.prompts)) for p in parts] == [9, 9, 9, 9]
    with pytest.raises(ValueError, match="`k` must be an integer >= 2"):
        kfold_by_prompt(table, k=1)


def test_leave_one_task_out(table: OutcomeTable) -> None:
    parts = leave_one_task_out(table)
    assert [p.test_tasks for p in parts] == [("code",), ("qa",)]
    assert sum(p.test.n_prompts for p in parts) == table.n_prompts


def test_concat_tables_round_trips_a_split(table: OutcomeTable) -> None:
    parts = kfold_by_prompt(table, k=3)
    joined = concat_tables([p.test for p in parts])
    order = np.concatenate([p.test_indices for p in parts])
    assert joined.prompt_ids == tuple(table.prompt_ids[i] for i in order)
    np.testing.assert_array_equal(joined.cost_usd, table.cost_usd[order])
    assert joined.responses is not None
    with pytest.raises(ValueError, match="at least one table"):
        concat_tables([])
