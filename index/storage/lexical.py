"""BM25 over passages with bm25s (English stopwords + Snowball stemming), persisted per generation.

bm25s has no incremental update, and its scores depend on corpus-wide statistics (document
frequencies, average length), so every write publishes a new BM25 matrix. What is incremental is
the expensive part: each generation keeps its passages' term ids (``tokens.npy``), so the next
write tokenises only its new passages, and the BM25 matrix is computed in a few vectorised numpy
passes that give exactly bm25s' own float32 scores (``bm25s.BM25.index`` loops over documents in
Python: 20 s for 100,000 passages against about 1 s here).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.storage.allowed import Allowed
from index.storage.spelling import Speller

log = logging.getLogger(__name__)

# bm25s.tokenize's own rules (scikit-learn's token pattern, lower-cased, English stopwords, then
# Snowball stems), reimplemented without its per-call progress bar and per-text stopword set:
# the same tokens, several times faster on the short texts of the question path
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS: frozenset[str] | None = None
_LOCAL = threading.local()  # a Snowball stemmer per thread (they are not thread-safe)


def _stemmer() -> Any:
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _LOCAL.stemmer = Stemmer.Stemmer("english")
    return stemmer


def _stem(word: str) -> str:
    """``word``'s Snowball stem, with this thread's stemmer."""
    return str(_stemmer().stemWord(word))


def _stopwords() -> frozenset[str]:
    global _STOPWORDS
    if _STOPWORDS is None:
        _bm25s()  # quiets its logger first
        from bm25s.stopwords import STOPWORDS_EN

        _STOPWORDS = frozenset(STOPWORDS_EN)
    return _STOPWORDS


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its logger to DEBUG on import; keep it quiet unless asked
    lg = logging.getLogger("bm25s")
    if lg.level < logging.WARNING and not logging.getLogger().isEnabledFor(logging.DEBUG):
        lg.setLevel(logging.WARNING)
    return bm25s


@functools.lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[str, ...]:
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    return tuple(_stemmer().stemWords(words)) if words else ()


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Stemmed, stopword-free terms of each text, exactly as ``bm25s.tokenize`` makes them.

    Short texts (questions, sentences, passages) are cached: the question path tokenises the
    same question and passages several times.
    """
    return [list(_tokens(t)) if len(t) <= 4096 else list(_tokens.__wrapped__(t)) for t in texts]


