"""Rebuild the shipped task-category classifier (``turnout/data/classifier/model.npz``).

Training data:
  * the recorded-outcome datasets in ``/work/shared/data`` (or ``--data DIR``): each
    benchmark's ``task`` label is mapped to a category by :func:`category_of` (capped at
    ``--max-per-task`` prompts per task, seeded); a prompt's difficulty target is the
    percentile, within its dataset, of its failure rate (``1 - mean score`` over the models
    that answered it);
  * hand-written prompts in ``turnout/data/classifier/examples/<category>.txt`` (one per
    line, a literal backslash-n for a newline), written for this project where the
    benchmarks are thin.

The split is by prompt text, seeded (``--seed``): a prompt is held out when a SHA-256 of the
seed and its text falls in the first ``--test-fraction``. The shipped model is the one fitted
on the training part only, so the held-out table it prints (also written to
``benchmarks/results/classifier.md``) describes exactly the shipped file.

Run: ``python scripts/train_classifier.py`` (about 20 s on one core).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Ridge

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from turnout.signals.classifier import CATEGORIES, UNKNOWN, CategoryClassifier  # noqa: E402
from turnout.signals.terms import prompt_terms  # noqa: E402

EXAMPLES = ROOT / "src/turnout/data/classifier/examples"
MODEL = ROOT / "src/turnout/data/classifier/model.npz"
REPORT = ROOT / "benchmarks/results/classifier.md"

_MMLU_MATH = {
    "abstract_algebra",
    "college_mathematics",
    "elementary_mathematics",
    "high_school_mathematics",
    "high_school_statistics",
}
_MMLU_REASONING = {"formal_logic", "logical_fallacies"}
_KNOWLEDGE_ARENA = (
    "ArcMMLU GeoBench MedMCQA PubMedQA QANTA OpenTDB MusicTheoryBench GeoGraphyData "
    "NarrativeQA SuperGLUE-QA SuperGLUE-RC SuperGLUE-ClozeTest MMLU_management"
).split()
_REASONING_ARENA = (
    "SocialiQA SuperGLUE-CausalReasoning SuperGLUE-Entailment SuperGLUE-Wsc SuperGLUE-Wic "
    "Ethics ChessInstruct MMLU_formal_logic"
).split()
_MATH_ARENA = "GSM8K MATH AIME AsDiv MathQA FinQA MMLUPro_math".split()


def category_of(dataset: str, task: str) -> str | None:
    """Map a dataset's task label to a category; ``None`` leaves the prompt out."""
    if dataset == "routellm":
        if task == "gsm8k":
            return "math"
        if task.startswith("mmlu/"):
            subject = task.split("/", 1)[1]
            if subject in _MMLU_MATH:
                return "math"
            return "reasoning" if subject in _MMLU_REASONING else "knowledge_qa"
        return {
            "mt_bench/writing": "creative_writing",
            "mt_bench/roleplay": "chat",
            "mt_bench/reasoning": "reasoning",
            "mt_bench/math": "math",
            "mt_bench/coding": "code",
            "mt_bench/extraction": "extraction",
            "mt_bench/stem": "knowledge_qa",
            "mt_bench/humanities": "knowledge_qa",
        }.get(task)
    if dataset == "llmrouter":
        # commongen prompts are bare keyword lists with no instruction: left out.
        return {
            "natural_qa": "knowledge_qa",
            "trivia_qa": "knowledge_qa",
            "mmlu": "knowledge_qa",
            "arc_challenge": "knowledge_qa",
            "openbook_qa": "knowledge_qa",
            "gsm8k": "math",
            "math": "math",
            "agentverse-mgsm": "math",
            "mbpp": "code",
            "human_eval": "code",
            "commonsense_qa": "reasoning",
            "agentverse-logicgrid": "reasoning",
        }.get(task)
    if task.startswith("WMT19"):
        return "translation"
    if task == "LiveCodeBench":
        return "code"
    for prefix, category in (
        *((p, "math") for p in _MATH_ARENA),
        *((p, "reasoning") for p in _REASONING_ARENA),
        *((p, "knowledge_qa") for p in _KNOWLEDGE_ARENA),
    ):
        if task == prefix or task.startswith(prefix + "_"):
            return category
    if task.startswith("MMLUPro_") or task.startswith("OpenTDB_") or task.startswith("QANTA_"):
        return "knowledge_qa"
    return None


