"""Recorded-outcome datasets: one JSONL line per (prompt, model), pivoted to a table.

The format is the one of ``shared/data`` (and of users' own evals or gateway logs): one JSON
object per line, gzip or plain, with the fields

==================  ====================  =================================================
field               type                  meaning
==================  ====================  =================================================
``prompt_id``       str                   stable id of the prompt inside the dataset
``prompt``          str                   the user prompt text
``task``            str                   benchmark or category (``gsm8k``, ``mmlu/anatomy``)
``model``           str                   model name
``score``           float in [0, 1]       quality of that model's answer (null = missing)
``input_tokens``    int or null           recorded prompt tokens
``output_tokens``   int or null           recorded output tokens
``cost_usd``        float or null         recorded cost of the call, USD
``response``        str or null           the recorded answer text
``contaminated``    bool, optional        overlaps a published router's training data
==================  ====================  =================================================

Other fields (``latency_s`` ...) are accepted and ignored.

**Modelled cost.** Where ``cost_usd`` is null the cost of a cell is *modelled*::

    cost_usd = (input_tokens * input_usd_per_mtok + output_tokens * output_usd_per_mtok) / 1e6

with, in order of preference,

* prices: the ``prices`` argument, else ``<name>.models.json`` next to the data file (USD per
  1M input / output tokens), else the turnout catalog (:meth:`turnout.catalog.Catalog.default`);
* input tokens: the recorded ``input_tokens``, else the prompt counted as one user message
  with turnout's offline tokenizer (:func:`turnout.features.count_message_tokens`);
* output tokens: the recorded ``output_tokens``, else the recorded ``response`` counted with
  :func:`turnout.features.count_tokens`, else the mean counted output of the same model on the
  same task, else of the same model on all tasks, else of all models on the same task, else
  ``default_output_tokens`` (256, the router's own default).

``OutcomeTable.cost_recorded`` marks the cells whose cost was recorded; ``cost_kind`` says
``"recorded"``, ``"modelled"`` or ``"mixed"`` for any table or subset, and every report
carries it.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from turnout.catalog import Catalog, ModelCard
from turnout.errors import DatasetError
from turnout.features import count_message_tokens, count_tokens

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "CostKind",
    "ModelPrice",
    "OutcomeTable",
    "concat_tables",
    "load_outcomes",
    "read_prices",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CostKind = Literal["recorded", "modelled", "mixed"]

#: Output tokens assumed when nothing in the dataset tells how long a model's answers are.
DEFAULT_OUTPUT_TOKENS = 256.0


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's price in USD per one million tokens, and where it comes from."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str = ""

    def cost_usd(self, input_tokens: float, output_tokens: float) -> float:
        """Cost in USD of ``input_tokens`` input and ``output_tokens`` output tokens."""
        return (
            input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        ) / 1e6


@dataclass(frozen=True, eq=False)
class OutcomeTable:
    """Recorded outcomes pivoted to (n_prompts, n_models).

    Attributes:
        prompt_ids: Prompt ids, shape (n_prompts,), in first-seen file order.
        prompts: Prompt texts, shape (n_prompts,).
        tasks: Task of each prompt, shape (n_prompts,).
        models: Model names (columns), shape (n_models,), in first-seen file order.
        scores: Quality in [0, 1], shape (n_prompts, n_models); NaN where not recorded.
        input_tokens: Input tokens (recorded or counted), shape (n_prompts, n_models).
        output_tokens: Output tokens (recorded, counted or estimated), same shape.
        cost_usd: Cost of the call in USD (recorded or modelled), same shape; NaN for
            missing cells.
        cost_recorded: True where ``cost_usd`` was recorded by the source, same shape.
        tokens_recorded: True where both token counts were recorded, same shape.
        responses: Recorded answer text per cell (``None`` where absent), or ``None`` if the
            dataset records no responses at all.
        contaminated: Per prompt, whether the source flags it as overlapping a published
            router's training data, shape (n_prompts,).
        prices: Price used to model costs, per model.
        source: Where the table was read from.
    """

    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    scores: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    cost_usd: FloatArray
    cost_recorded: BoolArray
    tokens_recorded: BoolArray
    responses: tuple[tuple[str | None, ...], ...] | None = None
    contaminated: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        n, m = len(self.prompt_ids), len(self.models)
        for name in ("scores", "input_tokens", "output_tokens", "cost_usd", "cost_recorded"):
            shape = getattr(self, name).shape
            if shape != (n, m):
                raise ValueError(f"`{name}` must have shape ({n}, {m}); got {shape}")
        if len(self.contaminated) != n:
            object.__setattr__(self, "contaminated", np.zeros(n, dtype=bool))

    def __len__(self) -> int:
        return len(self.prompt_ids)

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows)."""
        return len(self.prompt_ids)

    @property
    def n_models(self) -> int:
        """Number of models (columns)."""
        return len(self.models)

    @property
    def observed(self) -> BoolArray:
        """True where a score was recorded, shape (n_prompts, n_models)."""
        return ~np.isnan(self.scores)

    @property
    def cost_kind(self) -> CostKind:
        """How the observed cells' costs were obtained.

        ``"recorded"`` if every observed cell's cost was recorded, ``"modelled"`` if none
        was, else ``"mixed"``.
        """
        recorded = self.cost_recorded[self.observed]
        if recorded.size and recorded.all():
            return "recorded"
        if not recorded.any():
            return "modelled"
        return "mixed"

    def model_index(self, model: str) -> int:
        """Column of ``model``.

        Raises:
            KeyError: If ``model`` is not a column.
        """
        try:
            return self.models.index(model)
        except ValueError:
            raise KeyError(f"model {model!r} is not in this table; models: {self.models}") from None

    def subset(self, indices: Sequence[int] | npt.NDArray[np.integer[Any]]) -> OutcomeTable:
        """The rows ``indices`` (in that order) as a new table with the same models."""
        idx = np.asarray(indices, dtype=np.intp)
        return OutcomeTable(
            prompt_ids=tuple(self.prompt_ids[i] for i in idx),
            prompts=tuple(self.prompts[i] for i in idx),
            tasks=tuple(self.tasks[i] for i in idx),
            models=self.models,
            scores=self.scores[idx],
            input_tokens=self.input_tokens[idx],
            output_tokens=self.output_tokens[idx],
            cost_usd=self.cost_usd[idx],
            cost_recorded=self.cost_recorded[idx],
            tokens_recorded=self.tokens_recorded[idx],
            responses=None if self.responses is None else tuple(self.responses[i] for i in idx),
            contaminated=self.contaminated[idx],
            prices=self.prices,
            source=self.source,
        )

    def to_catalog(self, base: Catalog | None = None) -> Catalog:
        """A catalog whose cards for this table's models carry the table's prices.

        Models already in ``base`` keep their other fields (limits, capabilities, latency);
        new ones get a card with ``provider="dataset"`` and default limits.

        Args:
            base: Catalog to extend; ``None`` starts from an empty one.
        """
        cards: dict[str, ModelCard] = dict(base.items()) if base is not None else {}
        for model in self.models:
            price = self.prices.get(model)
            fields: dict[str, Any] = {}
            if price is not None:
                fields = {
                    "input_usd_per_mtok": price.input_usd_per_mtok,
                    "output_usd_per_mtok": price.output_usd_per_mtok,
                    "cached_input_usd_per_mtok": None,
                    "source": price.source,
                }
            if model in cards:
                cards[model] = cards[model].model_copy(update=fields)
            else:
                cards[model] = ModelCard(id=model, provider="dataset", **fields)
        return Catalog(cards.values(), version=base.version if base is not None else "")


