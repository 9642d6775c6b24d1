"""Pick the sentence (or two adjacent sentences) that best answers a question, and say how
confident we are that the passages answer it at all. Pure functions.

Sentence score = ``w_dense * cos(question, sentence) + w_lex * coverage + prior(rank)`` where

- the sentence vector is pooled at indexing time from the passage's own contextual token
  vectors ("late chunking": no extra model call at question time), and
- coverage is the idf-weighted share of the question's (stemmed, non-stopword) terms that the
  sentence contains.

The quote is a verbatim span of the article: its offsets are absolute offsets into the text.

Confidence (for abstaining) = ``0.4 * coverage of the question by the best of the top three
passages + 0.6 * the best cosine between the question and those passages``; calibrated with
``newsdesk eval --leave-out`` (see docs/quality.md).

With the learned reranker (``answer.reranker``, the default; :mod:`index.search.rerank`) the cheap
score above only shortlists ``rerank_candidates`` sentences; a cross-encoder then reads each
(question, title | sentence | previous sentence), and a logistic :class:`Combiner` of its logit
with five cheap features (sentence and passage cosines, shares of question terms, passage rank)
decides. The confidence is the combiner's probability for the best sentence: it depends on the
question, the sentence and its passage only, not on what else is indexed (no idf, no corpus
statistics), so an article gets the same verdict alone or among thousands. Two or three word
captions and bylines ("Jack Ma.") are not quoted while a longer sentence is a candidate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.chunking import all_sentences
from index.models import Hit, Quote
from index.search.rerank import Scorer, pair_text, sigmoid
from index.storage.lexical import tokenize

IdfFn = Callable[[str], float]
SentenceLookup = Callable[[Sequence[int]], dict[int, tuple[np.ndarray, np.ndarray]]]


@dataclass(frozen=True)
class AnswerWeights:
    dense: float = 0.5
    lexical: float = 0.5
    rank_prior: float = 0.05
    pair_margin: float = 0.02
    passages: int = 5
    # confidence = conf_lexical * coverage + (1 - conf_lexical) * cosine (top conf_passages)
    conf_lexical: float = 0.4
    conf_passages: int = 3


@dataclass
class Candidate:
    hit_index: int
    start: int  # absolute offsets into the article
    end: int
    text: str
    dense: float = 0.0
    lexical: float = 0.0
    score: float = 0.0
    terms: set[str] = field(default_factory=set)
    features: list[float] = field(default_factory=list)


def coverage(q_terms: Sequence[str], s_terms: set[str], idf: IdfFn) -> float:
    """idf-weighted share of the question's terms found in ``s_terms`` (0..1)."""
    uniq = set(q_terms)
    total = sum(idf(t) for t in uniq)
    if total <= 0:
        return 0.0
    return sum(idf(t) for t in uniq if t in s_terms) / total


def candidates(
    hits: Sequence[Hit],
    n_passages: int,
    lookup: SentenceLookup | None,
    q_vec: np.ndarray | None,
) -> list[Candidate]:
    """Sentences of the top passages, in reading order per passage, with dense scores."""
    top = hits[:n_passages]
    stored = lookup([p[0] for h in top for p in h.parts]) if lookup is not None else {}
    out: list[Candidate] = []
    for hi, h in enumerate(top):
        seen: dict[int, Candidate] = {}
        for cid, cstart, _cend in h.parts or [(h.chunk_id, h.start, h.end)]:
            if cid in stored:
                spans, vecs = stored[cid]
                sims = vecs @ q_vec.astype(np.float32) if q_vec is not None else None
                for j, (a, b) in enumerate(spans):
                    s, e = cstart + int(a), cstart + int(b)
                    if s in seen or s < h.start or e > h.end:
                        continue
                    c = Candidate(hi, s, e, h.text[s - h.start : e - h.start])
                    c.dense = float(sims[j]) if sims is not None else 0.0
                    seen[s] = c
        if not seen:  # no stored sentence vectors: split now, lexical scores only
            for a, b in all_sentences(h.text):
                seen[h.start + a] = Candidate(hi, h.start + a, h.start + b, h.text[a:b])
        out.extend(seen[s] for s in sorted(seen))
    return out