def load_datasets(
    data_dir: Path, max_per_task: int, seed: int
) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """(prompt, category, source) rows and prompt -> difficulty target."""
    rows: list[tuple[str, str, str]] = []
    difficulty: dict[str, float] = {}
    for dataset in ("routellm", "llmrouter", "routerarena"):
        scores: dict[str, list[float]] = defaultdict(list)
        by_task: dict[str, list[str]] = defaultdict(list)
        with gzip.open(data_dir / f"{dataset}.jsonl.gz", "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                prompt, task = rec["prompt"], rec["task"]
                if not scores[prompt]:
                    by_task[task].append(prompt)
                scores[prompt].append(float(rec["score"]))
        # Difficulty target: the prompt's failure rate (1 - mean score over the models that
        # answered it) as a percentile within its dataset, so that datasets scored on weak
        # models and datasets scored on strong ones share one scale.
        failure = {p: 1.0 - sum(v) / len(v) for p, v in scores.items()}
        ranked = sorted(failure.values())
        for prompt, value in failure.items():
            lo, hi = bisect_left(ranked, value), bisect_right(ranked, value)
            difficulty.setdefault(prompt, (lo + hi) / 2 / len(ranked))
        rng = random.Random(seed)
        for task, prompts in sorted(by_task.items()):
            category = category_of(dataset, task)
            if category is None:
                continue
            unique = sorted(set(prompts))
            rng.shuffle(unique)
            # routellm splits MMLU into 57 subjects: a smaller cap each keeps MMLU from
            # swamping knowledge_qa.
            cap = max_per_task // 6 if task.startswith("mmlu/") else max_per_task
            rows += [(p, category, f"{dataset}/{task}") for p in unique[:cap]]
    return rows, difficulty


def load_examples() -> list[tuple[str, str, str]]:
    """Hand-written (prompt, category, source) rows."""
    rows = []
    for path in sorted(EXAMPLES.glob("*.txt")):
        if path.stem not in CATEGORIES:
            raise SystemExit(f"{path}: file name must be a category in {CATEGORIES}")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                rows.append((line.replace("\\n", "\n"), path.stem, "handwritten"))
    return rows


def _unit(prompt: str, seed: int) -> float:
    """A seeded pseudo-random number in [0, 1) that depends only on the prompt text."""
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out(prompt: str, seed: int, fraction: float) -> bool:
    """Seeded split by prompt text."""
    return _unit(prompt, seed) < fraction


def cross_validate(
    rows: list[tuple[str, str, str]], difficulty: dict[str, float], args: argparse.Namespace
) -> str:
    """Pooled k-fold accuracy per category (every prompt held out once), as markdown."""
    k = args.cv
    ok: Counter[str] = Counter()
    strict: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for fold in range(k):
        test = [r for r in rows if int(_unit(r[0], args.seed) * k) == fold]
        train = [r for r in rows if int(_unit(r[0], args.seed) * k) != fold]
        model = fit(train, difficulty, args)
        for (_, cat, _), pred in zip(test, model.predict([r[0] for r in test]), strict=True):
            total[cat] += 1
            ok[cat] += pred.best_guess == cat
            strict[cat] += pred.category == cat
    lines = [
        f"{k}-fold cross-validation by prompt text (`--cv {k}`; each prompt held out once, "
        "pooled; the method, not the shipped file):",
        "",
        "| category | prompts | accuracy | accuracy, unknown counted wrong |",
        "|---|---:|---:|---:|",
    ]
    accs = []
    for cat in CATEGORIES:
        accs.append(ok[cat] / total[cat])
        lines.append(
            f"| {cat} | {total[cat]} | {ok[cat] / total[cat]:.1%} | "
            f"{strict[cat] / total[cat]:.1%} |"
        )
    macro_strict = np.mean([strict[c] / total[c] for c in CATEGORIES])
    lines.append(
        f"| **macro** | {sum(total.values())} | **{np.mean(accs):.1%}** | {macro_strict:.1%} |"
    )
    return "\n".join(lines) + "\n"


def build_matrix(
    docs: list[list[str]], vocabulary: dict[str, int], idf: np.ndarray
) -> sp.csr_matrix:
    """TF-IDF rows exactly as :meth:`CategoryClassifier.features` computes them."""
    indptr, indices, values = [0], [], []
    for terms in docs:
        counts = Counter(vocabulary[t] for t in terms if t in vocabulary)
        cols = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        tf = np.array([counts[c] for c in cols], dtype=np.float64)
        v = (1.0 + np.log(tf)) * idf[cols] if cols.size else tf
        if cols.size:
            v /= np.sqrt(v @ v)
        indices.extend(cols.tolist())
        values.extend(v.tolist())
        indptr.append(len(indices))
    return sp.csr_matrix((values, indices, indptr), shape=(len(docs), len(vocabulary)))


def fit(
    train: list[tuple[str, str, str]], difficulty: dict[str, float], args: argparse.Namespace
) -> CategoryClassifier:
    """Fit vocabulary, IDF, the logistic classifier and the difficulty ridge."""
    docs = [prompt_terms(p) for p, _, _ in train]
    df: Counter[str] = Counter()
    for terms in docs:
        df.update(set(terms))
    terms_kept = sorted(t for t, n in df.items() if n >= args.min_df)
    vocabulary = {t: i for i, t in enumerate(terms_kept)}
    n = len(docs)
    idf = np.log((1 + n) / (1 + np.array([df[t] for t in terms_kept], dtype=np.float64))) + 1
    x = build_matrix(docs, vocabulary, idf)
    y = np.array([CATEGORIES.index(c) for _, c, _ in train])  # type: ignore[arg-type]
    # Hand-written prompts look like real traffic more than benchmark items do.
    weight = np.array([args.handwritten_weight if s == "handwritten" else 1.0 for *_, s in train])
    clf = LogisticRegression(C=args.c, class_weight="balanced", max_iter=3000)
    clf.fit(x, y, sample_weight=weight)
    scored = [i for i, (p, _, _) in enumerate(train) if p in difficulty]
    ridge = Ridge(alpha=args.ridge_alpha)
    ridge.fit(x[scored], np.array([difficulty[train[i][0]] for i in scored]))
    return CategoryClassifier(
        vocabulary=vocabulary,
        idf=idf,
        coef=clf.coef_.T.astype(np.float64),
        intercept=clf.intercept_.astype(np.float64),
        categories=CATEGORIES,
        difficulty_coef=ridge.coef_.astype(np.float64),
        difficulty_intercept=float(ridge.intercept_),
        threshold=args.threshold,
    )


def report(
    model: CategoryClassifier,
    train: list[tuple[str, str, str]],
    test: list[tuple[str, str, str]],
    difficulty: dict[str, float],
    args: argparse.Namespace,
) -> str:
    """Markdown table of held-out accuracy per category, and the difficulty correlation."""
    preds = model.predict([p for p, _, _ in test])
    n_train = Counter(c for _, c, _ in train)
    total: Counter[str] = Counter()
    guess_ok: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    answered_ok: Counter[str] = Counter()
    hand_total: Counter[str] = Counter()
    hand_ok: Counter[str] = Counter()
    for (_, cat, source), pred in zip(test, preds, strict=True):
        total[cat] += 1
        guess_ok[cat] += pred.best_guess == cat
        if pred.category != UNKNOWN:
            answered[cat] += 1
            answered_ok[cat] += pred.category == cat
        if source == "handwritten":
            hand_total[cat] += 1
            hand_ok[cat] += pred.category == cat
    lines = [
        f"Command: `python scripts/train_classifier.py --seed {args.seed}"
        f"{f' --cv {args.cv}' if args.cv > 1 else ''}` "
        f"(held-out fraction {args.test_fraction}, split by prompt text; "
        f"confidence threshold {args.threshold}).",
        "",
        "| category | train | held out | accuracy | accuracy, unknown counted wrong "
        "| answered (not unknown) | hand-written held out: accuracy, unknown wrong |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    macro, macro_strict = [], []
    for cat in CATEGORIES:
        n = total[cat]
        acc = guess_ok[cat] / n if n else float("nan")
        strict = sum(
            pred.category == c for (_, c, _), pred in zip(test, preds, strict=True) if c == cat
        )
        strict_acc = strict / n if n else float("nan")
        if n_train[cat] + n >= 50:
            macro.append(acc)
            macro_strict.append(strict_acc)
        hand = (
            f"{hand_ok[cat] / hand_total[cat]:.1%} ({hand_total[cat]})" if hand_total[cat] else "-"
        )
        lines.append(
            f"| {cat} | {n_train[cat]} | {n} | {acc:.1%} | {strict_acc:.1%} | "
            f"{answered[cat] / n:.1%} | {hand} |"
        )
    lines += [
        f"| **macro** (categories with >= 50 examples) | {len(train)} | {len(test)} | "
        f"**{np.mean(macro):.1%}** | {np.mean(macro_strict):.1%} | | |",
        "",
    ]
    scored = [(p, pred.difficulty) for (p, _, _), pred in zip(test, preds, strict=True)]
    scored = [(difficulty[p], d) for p, d in scored if p in difficulty]
    if scored:
        target, estimate = np.array(scored).T
        rank_t = np.argsort(np.argsort(target))
        rank_e = np.argsort(np.argsort(estimate))
        spearman = float(np.corrcoef(rank_t, rank_e)[0, 1])
        lines.append(
            f"Difficulty estimate vs the within-dataset percentile of `1 - mean recorded score` "
            f"on {len(scored)} held-out "
            f"benchmark prompts: Spearman {spearman:.3f}, "
            f"mean absolute error {float(np.mean(np.abs(target - estimate))):.3f}."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Train, report and write the shipped model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--max-per-task", type=int, default=300)
    parser.add_argument("--min-df", type=int, default=3)
    parser.add_argument("-c", type=float, default=10.0)
    parser.add_argument("--ridge-alpha", type=float, default=1.0)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--handwritten-weight", type=float, default=6.0)
    parser.add_argument("--cv", type=int, default=0, help="also report k-fold accuracy")
    parser.add_argument("--no-write", action="store_true", help="report only")
    args = parser.parse_args()

    rows, difficulty = load_datasets(args.data, args.max_per_task, args.seed)
    rows += load_examples()
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            unique.append(row)
    test = [r for r in unique if held_out(r[0], args.seed, args.test_fraction)]
    train = [r for r in unique if not held_out(r[0], args.seed, args.test_fraction)]
    model = fit(train, difficulty, args)
    text = report(model, train, test, difficulty, args)
    if args.cv > 1:
        text += "\n" + cross_validate(unique, difficulty, args)
    print(text)
    print(f"vocabulary: {len(model.vocabulary)} terms")
    if not args.no_write:
        model.save(MODEL)
        REPORT.write_text("# Category classifier: held-out accuracy\n\n" + text, encoding="utf-8")
        print(f"wrote {MODEL} ({MODEL.stat().st_size / 1e6:.2f} MB) and {REPORT}")


if __name__ == "__main__":
    main()
