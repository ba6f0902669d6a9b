"""The terms the category classifier reads: word unigrams, bigrams and a few shape markers.

One function, :func:`prompt_terms`, is used both to train the shipped classifier
(``scripts/train_classifier.py``) and on every request, so the two can never disagree.
It is pure Python over one compiled regex and reads at most :data:`HEAD_CHARS` +
:data:`TAIL_CHARS` characters, so its cost is bounded whatever the prompt length.
"""

from __future__ import annotations

import math
import re

__all__ = ["HEAD_CHARS", "PREFIX_CHARS", "TAIL_CHARS", "prompt_terms"]

#: Characters read from the start of a long prompt (instructions usually come first).
HEAD_CHARS = 1500
#: Characters read from the end of a long prompt ("... summarise the text above").
TAIL_CHARS = 500
#: Length of the word prefixes added as extra terms (a cheap stand-in for stemming).
PREFIX_CHARS = 5

# Words (letters, digits, underscore; any script) or one punctuation / symbol character.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_FENCE = "```"


def _bucket(value: int) -> int:
    """Log2 bucket of a non-negative count: 0, 1, 2-3, 4-7, ... -> 0, 1, 2, 3, ..."""
    return 0 if value <= 0 else int(math.log2(value)) + 1


def prompt_terms(text: str) -> list[str]:
    """The classifier's terms for one prompt, duplicates kept (counts matter).

    Args:
        text: The prompt text (any length, any script).

    Returns:
        Lower-cased word and symbol unigrams, adjacent-pair bigrams (``"a b"``), 5-character
        prefixes of longer words (``"~summa"``) and, last, shape markers starting with
        ``"#"`` (log2 buckets of characters and lines, code fences). Text never yields a
        prefix or marker term: its symbols are single characters.
    """
    n_chars = len(text)
    if n_chars > HEAD_CHARS + TAIL_CHARS:
        text = text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]
    tokens = _TOKEN.findall(text.lower())
    terms = tokens + [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
    # A crude stem: "~summa" stands for summarise, summarize, summary, summarising ...
    terms += ["~" + t[:PREFIX_CHARS] for t in tokens if len(t) > PREFIX_CHARS + 1]
    terms.append(f"#chars:{_bucket(n_chars)}")
    terms.append(f"#lines:{_bucket(text.count(chr(10)))}")
    if _FENCE in text:
        terms.append("#fence")
    return terms