def cheap_scores(
    question: str, cands: Sequence[Candidate], idf: IdfFn, w: AnswerWeights
) -> list[str]:
    """Score ``cands`` in place by ``dense * cos + lexical * coverage + rank prior``; returns
    the question's terms."""
    q_terms = tokenize([question])[0]
    toks = tokenize([c.text for c in cands])
    for c, t in zip(cands, toks, strict=True):
        c.terms = set(t)
        c.lexical = coverage(q_terms, c.terms, idf)
        c.score = w.dense * c.dense + w.lexical * c.lexical + w.rank_prior / (1 + c.hit_index)
    return q_terms


def select(
    question: str,
    hits: Sequence[Hit],
    q_vec: np.ndarray | None,
    lookup: SentenceLookup | None,
    idf: IdfFn,
    *,
    max_chars: int = 400,
    weights: AnswerWeights | None = None,
) -> tuple[Quote | None, Candidate | None]:
    """Best quote among the top passages, with its scored candidate (None if no sentence)."""
    w = weights or AnswerWeights()
    cands = candidates(hits, w.passages, lookup, q_vec)
    if not cands:
        return None, None
    q_terms = cheap_scores(question, cands, idf, w)
    best_i = max(range(len(cands)), key=lambda i: cands[i].score)
    best = cands[best_i]
    start, end, score = best.start, best.end, best.score
    # two adjacent sentences of one passage, when together they cover more of the question
    for j in (best_i - 1, best_i + 1):
        if not 0 <= j < len(cands) or cands[j].hit_index != best.hit_index:
            continue
        other = cands[j]
        a, b = (other, best) if j < best_i else (best, other)
        if b.end - a.start > max_chars or _para_break(hits[best.hit_index], a, b):
            continue
        lex = coverage(q_terms, a.terms | b.terms, idf)
        pair_score = (
            w.dense * max(a.dense, b.dense) + w.lexical * lex + w.rank_prior / (1 + best.hit_index)
        )
        if pair_score > score + w.pair_margin:
            start, end, score = a.start, b.end, pair_score
    return _quote(hits[best.hit_index], start, end, score, max_chars), best


def _para_break(hit: Hit, a: Candidate, b: Candidate) -> bool:
    """True when a blank line separates candidate ``a`` from ``b`` (same passage)."""
    between = hit.text[a.end - hit.start : b.start - hit.start]
    return between.count("\n") >= 2 or "\n\n" in between


def _quote(hit: Hit, start: int, end: int, score: float, max_chars: int) -> Quote:
    text = hit.text[start - hit.start : end - hit.start]
    if len(text) > max_chars:  # a single over-long sentence: cut at a word boundary, verbatim
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip()
        end = start + len(text)
    return Quote(
        text=text,
        article_id=hit.article_id,
        title=hit.title,
        source=hit.source,
        url=hit.url,
        start=start,
        end=end,
        score=score,
        chunk_id=hit.chunk_id,
        published=hit.published,
    )


def confidence(
    question: str,
    hits: Sequence[Hit],
    passage_cosines: Sequence[float],
    idf: IdfFn,
    weights: AnswerWeights | None = None,
) -> float:
    """How likely the top passages answer the question at all (0..1, higher = more likely)."""
    w = weights or AnswerWeights()
    top = hits[: w.conf_passages]
    if not top:
        return 0.0
    q_terms = tokenize([question])[0]
    toks = tokenize([f"{h.title}\n{h.text}" for h in top])
    cov = max(coverage(q_terms, set(t), idf) for t in toks)
    cos = max(passage_cosines[: w.conf_passages], default=0.0)
    return float(w.conf_lexical * cov + (1 - w.conf_lexical) * max(0.0, cos))


MIN_QUOTE_WORDS = 4  # shorter candidates (captions, bylines: "Jack Ma.") only as a last resort


@dataclass
class Reranked:
    """What the learned scorer decided: the quote, its probability and the passage order."""

    quote: Quote | None
    confidence: float  # sigmoid of the best logit: P(the quote contains the answer)
    order: list[int]  # hit indexes, best sentence first; unscored hits keep their order after
    best: Candidate | None = None
    scored: list[Candidate] = field(default_factory=list)
    joined: Candidate | None = None  # the neighbouring sentence quoted with ``best``, if any


