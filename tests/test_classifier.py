from pathlib import Path

import numpy as np
import pytest

from turnout.errors import ConfigError
from turnout.signals import CATEGORIES, UNKNOWN, CategoryClassifier, default_classifier

# Prompts written for this test (not in the training examples): one clear case per category.
CLEAR = {
    "code": "Write a Python function that merges two sorted lists into one sorted list.",
    "math": "Solve for x: 5x - 12 = 3x + 4. Show the steps.",
    "reasoning": "If all glorps are fleems and no fleems are trinks, can a glorp be a trink? "
    "Explain your reasoning step by step.",
    "knowledge_qa": "Who was the first president of the United States?",
    "creative_writing": "Write a short poem about a lonely robot on the moon.",
    "summarisation": "Summarize the following article in two sentences: The town opened a new "
    "library on Monday. It has 40,000 books and a rooftop reading garden.",
    "extraction": "Extract the names and phone numbers from this text as JSON: call Anna on "
    "555-0101 or Piet on 555-0199.",
    "translation": "Translate into French: where is the train station?",
    "chat": "hey, how's it going? I'm bored tonight",
}


@pytest.mark.parametrize("category", CATEGORIES)
def test_clear_prompts_get_their_category(category: str) -> None:
    prediction = default_classifier().predict_one(CLEAR[category])
    assert prediction.best_guess == category
    assert prediction.category == category
    assert prediction.confidence >= default_classifier().threshold


def test_gibberish_is_unknown() -> None:
    prediction = default_classifier().predict_one("zxqv blorpt")
    assert prediction.category == UNKNOWN
    assert prediction.best_guess in CATEGORIES
    assert prediction.confidence < default_classifier().threshold


def test_predict_matches_predict_one_and_is_deterministic() -> None:
    clf = default_classifier()
    texts = list(CLEAR.values())
    assert clf.predict(texts) == [clf.predict_one(t) for t in texts]
    assert clf.predict(texts) == clf.predict(texts)


def test_difficulty_orders_easy_below_hard() -> None:
    clf = default_classifier()
    easy = clf.predict_one("What is the capital of France?").difficulty
    hard = clf.predict_one(
        "Let $p$ be a prime. Prove that the number of monic irreducible polynomials of degree "
        "$n$ over $\\mathbb{F}_p$ equals $\\frac{1}{n}\\sum_{d|n}\\mu(d)p^{n/d}$."
    ).difficulty
    assert 0.0 <= easy < hard <= 1.0


def test_features_are_l2_normalised_tfidf() -> None:
    clf = default_classifier()
    cols, values = clf.features("Translate into German: good morning, good night")
    assert cols.size == values.size > 0
    assert np.all(np.diff(cols) > 0)
    assert np.isclose(float(values @ values), 1.0)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    clf = default_classifier()
    path = tmp_path / "model.npz"
    clf.save(path)
    again = CategoryClassifier.load(path)
    for text in CLEAR.values():
        a, b = clf.predict_one(text), again.predict_one(text)
        assert a.category == b.category
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


def test_load_rejects_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="cannot load category classifier"):
        CategoryClassifier.load(path)


def test_shape_mismatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="coef must have shape"):
        CategoryClassifier(
            {"a": 0},
            np.ones(1),
            np.ones((1, 2)),
            np.zeros(3),
            ["x", "y", "z"],
            np.zeros(1),
            0.0,
        )


def test_threshold_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"`threshold` must be a float in \[0, 1\]; got 1.5"):
        CategoryClassifier(
            {"a": 0}, np.ones(1), np.ones((1, 1)), np.zeros(1), ["x"], np.zeros(1), 0.0, 1.5
        )


def test_shipped_model_matches_the_code() -> None:
    clf = default_classifier()
    assert clf.categories == CATEGORIES
    assert 0.0 < clf.threshold < 1.0
    assert len(clf.vocabulary) > 10_000
    assert "#chars:6" in clf.vocabulary and "~summa" in clf.vocabulary


def test_shape_markers_come_last() -> None:
    from turnout.signals import prompt_terms

    terms = prompt_terms("```\nprint('# x')\n```\n#chars #lines ~summa")
    assert terms[-3:] == ["#chars:6", "#lines:2", "#fence"]
    assert not any(t.startswith("#chars") for t in terms[:-3])