@dataclass
class Tokens:
    """Tokenised passages: the term ids of document ``i`` are ``flat[offsets[i]:offsets[i+1]]``
    (in text order, stopwords removed, stemmed), ``vocab[id]`` the term."""

    vocab: list[str]
    flat: np.ndarray  # int32
    offsets: np.ndarray  # int64, one more than documents

    @classmethod
    def of(cls, texts: Sequence[str], vocab: list[str] | None = None) -> Tokens:
        """Tokenise ``texts``, extending (a copy of) ``vocab`` with new terms."""
        return cls.of_terms(
            (_tokens(t) if len(t) <= 4096 else _tokens.__wrapped__(t) for t in texts), vocab
        )

    @classmethod
    def of_terms(
        cls, term_lists: Iterable[Sequence[str]], vocab: list[str] | None = None
    ) -> Tokens:
        """Already tokenised documents (as :func:`tokenize` makes them; the Milvus backend stores
        them), extending (a copy of) ``vocab`` with new terms in order of first use."""
        vocab = list(vocab or [])
        index = {t: i for i, t in enumerate(vocab)}
        flat: list[int] = []
        offsets = [0]
        for terms in term_lists:
            for term in [t for t in dict.fromkeys(terms) if t not in index]:  # new ones
                index[term] = len(vocab)
                vocab.append(term)
            flat.extend(map(index.__getitem__, terms))
            offsets.append(len(flat))
        return cls(vocab, np.asarray(flat, dtype=np.int32), np.asarray(offsets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def select(self, keep: np.ndarray) -> Tokens:
        """The documents where ``keep`` is true, in order."""
        lengths = np.diff(self.offsets)[keep]
        starts = self.offsets[:-1][keep]
        total = int(lengths.sum())
        # positions of the kept documents' tokens: each start repeated, plus 0..length-1
        pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        pos += np.arange(total, dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        return Tokens(self.vocab, self.flat[pos], offsets)

    def extend(self, other_texts: Sequence[str]) -> Tokens:
        return self.append(Tokens.of(other_texts, self.vocab))

    def append(self, new: Tokens) -> Tokens:
        """These documents, then ``new``'s (tokenised with this vocabulary, extended)."""
        flat = np.concatenate((self.flat, new.flat))
        offsets = np.concatenate((self.offsets, new.offsets[1:] + self.offsets[-1]))
        return Tokens(new.vocab, flat, offsets)

    def compact(self) -> Tokens:
        """Drop terms no document uses any more (after removals); ids renumbered."""
        used = np.zeros(len(self.vocab), dtype=bool)
        used[self.flat] = True
        if used.all():
            return self
        remap = np.cumsum(used) - 1
        vocab = [t for t, u in zip(self.vocab, used.tolist(), strict=True) if u]
        return Tokens(vocab, remap[self.flat].astype(np.int32), self.offsets)


def bm25_matrix(
    tokens: Tokens, k1: float = 1.5, b: float = 0.75
) -> tuple[dict[str, Any], np.ndarray]:
    """bm25s' "lucene" BM25 scores (its defaults) as its CSC arrays, vectorised, with the same
    float operations in the same order, so the float32 results are identical; and the document
    frequency of every term."""
    import scipy.sparse

    n_docs, n_vocab = len(tokens), len(tokens.vocab)
    lengths = np.diff(tokens.offsets)
    # bm25s: np.array([len(doc_ids) for doc_ids in corpus_token_ids]).mean()
    avg_len = lengths.mean()
    doc = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    # term frequencies per (document, term), column by column: duplicates summed, rows sorted
    counts = scipy.sparse.csc_matrix(
        (np.ones(len(doc), dtype=np.int32), (doc, tokens.flat)), shape=(n_docs, n_vocab)
    )
    counts.sum_duplicates()
    counts.sort_indices()
    indptr = counts.indptr.astype(np.int64)
    docs = counts.indices.astype(np.int32)
    df = np.diff(indptr)
    # idf exactly as bm25s (math.log on Python floats), stored as float32
    idf = np.asarray(
        [math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) if d else 0.0 for d in df.tolist()],
        dtype=np.float32,
    )
    # bm25s per document: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf), in float64 because its
    # l_avg is a numpy float64; times the float32 idf; stored as float32
    tf = counts.data.astype(np.float32).astype(np.float64)
    l_d = lengths[docs].astype(np.float64)
    tfc = tf / (k1 * ((1 - b) + b * l_d / avg_len) + tf)
    term_idf = np.repeat(idf, df).astype(np.float64)
    matrix = {
        "data": (term_idf * tfc).astype(np.float32),
        "indices": docs,
        "indptr": indptr,
        "num_docs": n_docs,
    }
    return matrix, df


class LexicalIndex:
    """BM25 over passages; ``ids[i]`` is the chunk id of document ``i``."""

    def __init__(
        self,
        retriever: Any,
        ids: np.ndarray,
        df: dict[str, int] | None = None,
        tokens: Tokens | None = None,
    ) -> None:
        self.retriever = retriever
        self.ids = ids
        self.df = df or {}
        self._tokens = tokens  # in memory until saved; then read back from path if needed
        self.path: Path | None = None
        self._idf: dict[str, float] = {}
        # BM25 scores of every document for the last few queries: a question asks for them
        # twice (top list, then exact scores of the fused candidates)
        self._scores: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self._scores_lock = threading.Lock()
        self._speller: Speller | None = None

    def idf(self, term: str) -> float:
        """BM25 idf of a (stemmed) term; unseen terms get the highest idf."""
        v = self._idf.get(term)
        if v is None:
            n = max(len(self), 1)
            d = self.df.get(term, 0)
            v = self._idf[term] = math.log(1.0 + (n - d + 0.5) / (d + 0.5))
        return v

    def speller(self) -> Speller:
        """Spelling corrections against this index's terms (index/storage/spelling.py)."""
        if self._speller is None:
            vocab = getattr(self.retriever, "vocab_dict", None) or {}
            self._speller = Speller(vocab, self.df, _stem, _stopwords())
        return self._speller

    def _terms(self, query: str) -> tuple[str, ...]:
        """The query's terms in the vocabulary; a misspelt word ("mooon", "Apolo") is replaced
        by its correction (:meth:`spell`)."""
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        terms = tokenize([query])[0]
        if all(t in vocab for t in terms):
            return tuple(terms)
        stop = _stopwords()
        speller = self.speller()
        words = [w for w in _TOKEN.findall(query.lower()) if w not in stop]
        out = []
        for w, t in zip(words, _stemmer().stemWords(words), strict=True):
            if t in vocab:
                out.append(t)
            elif speller.misspelt(w):  # a real word the articles lack stays unmatched
                fixed = speller.word(w)
                if fixed is not None and (ft := speller.stem(fixed)) in vocab:
                    out.append(ft)
        return tuple(out)

    def spell(self, text: str) -> str:
        """``text`` with each misspelt word replaced by its correction, for the readers of the
        question that see words rather than terms (the embedder, the answer reranker):
        "When did Apolo 11 land on the mooon" -> "When did Apollo 11 land on the moon",
        "What party had a vitory" -> "What party had a victory".

        A word is misspelt when it is not an English word (:func:`known_words`), not a
        stopword, and its stemmed term is not indexed; its correction is an English word or an
        indexed term one or two edits away (index/storage/spelling.py), capitalised like the
        word typed. Short and numeric words are never touched, and a text with no misspelt word
        comes back as is.
        """
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        if not vocab:
            return text
        speller = self.speller()

        def fix(m: re.Match[str]) -> str:
            word = m.group(0)
            low = word.lower()
            if not speller.misspelt(low):
                return word
            new = speller.word(low)
            if new is None:
                return word
            return new[:1].upper() + new[1:] if word[:1].isupper() else new

        return _TOKEN.sub(fix, text)

    def correct(self, term: str) -> str | None:
        """The indexed term closest to an unknown (stemmed) ``term``: one edit away for terms of
        4-5 letters, two from 6, same first letter; None for short, numeric or far-off terms."""
        return self.speller().term(term)

    def _all_scores(self, terms: tuple[str, ...]) -> np.ndarray:
        """BM25 score of every document for ``terms`` (all in the vocabulary), cached."""
        with self._scores_lock:
            hit = self._scores.get(terms)
            if hit is not None:
                self._scores.move_to_end(terms)
                return hit
        scores = self.retriever.get_scores(list(terms))
        scores.setflags(write=False)
        with self._scores_lock:
            self._scores[terms] = scores
            while len(self._scores) > 8:
                self._scores.popitem(last=False)
        return scores

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        return cls.from_tokens(np.asarray(ids, dtype=np.int64), Tokens.of(texts))

    @classmethod
    def from_tokens(cls, ids: np.ndarray, tokens: Tokens) -> LexicalIndex:
        bm25s = _bm25s()

        retriever = bm25s.BM25()
        tokens = tokens.compact()
        if len(tokens) == 0 or not tokens.vocab:
            return cls(retriever, ids, {}, tokens)
        matrix, df = bm25_matrix(tokens, k1=retriever.k1, b=retriever.b)
        vocab = {t: i for i, t in enumerate(tokens.vocab)}
        vocab[""] = len(vocab)  # bm25s adds the empty token to every vocabulary
        retriever.scores = matrix
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.nonoccurrence_array = None
        return cls(retriever, ids, dict(zip(tokens.vocab, df.tolist(), strict=True)), tokens)

    def tokens(self) -> Tokens | None:
        """The tokenised passages (read from the saved generation if need be); None for an
        index saved before they were kept."""
        if self._tokens is None and self.path is not None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = np.load(self.path / "tokens.npz")
                vocab = json.loads((self.path / "vocab.json").read_text(encoding="utf-8"))
                return Tokens(list(vocab), data["flat"], data["offsets"])
        return self._tokens

    def updated(
        self, remove: Sequence[int], ids: Sequence[int], texts: Sequence[str]
    ) -> LexicalIndex | None:
        """This index without the chunk ids ``remove`` and with ``(ids, texts)`` appended (ids
        greater than every kept one): only the new texts are tokenised. None when this index
        keeps no tokens (built by an older newsdesk): build it from all the texts then."""
        return self._updated(remove, ids, lambda vocab: Tokens.of(texts, vocab))

    def updated_terms(
        self, remove: Sequence[int], ids: Sequence[int], term_lists: Sequence[Sequence[str]]
    ) -> LexicalIndex | None:
        """:meth:`updated` with the new passages already tokenised (the Milvus backend keeps
        each passage's terms in its row): the same index, to the bit."""
        return self._updated(remove, ids, lambda vocab: Tokens.of_terms(term_lists, vocab))

    def _updated(
        self, remove: Sequence[int], ids: Sequence[int], new: Callable[[list[str]], Tokens]
    ) -> LexicalIndex | None:
        tokens = self.tokens()
        if tokens is None or len(tokens) != len(self):
            return None
        new_ids = np.asarray(ids, dtype=np.int64)
        keep = ~np.isin(self.ids, np.asarray(remove, dtype=np.int64))
        kept_ids = self.ids[keep]
        if len(new_ids) and len(kept_ids) and new_ids.min() <= kept_ids.max():
            return None  # would not stay in id order
        kept = tokens.select(keep)
        tokens = kept.append(new(kept.vocab)) if len(new_ids) else kept
        return LexicalIndex.from_tokens(np.concatenate((kept_ids, new_ids)), tokens)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def search(self, query: str, k: int, allowed: Allowed | None = None) -> list[tuple[int, float]]:
        """(chunk_id, bm25 score) pairs, best first; only documents sharing a term (``allowed``:
        only those passages, see :meth:`_scoped_scores`)."""
        if len(self) == 0:
            return []
        terms = self._terms(query)
        if not terms:
            return []
        # what BM25.retrieve does for one query (numpy top-k, sorted), minus its thread pool
        # and progress bar: the same documents in the same order
        from bm25s.selection import topk

        if allowed is None:
            ids, all_scores = self.ids, self._all_scores(terms)
        else:
            pos, local = allowed.derived("bm25", lambda: self._positions(allowed))
            ids, all_scores = self.ids[pos], self._scoped_scores(terms, local, len(pos))
        k = min(k, len(ids))
        if k == 0:
            return []
        scores, docs = topk(all_scores, k, backend="numpy", sorted=True)
        out = []
        for d, s in zip(docs, scores, strict=True):
            if s <= 0:
                break
            out.append((int(ids[int(d)]), float(s)))
        return out

    def _positions(self, allowed: Allowed) -> tuple[np.ndarray, np.ndarray]:
        """Where the allowed passages are among this index's documents, and for every document
        its place among the allowed ones (-1: not allowed)."""
        pos = np.searchsorted(self.ids, allowed.ids)
        ok = pos < len(self.ids)
        ok[ok] = self.ids[pos[ok]] == allowed.ids[ok]
        pos = pos[ok]
        local = np.full(len(self), -1, dtype=np.int64)
        local[pos] = np.arange(len(pos))
        return pos, local

    def _scoped_scores(self, terms: tuple[str, ...], local: np.ndarray, n: int) -> np.ndarray:
        """BM25 scores of the allowed documents only: of each term's postings, those of allowed
        documents are added up (the same float32 sums, in the same term order, as bm25s' own
        scores of every document; corpus statistics stay those of the whole index)."""
        out = np.zeros(n, dtype=np.float32)
        m = getattr(self.retriever, "scores", None)
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        if not m or not n:
            return out
        data, indices, indptr = m["data"], m["indices"], m["indptr"]
        for t in terms:
            tid = vocab.get(t)
            if tid is None or tid + 1 >= len(indptr):
                continue
            s, e = int(indptr[tid]), int(indptr[tid + 1])
            j = local[indices[s:e]]
            keep = j >= 0
            out[j[keep]] += data[s:e][keep]
        return out

    def scores_for(self, query: str, chunk_ids: Sequence[int]) -> np.ndarray:
        """Exact BM25 scores of the query for the given chunk ids (0 for unknown ids)."""
        out = np.zeros(len(chunk_ids), dtype=np.float32)
        if len(self) == 0 or not len(chunk_ids):
            return out
        terms = self._terms(query)
        if not terms:
            return out
        all_scores = self._all_scores(terms)
        want = np.asarray(chunk_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, want)
        pos = np.clip(pos, 0, len(self.ids) - 1)
        found = self.ids[pos] == want
        out[found] = all_scores[pos[found]]
        return out

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "ids.npy", self.ids)
        if len(self) and getattr(self.retriever, "scores", None):
            self.retriever.save(str(path / "bm25"), show_progress=False)
        (path / "lexical.json").write_text(json.dumps({"documents": len(self), "df": self.df}))
        tokens = self.tokens()
        if tokens is not None:
            with (path / "tokens.npz").open("wb") as f:
                np.savez(f, flat=tokens.flat, offsets=tokens.offsets)
            (path / "vocab.json").write_text(json.dumps(tokens.vocab), encoding="utf-8")
        self.path, self._tokens = path, None  # a serving process needs no tokens in memory

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        bm25s = _bm25s()

        ids = np.load(path / "ids.npy")
        df = json.loads((path / "lexical.json").read_text()).get("df", {})
        if ids.shape[0] == 0 or not (path / "bm25").is_dir():
            out = cls(bm25s.BM25(), ids, df)
        else:
            retriever = bm25s.BM25.load(str(path / "bm25"), show_progress=False, verbosity=0)
            out = cls(retriever, ids, df)
        out.path = path
        return out
