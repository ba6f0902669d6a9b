"""Cheap offline language identification: Unicode script first, then stop words.

No model and no download: the writing system settles most non-Latin languages (Cyrillic,
Greek, Arabic, Hebrew, Devanagari, Thai, Hangul, kana, Han ...), and for Latin script the
language whose short list of very common words appears most often wins. Accuracy is that of
a heuristic: good on sentences, unreliable on a handful of words, where it answers
``"unknown"`` rather than guessing.
"""

from __future__ import annotations

import re

__all__ = ["LANGUAGES", "detect_language"]

#: Characters of the prompt the detector reads.
_SAMPLE_CHARS = 800
_MIN_STOPWORD_HITS = 2

_STOPWORDS: dict[str, str] = {
    "en": "the and is are was of to in that it for with you this what how be not on have my "
    "i me your we can does has at from or but if will would should could please hi thanks a "
    "an about",
    "de": "der die das und ist nicht ein eine ich sie mit auf für wie sich dem den auch wir",
    "fr": "le la les et est une des pas je vous que qui dans pour avec sur ce cette sont du",
    "es": "el los las y es una por que para con del se lo como está pero más yo muy son",
    "it": "il lo gli e è una che per con non sono della di mi come questo anche ma del",
    "pt": "o os as e é um uma que para com não do da em por mais como você são isso",
    "nl": "de het een en is van ik niet dat op te zijn met voor ook maar wat hoe",
    "sv": "och att det är en som på för med inte jag har av till om den",
    "pl": "i w nie się na że jest to do jak co z ale czy tak jestem",
    "tr": "ve bir bu için ile de da ne değil çok ben var mı gibi",
}
#: Language codes (ISO 639-1) :func:`detect_language` can return, besides ``"unknown"``.
LANGUAGES: tuple[str, ...] = (
    *_STOPWORDS,
    "ru",
    "uk",
    "el",
    "ar",
    "fa",
    "he",
    "hi",
    "gu",
    "th",
    "ko",
    "ja",
    "zh",
)

# A word may belong to several languages; each hit counts for every one of them.
_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words.split():
        _WORD_LANGS[_w] = (*_WORD_LANGS.get(_w, ()), _lang)

_WORD = re.compile(r"[^\W\d_]+")
# (language, pattern) in order of precedence: kana before Han (Japanese mixes both).
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("gu", re.compile(r"[\u0a80-\u0aff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
)
_UKRAINIAN = re.compile(r"[іїєґІЇЄҐ]")
_PERSIAN = re.compile(r"[پچژگی]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")


def _latin_language(sample: str) -> str:
    votes: dict[str, int] = {}
    for word in _WORD.findall(sample.lower()):
        for lang in _WORD_LANGS.get(word, ()):
            votes[lang] = votes.get(lang, 0) + 1
    if not votes:
        return "unknown"
    best = max(votes, key=lambda lang: (votes[lang], lang == "en"))
    return best if votes[best] >= _MIN_STOPWORD_HITS else "unknown"


def detect_language(text: str) -> str:
    """The main language of ``text`` as an ISO 639-1 code, or ``"unknown"``.

    Args:
        text: Any text; only the first 800 characters are read.

    Returns:
        A code from :data:`LANGUAGES`, or ``"unknown"`` when there are too few clues.
    """
    sample = text[:_SAMPLE_CHARS]
    if sample.isascii():
        return _latin_language(sample)
    latin = len(_LATIN_LETTER.findall(sample))
    best, best_count = "", 0
    for lang, pattern in _SCRIPTS:
        count = len(pattern.findall(sample))
        if count > best_count and (lang != "zh" or best != "ja"):
            best, best_count = lang, count
    if best_count == 0 or best_count < latin:
        return _latin_language(sample)
    if best == "ru" and _UKRAINIAN.search(sample):
        return "uk"
    if best == "ar" and _PERSIAN.search(sample):
        return "fa"
    return best