def concat_tables(tables: Sequence[OutcomeTable]) -> OutcomeTable:
    """Stack tables with the same models row-wise (e.g. the test folds of a k-fold split).

    Raises:
        ValueError: If ``tables`` is empty or their models differ.
    """
    if not tables:
        raise ValueError("`tables` must hold at least one table; got none")
    models = tables[0].models
    for t in tables[1:]:
        if t.models != models:
            raise ValueError(f"tables must share one model list; got {models} and {t.models}")
    responses = None
    if any(t.responses is not None for t in tables):
        responses = tuple(
            row
            for t in tables
            for row in (t.responses or tuple((None,) * len(models) for _ in t.prompt_ids))
        )

    def cat(name: str) -> Any:
        return np.concatenate([getattr(t, name) for t in tables])

    return OutcomeTable(
        prompt_ids=tuple(x for t in tables for x in t.prompt_ids),
        prompts=tuple(x for t in tables for x in t.prompts),
        tasks=tuple(x for t in tables for x in t.tasks),
        models=models,
        scores=cat("scores"),
        input_tokens=cat("input_tokens"),
        output_tokens=cat("output_tokens"),
        cost_usd=cat("cost_usd"),
        cost_recorded=cat("cost_recorded"),
        tokens_recorded=cat("tokens_recorded"),
        responses=responses,
        contaminated=cat("contaminated"),
        prices=tables[0].prices,
        source=tables[0].source,
    )


