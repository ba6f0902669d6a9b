"""How far turnout's offline token estimate is from recorded token counts.

The only shared dataset with recorded usage is routerarena (real input tokens of
claude-3-haiku-20240307 and gemini-2.0-flash-001 on 809 single-turn prompts). Each vendor counts
with its own tokenizer and adds its own framing, so this measures how well one offline
estimate stands in for several real tokenizers, which is how the router and the cost model
use it.

Usage: python benchmarks/tokens_accuracy.py [--data PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from turnout.features import count_message_tokens

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "routerarena.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tokens_accuracy.md")
    args = parser.parse_args()
    pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with gzip.open(args.data, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("input_tokens"):
                estimate = count_message_tokens([row["prompt"]])
                pairs[row["model"]].append((estimate, int(row["input_tokens"])))
    lines = [
        "# Offline token estimate vs recorded input tokens",
        "",
        f"Command: `python benchmarks/tokens_accuracy.py --data {args.data.name}`",
        "",
        "| model (recorded tokenizer) | prompts | mean estimate / recorded "
        "| median abs error | p90 abs error |",
        "|---|---:|---:|---:|---:|",
    ]
    for model, values in sorted(pairs.items()):
        est, rec = np.array(values, dtype=np.float64).T
        rel = np.abs(est - rec) / rec
        lines.append(
            f"| {model} | {len(values)} | {est.sum() / rec.sum():.3f} "
            f"| {np.median(rel):.1%} | {np.quantile(rel, 0.9):.1%} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
