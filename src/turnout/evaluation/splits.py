"""Deterministic train/test splits of an :class:`OutcomeTable`.

* :func:`split_by_prompt`: a seeded random split **by prompt text**: rows whose prompt texts
  are identical (even under different ids) always land on the same side.
* :func:`split_cross_task`: train on some tasks, test on the others, to measure how a router
  generalises to tasks it never saw. Prompt texts of the test side are also removed from the
  training side.

Both depend only on the table's content and the seed, not on the order of the file's lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from turnout.evaluation.datasets import OutcomeTable

__all__ = [
    "Split",
    "kfold_by_prompt",
    "leave_one_task_out",
    "split_by_prompt",
    "split_cross_task",
    "top_level_task",
]

IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split; unpacks as ``train, test = split``.

    Attributes:
        train: The training rows.
        test: The held-out rows.
        train_indices: Row indices of ``train`` in the original table, ascending.
        test_indices: Row indices of ``test`` in the original table, ascending.
        test_tasks: For a cross-task split, the held-out tasks (else empty).
    """

    train: OutcomeTable
    test: OutcomeTable
    train_indices: IntArray
    test_indices: IntArray
    test_tasks: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[OutcomeTable]:
        return iter((self.train, self.test))


def _make(
    table: OutcomeTable,
    test_mask: npt.NDArray[np.bool_],
    train_mask: npt.NDArray[np.bool_],
    test_tasks: tuple[str, ...] = (),
) -> Split:
    test_idx = np.flatnonzero(test_mask).astype(np.intp)
    train_idx = np.flatnonzero(train_mask).astype(np.intp)
    return Split(table.subset(train_idx), table.subset(test_idx), train_idx, test_idx, test_tasks)


def _text_key(text: str, seed: int) -> bytes:
    return hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"),
        digest_size=8,
        salt=seed.to_bytes(8, "little", signed=True),
    ).digest()


def split_by_prompt(table: OutcomeTable, test_size: float = 0.2, seed: int = 0) -> Split:
    """Split rows at random by prompt text, with a fixed seed.

    Distinct prompt texts are ordered by a seeded hash of the text; the first ones go to the
    test side until it holds ``round(test_size * n_texts)`` texts. All rows sharing a text go
    to the same side, so duplicated prompts never straddle train and test.

    Args:
        table: The outcomes to split.
        test_size: Share of distinct prompt texts held out, in (0, 1).
        seed: Seed of the split.

    Returns:
        The split; both sides non-empty when the table has at least two distinct texts.

    Raises:
        ValueError: If ``test_size`` is not in (0, 1) or the table has fewer than two
            distinct prompt texts.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"`test_size` must be a float in (0, 1); got {test_size!r}")
    texts = sorted(set(table.prompts), key=lambda t: _text_key(t, seed))
    if len(texts) < 2:
        raise ValueError(
            f"a split needs at least 2 distinct prompt texts; the table has {len(texts)}"
        )
    n_test = min(max(1, round(test_size * len(texts))), len(texts) - 1)
    test_texts = set(texts[:n_test])
    test_mask = np.array([p in test_texts for p in table.prompts], dtype=bool)
    return _make(table, test_mask, ~test_mask)


def top_level_task(task: str) -> str:
    """The benchmark a task belongs to: the part before the first ``/``.

    ``mmlu/anatomy`` -> ``mmlu``; ``gsm8k`` -> ``gsm8k``.
    """
    return task.split("/", 1)[0]


def split_cross_task(
    table: OutcomeTable,
    test_tasks: Sequence[str] | None = None,
    seed: int = 0,
    test_share: float = 0.3,
) -> Split:
    """Train on some tasks and test on the others.

    A row is held out when its task equals a name in ``test_tasks`` or lies under it
    (``mmlu`` holds out ``mmlu/anatomy``). Training rows whose prompt text also occurs in a
    held-out row are dropped, so no text is on both sides.

    Args:
        table: The outcomes to split.
        test_tasks: Tasks (or top-level tasks) to hold out. ``None`` holds out a seeded random
            ``max(1, round(test_share * k))`` of the ``k`` top-level tasks (see
            :func:`top_level_task`).
        seed: Seed for the default choice of held-out tasks.
        test_share: Share of top-level tasks held out by default, in (0, 1).

    Returns:
        The split, with ``test_tasks`` set to the held-out names.

    Raises:
        ValueError: If there are fewer than two top-level tasks, a named task matches no row,
            or the split leaves either side empty.
    """
    tops = sorted({top_level_task(t) for t in table.tasks})
    if test_tasks is None:
        if len(tops) < 2:
            raise ValueError(
                f"a cross-task split needs at least 2 top-level tasks; the table has {tops}"
            )
        if not 0 < test_share < 1:
            raise ValueError(f"`test_share` must be a float in (0, 1); got {test_share!r}")
        k = min(max(1, round(test_share * len(tops))), len(tops) - 1)
        rng = np.random.default_rng(seed)
        test_tasks = sorted(str(t) for t in rng.choice(tops, size=k, replace=False))
    names = tuple(test_tasks)

    def held(task: str) -> bool:
        return any(task == n or task.startswith(n + "/") for n in names)

    test_mask = np.array([held(t) for t in table.tasks], dtype=bool)
    for name in names:
        if not any(t == name or t.startswith(name + "/") for t in table.tasks):
            raise ValueError(f"`test_tasks` names {name!r}, which matches no task in the table")
    test_texts = {p for p, h in zip(table.prompts, test_mask, strict=True) if h}
    train_mask = np.array([p not in test_texts for p in table.prompts], dtype=bool)
    if not test_mask.any() or not train_mask.any():
        raise ValueError(f"holding out {list(names)} leaves an empty train or test side")
    return _make(table, test_mask, train_mask, names)


def kfold_by_prompt(table: OutcomeTable, k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` splits whose test sides partition the table, by prompt text (cross-fitting).

    Distinct texts are ordered by the same seeded hash as :func:`split_by_prompt` and dealt
    to folds in turn; every row of one text lands in the same fold. Evaluating each fold's
    router on its own test side scores every prompt with a router that never saw it.

    Raises:
        ValueError: If ``k < 2`` or the table has fewer than ``k`` distinct texts.
    """
    texts = sorted(set(table.prompts), key=lambda t: _text_key(t, seed))
    if k < 2 or len(texts) < k:
        raise ValueError(
            f"`k` must be an integer >= 2 and at most the {len(texts)} distinct prompt texts; "
            f"got {k}"
        )
    fold_of = {t: i % k for i, t in enumerate(texts)}
    folds = np.array([fold_of[p] for p in table.prompts])
    return [_make(table, folds == f, folds != f) for f in range(k)]


def leave_one_task_out(table: OutcomeTable) -> list[Split]:
    """One cross-task split per top-level task, each holding out that task alone.

    Raises:
        ValueError: If the table has fewer than two top-level tasks.
    """
    tops = sorted({top_level_task(t) for t in table.tasks})
    if len(tops) < 2:
        raise ValueError(f"leave-one-task-out needs at least 2 top-level tasks; got {tops}")
    return [split_cross_task(table, test_tasks=[top]) for top in tops]