def read_prices(path: str | Path) -> dict[str, ModelPrice]:
    """Read a ``<name>.models.json`` price file.

    The file is ``{"models": {name: {"input_per_mtok": x, "output_per_mtok": y}}}`` with
    prices in USD per 1M tokens (``input_usd_per_mtok`` / ``output_usd_per_mtok`` also
    accepted).

    Raises:
        DatasetError: If the file is not valid JSON or a price is missing or negative.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{path}: cannot read price file: {exc}", path=str(path), line=0, field=None
        ) from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise DatasetError(
            f"{path}: `models` must be an object of model name to prices",
            path=str(path),
            line=0,
            field="models",
        )
    source = str(data.get("source", path.name))
    prices = {}
    for name, entry in models.items():
        values = []
        for key in ("input", "output"):
            value = None
            if isinstance(entry, dict):
                value = entry.get(f"{key}_per_mtok", entry.get(f"{key}_usd_per_mtok"))
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise DatasetError(
                    f"{path}: models.{name}.{key}_per_mtok must be a price >= 0 in USD per 1M "
                    f"tokens; got {value!r}",
                    path=str(path),
                    line=0,
                    field=f"models.{name}.{key}_per_mtok",
                )
            values.append(float(value))
        prices[name] = ModelPrice(values[0], values[1], source=f"{path.name}: {source}")
    return prices


def _price_file(path: Path) -> Path:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}.models.json")


def _lines(path: Path) -> Iterator[str]:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


class _Reader:
    """Validates lines and accumulates cells (kept out of ``load_outcomes`` for clarity)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.row: dict[str, int] = {}
        self.col: dict[str, int] = {}
        self.prompts: list[str] = []
        self.tasks: list[str] = []
        self.contaminated: list[bool] = []
        self.cells: dict[tuple[int, int], tuple[Any, ...]] = {}

    def fail(self, line: int, name: str | None, message: str) -> DatasetError:
        where = f"{self.path}:{line}"
        text = f"{where}: field `{name}` {message}" if name else f"{where}: {message}"
        return DatasetError(text, path=str(self.path), line=line, field=name)

    def text(self, obj: dict[str, Any], line: int, name: str, *, empty: bool = False) -> str:
        value = obj.get(name)
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(
                line, name, f"must be a {'' if empty else 'non-empty '}string; got {value!r}"
            )
        return value

    def number(
        self,
        obj: dict[str, Any],
        line: int,
        name: str,
        *,
        integer: bool = False,
        upper: float = math.inf,
    ) -> float:
        value = obj.get(name)
        if value is None:
            return math.nan
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not 0 <= value <= upper:
            kind = "an integer" if integer else "a number"
            bound = f"in [0, {upper:g}]" if upper < math.inf else ">= 0"
            raise self.fail(line, name, f"must be {kind} {bound} or null; got {value!r}")
        return float(value)

    def add(self, line: int, raw: str) -> None:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise self.fail(line, None, f"not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise self.fail(line, None, f"must be a JSON object; got {type(obj).__name__}")
        prompt_id = self.text(obj, line, "prompt_id")
        prompt = self.text(obj, line, "prompt", empty=True)
        task = self.text(obj, line, "task")
        model = self.text(obj, line, "model")
        score = self.number(obj, line, "score", upper=1.0)
        tokens = (
            self.number(obj, line, "input_tokens", integer=True),
            self.number(obj, line, "output_tokens", integer=True),
        )
        cost = self.number(obj, line, "cost_usd")
        response = obj.get("response")
        if response is not None and not isinstance(response, str):
            raise self.fail(line, "response", f"must be a string or null; got {response!r}")
        contaminated = obj.get("contaminated", False)
        if not isinstance(contaminated, bool):
            raise self.fail(line, "contaminated", f"must be true or false; got {contaminated!r}")
        i = self.row.setdefault(prompt_id, len(self.row))
        if i == len(self.prompts):
            self.prompts.append(prompt)
            self.tasks.append(task)
            self.contaminated.append(contaminated)
        elif self.prompts[i] != prompt:
            raise self.fail(
                line,
                "prompt",
                f"differs from an earlier line of prompt_id "
                f"{prompt_id!r}: one id must have one prompt text",
            )
        else:
            self.contaminated[i] |= contaminated
        j = self.col.setdefault(model, len(self.col))
        if (i, j) in self.cells:
            raise self.fail(line, "model", f"{model!r} appears twice for prompt_id {prompt_id!r}")
        self.cells[(i, j)] = (score, *tokens, cost, response)


def _estimate_output_tokens(
    counted: FloatArray, tasks: Sequence[str], default: float
) -> FloatArray:
    """Fill NaN output tokens: mean of (model, task), else model, else task, else default."""
    out = counted.copy()
    task_names = sorted(set(tasks))
    task_of = np.array([task_names.index(t) for t in tasks]) if tasks else np.zeros(0, int)
    model_mean = np.array([np.nanmean(c) if (~np.isnan(c)).any() else np.nan for c in counted.T])
    for k in range(len(task_names)):
        rows = task_of == k
        block = counted[rows]
        known = ~np.isnan(block)
        task_mean = float(block[known].mean()) if known.any() else math.nan
        for j in range(counted.shape[1]):
            col = block[:, j]
            cell_known = ~np.isnan(col)
            guess = (
                float(col[cell_known].mean())
                if cell_known.any()
                else model_mean[j]
                if not math.isnan(model_mean[j])
                else task_mean
                if not math.isnan(task_mean)
                else default
            )
            fill = out[rows, j]
            fill[np.isnan(fill)] = guess
            out[rows, j] = fill
    return out


def load_outcomes(
    path: str | Path,
    *,
    catalog: Catalog | None = None,
    prices: Mapping[str, ModelPrice] | None = None,
    default_output_tokens: float = DEFAULT_OUTPUT_TOKENS,
) -> OutcomeTable:
    """Read a recorded-outcome JSONL file (gzip or plain) into an :class:`OutcomeTable`.

    Args:
        path: The ``.jsonl`` or ``.jsonl.gz`` file.
        catalog: Where to find prices of models that neither ``prices`` nor the dataset's
            ``<name>.models.json`` price; ``None`` uses turnout's shipped catalog.
        prices: Prices per model, overriding the price file and the catalog.
        default_output_tokens: Output tokens assumed where the dataset gives no hint at all.

    Returns:
        The table; missing (prompt, model) cells have NaN score and cost.

    Raises:
        DatasetError: If the file cannot be read, a line is malformed (the message names
            file, line and field), the file has no outcomes, or a model whose cost is not
            recorded has no price anywhere.
    """
    path = Path(path)
    reader = _Reader(path)
    try:
        for number, raw in enumerate(_lines(path), start=1):
            if raw.strip():
                reader.add(number, raw)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: cannot read: {exc}", path=str(path), line=0, field=None
        ) from exc
    if not reader.cells:
        raise DatasetError(f"{path}: no outcome lines", path=str(path), line=0, field=None)
    n, m = len(reader.row), len(reader.col)
    models = tuple(reader.col)
    grid = np.full((5, n, m), np.nan)
    responses: list[list[str | None]] = [[None] * m for _ in range(n)]
    for (i, j), (score, t_in, t_out, cost, response) in reader.cells.items():
        grid[:, i, j] = (score, t_in, t_out, cost, 0.0)
        responses[i][j] = response
    scores, in_rec, out_rec, cost_rec = grid[0], grid[1], grid[2], grid[3]
    present = ~np.isnan(grid[4])
    scores[~present] = np.nan
    prompt_tokens = np.array([count_message_tokens([p]) for p in reader.prompts], dtype=float)
    input_tokens = np.where(np.isnan(in_rec), prompt_tokens[:, None], in_rec)
    counted = out_rec.copy()
    for i, row in enumerate(responses):
        for j, text in enumerate(row):
            if text is not None and math.isnan(counted[i, j]):
                counted[i, j] = count_tokens(text)
    output_tokens = _estimate_output_tokens(counted, reader.tasks, default_output_tokens)
    cost_recorded = ~np.isnan(cost_rec) & present
    table_prices = _resolve_prices(path, models, catalog, prices, cost_recorded, present)
    modelled = np.full((n, m), np.nan)
    for j, model in enumerate(models):
        price = table_prices.get(model)
        if price is not None:
            modelled[:, j] = (
                input_tokens[:, j] * price.input_usd_per_mtok
                + output_tokens[:, j] * price.output_usd_per_mtok
            ) / 1e6
    cost_usd = np.where(cost_recorded, cost_rec, modelled)
    cost_usd[~present] = np.nan
    for arr in (input_tokens, output_tokens):
        arr[~present] = np.nan
    return OutcomeTable(
        prompt_ids=tuple(reader.row),
        prompts=tuple(reader.prompts),
        tasks=tuple(reader.tasks),
        models=models,
        scores=scores,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        cost_recorded=cost_recorded,
        tokens_recorded=~np.isnan(in_rec) & ~np.isnan(out_rec) & present,
        responses=tuple(tuple(r) for r in responses)
        if any(t is not None for r in responses for t in r)
        else None,
        contaminated=np.array(reader.contaminated, dtype=bool),
        prices=table_prices,
        source=str(path),
    )


def _resolve_prices(
    path: Path,
    models: Sequence[str],
    catalog: Catalog | None,
    prices: Mapping[str, ModelPrice] | None,
    cost_recorded: BoolArray,
    present: BoolArray,
) -> dict[str, ModelPrice]:
    found: dict[str, ModelPrice] = {}
    price_file = _price_file(path)
    from_file = read_prices(price_file) if price_file.exists() else {}
    for j, model in enumerate(models):
        if prices is not None and model in prices:
            found[model] = prices[model]
            continue
        if model in from_file:
            found[model] = from_file[model]
            continue
        if catalog is None:
            catalog = Catalog.default()
        card = catalog.get(model)
        if card is not None and card.priced:
            assert card.input_usd_per_mtok is not None and card.output_usd_per_mtok is not None
            found[model] = ModelPrice(
                card.input_usd_per_mtok,
                card.output_usd_per_mtok,
                source=f"turnout catalog: {card.source}",
            )
        elif (present[:, j] & ~cost_recorded[:, j]).any():
            raise DatasetError(
                f"{path}: model {model!r} has outcomes without a recorded cost_usd and no price: "
                f"give it in {price_file.name}, in `prices`, or in the catalog",
                path=str(path),
                line=0,
                field="model",
            )
    return found