def shortlist(cands: Sequence[Candidate], k: int) -> list[int]:
    """Indexes of the candidates the cross-encoder reads: the ``k`` best by the cheap score, plus
    the best of every passage (so every passage can be re-ordered), captions left out while a
    longer sentence exists."""
    idx = list(range(len(cands)))
    long_enough = [i for i in idx if len(cands[i].text.split()) >= MIN_QUOTE_WORDS]
    pool = long_enough or idx
    ranked = sorted(pool, key=lambda i: -cands[i].score)
    keep = dict.fromkeys(ranked[:k])
    best_of: dict[int, int] = {}
    for i in ranked:
        best_of.setdefault(cands[i].hit_index, i)
    keep.update(dict.fromkeys(best_of.values()))
    return sorted(keep)


def _context(cands: Sequence[Candidate], i: int, hits: Sequence[Hit]) -> str:
    """The sentence before candidate ``i`` in its paragraph ("" at a paragraph's start)."""
    c = cands[i]
    if i == 0 or cands[i - 1].hit_index != c.hit_index:
        return ""
    prev = cands[i - 1]
    return "" if _para_break(hits[c.hit_index], prev, c) else prev.text


# what the combiner reads for each shortlisted sentence; none depends on corpus statistics
FEATURES = ("logit", "sentence_cos", "sentence_terms", "passage_terms", "passage_cos", "rank")


@dataclass(frozen=True)
class Combiner:
    """A logistic regression over :data:`FEATURES`: P(the sentence contains the answer). It ranks
    the shortlisted sentences and its probability decides abstention. Fitted by
    ``newsdesk train-reranker`` on questions of articles the cross-encoder never saw."""

    weights: tuple[float, ...]
    bias: float

    def __call__(self, features: Sequence[float]) -> float:
        return float(np.dot(self.weights, features) + self.bias)

    @classmethod
    def from_meta(cls, meta: dict[str, object]) -> Combiner | None:
        c = meta.get("combiner")
        if not isinstance(c, dict) or list(c.get("features", [])) != list(FEATURES):
            return None
        return cls(tuple(float(x) for x in c["weights"]), float(c["bias"]))


def term_share(q_terms: Sequence[str], terms: set[str]) -> float:
    """Share of the question's distinct terms found in ``terms`` (no idf: corpus-independent)."""
    uniq = set(q_terms)
    return len(uniq & terms) / len(uniq) if uniq else 0.0


def rerank_select(
    question: str,
    hits: Sequence[Hit],
    q_vec: np.ndarray | None,
    lookup: SentenceLookup | None,
    idf: IdfFn,
    scorer: Scorer,
    *,
    max_chars: int = 400,
    weights: AnswerWeights | None = None,
    k: int = 10,
    passage_cos: Sequence[float] | None = None,
    combiner: Combiner | None = None,
    pair_ratio: float = 1.0,
) -> Reranked:
    """The best sentence of the top passages by the learned scorer, verbatim.

    ``passage_cos[i]``: cosine between the question and hit ``i``'s passage vector. With a
    ``combiner`` the cross-encoder's logit is one of its features; without, the logit alone
    decides. The sentence right before or after the best one joins the quote when the scorer
    gives it at least ``pair_ratio`` x the best one's probability (same paragraph, together at
    most ``max_chars``; ``pair_ratio`` 1 = one sentence only): when the scorer cannot tell two
    neighbours apart, the quote shows both rather than bet on one."""
    w = weights or AnswerWeights()
    cands = candidates(hits, w.passages, lookup, q_vec)
    if not cands:
        return Reranked(None, 0.0, list(range(len(hits))))
    q_terms = cheap_scores(question, cands, idf, w)
    picked = shortlist(cands, k)
    texts = [
        pair_text(hits[cands[i].hit_index].title, cands[i].text, _context(cands, i, hits))
        for i in picked
    ]
    logits = scorer.score(question, texts)
    hit_terms = {
        h: set(t)
        for h, t in zip(
            sorted({cands[i].hit_index for i in picked}),
            tokenize(
                [
                    f"{hits[h].title}\n{hits[h].text}"
                    for h in sorted({cands[i].hit_index for i in picked})
                ]
            ),
            strict=True,
        )
    }
    scored = []
    for i, logit in zip(picked, logits.tolist(), strict=True):
        c = cands[i]
        c.features = [
            float(logit),
            c.dense,
            term_share(q_terms, c.terms),
            term_share(q_terms, hit_terms[c.hit_index]),
            float(passage_cos[c.hit_index]) if passage_cos is not None else 0.0,
            1.0 / (1 + c.hit_index),
        ]
        c.score = combiner(c.features) if combiner is not None else float(logit)
        scored.append(c)
    bi = max(picked, key=lambda i: cands[i].score)
    best = cands[bi]
    per_hit: dict[int, float] = {}
    for c in scored:
        per_hit[c.hit_index] = max(per_hit.get(c.hit_index, -1e9), c.score)
    order = sorted(per_hit, key=lambda h: -per_hit[h])
    order += [h for h in range(len(hits)) if h not in per_hit]
    joined = _neighbour(cands, bi, set(picked), hits, pair_ratio, max_chars)
    start, end = best.start, best.end
    if joined is not None:
        start, end = min(start, joined.start), max(end, joined.end)
    quote = _quote(hits[best.hit_index], start, end, sigmoid(best.score), max_chars)
    return Reranked(quote, sigmoid(best.score), order, best, scored, joined)


