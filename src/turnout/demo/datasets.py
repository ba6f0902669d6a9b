"""The recorded-outcome datasets ``turnout demo`` ships (``turnout/data/datasets``).

Both have the models' recorded answer texts, so the replay upstreams can answer with real text:

* ``gsm8k`` (default): the GSM8K part of RouteLLM's recorded evaluations, GPT-4 (1106
  preview) against Mixtral-8x7B; 1,319 grade-school maths questions. Costs are **modelled**:
  the source recorded no token usage, so turnout counts the prompt and the recorded answer with
  its offline tokenizer and prices them at the list prices in the dataset's price file.
* ``routerarena``: RouterArena's recorded outcomes of Claude 3 Haiku and Gemini 2.0 Flash on
  809 prompts in 78 categories, with the **recorded** tokens and USD cost of every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from turnout.errors import ConfigError
from turnout.evaluation.datasets import OutcomeTable, load_outcomes

__all__ = ["DEMO_DATASETS", "DemoDataset", "load_demo_dataset"]


@dataclass(frozen=True, slots=True)
class DemoDataset:
    """One dataset the demo can replay.

    Attributes:
        name: Short name (``--dataset``).
        filename: File under ``turnout/data/datasets`` (or an absolute path for a user file).
        title: One line saying what it is.
        source: Where it comes from, with the commit.
        licence: Its licence.
    """

    name: str
    filename: str
    title: str
    source: str
    licence: str

    def path(self) -> Path:
        """The data file on disk."""
        candidate = Path(self.filename)
        if candidate.is_absolute():
            return candidate
        root = resources.files("turnout.data").joinpath("datasets")
        return Path(str(root.joinpath(self.filename)))


DEMO_DATASETS: dict[str, DemoDataset] = {
    "gsm8k": DemoDataset(
        name="gsm8k",
        filename="routellm-gsm8k.jsonl.gz",
        title="GSM8K maths questions: GPT-4 (1106 preview) vs Mixtral-8x7B, recorded answers",
        source="lm-sys/RouteLLM evals @0b64fda (GSM8K part)",
        licence="Apache-2.0",
    ),
    "routerarena": DemoDataset(
        name="routerarena",
        filename="routerarena.jsonl.gz",
        title="RouterArena prompts in 78 categories: Claude 3 Haiku vs Gemini 2.0 Flash, "
        "recorded answers, tokens and cost",
        source="RouteWorks/RouterArena @4714a9a",
        licence="Apache-2.0",
    ),
}


def load_demo_dataset(name_or_path: str) -> tuple[DemoDataset, OutcomeTable]:
    """Load a shipped dataset by name, or any outcome file with recorded responses by path.

    Args:
        name_or_path: A key of :data:`DEMO_DATASETS`, or a path to a ``.jsonl[.gz]`` file in
            the outcome format (see :mod:`turnout.evaluation.datasets`).

    Returns:
        The dataset's description and its outcome table.

    Raises:
        ConfigError: If the name is unknown and no such file exists.
        DatasetError: If the file is malformed.
    """
    dataset = DEMO_DATASETS.get(name_or_path)
    if dataset is None:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"`--dataset` must be one of {sorted(DEMO_DATASETS)} or an outcome file; "
                f"got {name_or_path!r}",
                field="dataset",
            )
        dataset = DemoDataset(
            name=path.name.split(".")[0],
            filename=str(path.resolve()),
            title=f"outcomes from {path.name}",
            source=str(path),
            licence="see the file's source",
        )
    return dataset, load_outcomes(dataset.path())
