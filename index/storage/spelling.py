"""Spelling correction of question words against what an index holds.

A question word is *misspelt* when it has 4 letters or more, is not a stopword, is neither an
English word (:func:`known_words`) nor an inflection of one (:func:`known_stems`: "skirting"
is left alone), and its stemmed term is not indexed. Its correction is, in this order:

1. an English word one or two edits away (:func:`max_edits`) whose term the index holds, or a
   stopword: the reader models then see a real word ("vitory" -> "victory", not the stem
   "victori");
2. failing that, or when it is closer, an indexed term that close to the word's own stem
   (names and rare words the English list lacks: "Sheeshanks" -> "Sheepshanks"), rebuilt with
   what the stemmer cut off ("atmosferic" -> "atmospher" + "ic").

Edits are optimal-string-alignment edits (a swap of two neighbouring letters is one edit, as
people make it: "therpay" -> "therapy"); the first letter is kept (people rarely mistype it).
Of equally close candidates, a substitution by a key that neighbours the typed one on a QWERTY
keyboard beats one by a distant key ("Blpck" -> "Block", "Blzck" -> "Black"), then the term in
more passages wins.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

_KNOWN: frozenset[str] | None = None
_KNOWN_STEMS: frozenset[str] | None = None  # made with the index's stemmer (Snowball English)
_TRIPLE = re.compile(r"(.)\1\1")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_ROW_SHIFT = (0.0, 0.25, 0.75)  # how far each keyboard row sits to the right of the one above


def known_words() -> frozenset[str]:
    """English words spelt right: the whole lower-case words of the bundled WordPiece vocabulary
    (about 22,000, from the tokenizer shipped with the answer reranker). A question word the
    index has never seen but that is in this list is a real word the articles do not use, not a
    typo: it is never "corrected" into a look-alike ("year" is not turned into "yeast" because a
    tiny corpus lacks it). Empty when the file is missing (then every unknown word may be
    corrected)."""
    global _KNOWN
    if _KNOWN is None:
        path = Path(__file__).parent.parent / "data" / "reranker" / "tokenizer.json"
        try:
            vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
            _KNOWN = frozenset(w for w in vocab if w.isalpha() and w.islower())
        except (OSError, ValueError, KeyError, TypeError):
            _KNOWN = frozenset()
    return _KNOWN


def known_stems(stem: Callable[[str], str]) -> frozenset[str]:
    """The stems of :func:`known_words`: a word whose stem is among them is an inflection of an
    English word ("skirting" of "skirt"), not a typo, even when the list lacks that form."""
    global _KNOWN_STEMS
    if _KNOWN_STEMS is None:
        _KNOWN_STEMS = frozenset(map(stem, known_words()))
    return _KNOWN_STEMS


def _by_initial(words: Iterable[str]) -> dict[str, list[str]]:
    """``words`` grouped by their first letter (a correction keeps the first letter)."""
    out: dict[str, list[str]] = {}
    for w in words:
        if w:
            out.setdefault(w[0], []).append(w)
    return out


@functools.cache
def _known_by_initial() -> dict[str, list[str]]:
    return _by_initial(w for w in sorted(known_words()) if len(w) >= 3)


@functools.cache
def _key_position(ch: str) -> tuple[int, float] | None:
    for r, row in enumerate(_ROWS):
        if ch in row:
            return r, row.index(ch) + _ROW_SHIFT[r]
    return None


def keys_neighbour(a: str, b: str) -> bool:
    """Whether keys ``a`` and ``b`` touch on a QWERTY keyboard (same or next row)."""
    pa, pb = _key_position(a), _key_position(b)
    if pa is None or pb is None or a == b:
        return False
    return abs(pa[0] - pb[0]) <= 1 and abs(pa[1] - pb[1]) <= 1.0


def _far_key(typed: str, meant: str) -> bool:
    """True when ``typed`` is ``meant`` with one letter replaced by a key not next to it."""
    if len(typed) != len(meant):
        return False
    diff = [(x, y) for x, y in zip(typed, meant, strict=True) if x != y]
    return len(diff) == 1 and not keys_neighbour(*diff[0])


def max_edits(word: str) -> int:
    """How many edits a correction may be away: 1 for words of 4-5 letters, 2 from 6."""
    return 1 if len(word) <= 5 else 2


class Speller:
    """Corrections for one index: ``vocab`` its terms, ``df`` how many passages hold each,
    ``stem`` the stemmer its terms were made with, ``stopwords`` the words it does not index.
    Corrections are cached (a few thousand)."""

    def __init__(
        self,
        vocab: Mapping[str, object],
        df: Mapping[str, int],
        stem: Callable[[str], str],
        stopwords: frozenset[str],
    ) -> None:
        self.vocab = vocab
        self.df = df
        self.stem = stem
        self.stopwords = stopwords
        self._terms: dict[str, list[str]] | None = None
        self._cache: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def misspelt(self, word: str) -> bool:
        """Whether lower-case ``word`` is a typo candidate: 4 letters or more, not a stopword,
        not an English word nor an inflection of one, and its term not indexed."""
        if len(word) < 4 or not word.isalpha() or word in self.stopwords or word in known_words():
            return False
        term = self.stem(word)
        return term not in self.vocab and term not in known_stems(self.stem)

    def word(self, word: str) -> str | None:
        """The corrected lower-case word for a misspelt lower-case ``word``, or None."""
        return self._cached("w", word, self._word)

    def term(self, term: str) -> str | None:
        """The indexed term closest to an unknown (stemmed) ``term``, or None."""
        if len(term) < 4 or not term.isalpha():
            return None
        return self._cached("t", term, self._term)

    def _cached(self, kind: str, key: str, fn: Callable[[str], str | None]) -> str | None:
        with self._lock:
            if (kind, key) in self._cache:
                return self._cache[kind, key]
        found = fn(key)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[kind, key] = found
        return found

    def _word(self, word: str) -> str | None:
        from rapidfuzz import process
        from rapidfuzz.distance import OSA  # a swap of neighbouring letters is one edit

        limit = max_edits(word)
        found = process.extract(
            word,
            _known_by_initial().get(word[:1], []),
            scorer=OSA.distance,
            score_cutoff=limit,
            limit=50,
        )
        ranked = []
        for cand, dist, _ in found:
            if cand in self.stopwords:
                ranked.append((dist, _far_key(word, cand), 0, cand))
                continue
            t = self.stem(cand)
            if t in self.vocab:
                ranked.append((dist, _far_key(word, cand), -self.df.get(t, 0), cand))
        best = min(ranked) if ranked else None
        # a misspelt word's stem is not indexed, so the nearest indexed stem is at least one
        # edit from it and cannot be strictly closer than an English word one edit away
        if best is not None and best[0] <= 1:
            return best[3]
        stem = self.stem(word)
        fixed = self.term(stem)
        if fixed is not None:
            dist = OSA.distance(stem, fixed)
            if best is None or dist < best[0]:
                # "atmosferic" -> "atmospher" + "ic"; the term itself when the rebuilt word
                # would not stem back to it or would triple a letter ("boycott" + "ting")
                new = fixed + (word[len(stem) :] if word.startswith(stem) else "")
                ok = self.stem(new) == fixed and not _TRIPLE.search(new)
                return new if ok else fixed
        return best[3] if best else None

    def _term(self, term: str) -> str | None:
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        if self._terms is None:
            self._terms = _by_initial(self.vocab)
        found = process.extract(
            term,
            self._terms.get(term[:1], []),
            scorer=OSA.distance,
            score_cutoff=max_edits(term),
            limit=50,
        )
        ranked = [(d, _far_key(term, t), -self.df.get(t, 0), t) for t, d, _ in found]
        return min(ranked)[3] if ranked else None