def _neighbour(
    cands: Sequence[Candidate],
    bi: int,
    scored: set[int],
    hits: Sequence[Hit],
    ratio: float,
    max_chars: int,
) -> Candidate | None:
    """The scored sentence right before or after ``cands[bi]`` in the same paragraph whose
    probability is at least ``ratio`` x the best one's and that fits in ``max_chars`` with it
    (the likelier of the two when both qualify), or None."""
    if ratio >= 1.0:
        return None
    best = cands[bi]
    hit = hits[best.hit_index]
    floor = ratio * sigmoid(best.score)
    out: Candidate | None = None
    for j in (bi - 1, bi + 1):
        if j not in scored or cands[j].hit_index != best.hit_index:
            continue
        o = cands[j]
        a, b = (o, best) if j < bi else (best, o)
        between = hit.text[a.end - hit.start : b.start - hit.start]
        if between.strip() or _para_break(hit, a, b) or b.end - a.start > max_chars:
            continue  # not adjacent, a paragraph break between them, or too long together
        if sigmoid(o.score) >= floor and (out is None or o.score > out.score):
            out = o
    return out


_WH = r"(?:who|whom|whose|what|when|where|why|which|how|did|does|do|is|was|were|are|has|had|can)"
_PART_SPLIT = re.compile(rf"(?:\?\s+|[,;]?\s+and\s+(?={_WH}\b))", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The parts of a multi-part question ("When did the embargo start and when did it end?"
    -> two parts); one part for an ordinary question. A part needs three words."""
    parts = [p.strip(" ,;") for p in _PART_SPLIT.split(question.strip())]
    parts = [p for p in parts if p]
    if len(parts) < 2 or any(len(p.split()) < 3 for p in parts):
        return [question]
    return [p if p.endswith("?") else p + "?" for p in parts[:3]]


def second_part(
    question: str,
    hits: Sequence[Hit],
    r: Reranked,
    scorer: Scorer,
    max_chars: int,
) -> list[tuple[Quote, float]]:
    """For a multi-part question, the best sentence for each further part when it is another
    sentence than the main quote: (quote, probability) pairs, best part first."""
    parts = question_parts(question)
    if len(parts) < 2 or r.best is None or not r.scored:
        return []
    out: list[tuple[Quote, float]] = []
    used = {(c.hit_index, c.start) for c in (r.best, r.joined) if c is not None}
    texts = [pair_text(hits[c.hit_index].title, c.text) for c in r.scored]
    for part in parts:
        logits = scorer.score(part, texts)
        j = int(np.argmax(logits))
        c = r.scored[j]
        if (c.hit_index, c.start) in used:
            continue
        used.add((c.hit_index, c.start))
        p = sigmoid(float(logits[j]))
        out.append((_quote(hits[c.hit_index], c.start, c.end, p, max_chars), p))
    return out
