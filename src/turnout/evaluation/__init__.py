"""The offline evaluation lab: recorded-outcome datasets, splits, replay, metrics, reports."""

from turnout.evaluation.datasets import (
    DEFAULT_OUTPUT_TOKENS,
    CostKind,
    ModelPrice,
    OutcomeTable,
    concat_tables,
    load_outcomes,
    read_prices,
)
from turnout.evaluation.splits import (
    Split,
    kfold_by_prompt,
    leave_one_task_out,
    split_by_prompt,
    split_cross_task,
    top_level_task,
)

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "CostKind",
    "ModelPrice",
    "OutcomeTable",
    "Split",
    "concat_tables",
    "kfold_by_prompt",
    "leave_one_task_out",
    "load_outcomes",
    "read_prices",
    "split_by_prompt",
    "split_cross_task",
    "top_level_task",
]
