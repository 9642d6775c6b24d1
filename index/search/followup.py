"""Follow-up questions in a thread ("what about Tim Cook?", "when was that?", "and the price?"):
the retrieval question built from the follow-up and the thread's earlier questions, without an
LLM. Pure functions.

A follow-up *needs context* when it points back (an anaphor such as it / that / he / there /
then, or an opening such as "what about" / "and ...") or has fewer than two content words of
its own. Its retrieval question is then the follow-up plus the salient terms of the earlier
questions, walking back from the newest to the last one that stood on its own (the *anchor*,
which the answer names: "Following up on: “…”"). Salient terms are the content words (no
stopwords, no question words) with the highest BM25 idf in the index when one is given (rare
words say what a question is about: "Ma", "Apple Pay"; "say" and "year" do not), kept in the
order they were asked so the embedder reads a phrase rather than a bag. A follow-up that stands
on its own ("Who is Tim Cook?") is asked as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.storage.lexical import tokenize

# words that point back to something said before
ANAPHORS = frozenset({
    "it", "its", "it's", "itself", "that", "this", "these", "those", "he", "him", "his", "she",
    "her", "hers", "they", "them", "their", "theirs", "there", "then", "same", "one", "ones",
    "former", "latter",
})  # fmt: skip
# openings that continue the previous question ("what about Tim Cook?", "and the price?")
_OPENINGS = re.compile(
    r"^\s*(?:what about|how about|and|but|also|what else|anything else|same for|then|so)\b",
    re.IGNORECASE,
)
# stems of words that carry no topic in a question (asked as stems: tokenize() stems them)
_QUESTION_WORDS = frozenset(
    tokenize(
        [
            "what who whom whose when where why how which can could would should may might must "
            "shall will say said says tell told know ask asked mean meant happen happened "
            "think thought else anything something thing things about also please did does do "
            "done doing get got make made going really"
        ]
    )[0]
)
_WORD = re.compile(r"[\w'’-]+")
MIN_OWN_TERMS = 2  # content words a follow-up needs to stand on its own
SALIENT_TERMS = 4  # terms borrowed from the earlier questions
CONTEXT_QUESTIONS = 5  # earlier questions considered at most (the newest ones)


@dataclass(frozen=True)
class FollowUp:
    """How a question is asked: ``query`` is what retrieval searches; ``based_on`` the earlier
    question it built on (None: it stands on its own) and ``borrowed`` the words taken from it."""

    question: str
    query: str
    based_on: str | None = None
    borrowed: tuple[str, ...] = ()


def content_terms(text: str) -> list[str]:
    """The stemmed content words of ``text`` (stopwords and question words dropped)."""
    return [t for t in tokenize([text])[0] if t not in _QUESTION_WORDS]


def needs_context(question: str) -> bool:
    """True when ``question`` points back to what was asked before: an anaphor ("when was
    that?", "what did he say?"), a continuing opening ("what about Tim Cook?", "and the
    price?"), or fewer than two content words of its own."""
    if _OPENINGS.match(question):
        return True
    words = {w.lower().strip("'’-") for w in _WORD.findall(question)}
    if words & ANAPHORS:
        return True
    return len(set(content_terms(question))) < MIN_OWN_TERMS


def salient_terms(
    question: str,
    idf: Callable[[str], float] | None = None,
    limit: int = SALIENT_TERMS,
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """Up to ``limit`` content words of ``question`` as written, the rarest first chosen (by
    ``idf`` of their stem; without it, capitalised and longer words first), returned in the
    question's order. Words whose stem is in ``skip`` are left out."""
    seen: set[str] = set()
    candidates: list[tuple[float, int, str, str]] = []  # (-weight, position, word, stem)
    for pos, word in enumerate(_WORD.findall(question)):
        stems = tokenize([word])[0]
        if not stems:
            continue  # a stopword or a one-letter word
        stem = stems[0]
        if stem in _QUESTION_WORDS or stem in skip or stem in seen:
            continue
        if word.lower() in ANAPHORS:
            continue
        seen.add(stem)
        if idf is not None:
            weight = idf(stem)
        else:
            weight = len(word) / 10 + (1.0 if word[:1].isupper() and pos > 0 else 0.0)
        candidates.append((-weight, pos, word.strip("'’-"), stem))
    chosen = sorted(candidates)[:limit]
    return [word for _, _, word, _ in sorted(chosen, key=lambda c: c[1])]


def build(
    question: str,
    context: Sequence[str] = (),
    idf: Callable[[str], float] | None = None,
    limit: int = SALIENT_TERMS,
) -> FollowUp:
    """The retrieval question for ``question`` asked after ``context`` (earlier questions of
    the thread, oldest first). Without context, or when it stands on its own, it is asked as
    it is; otherwise the salient terms of the earlier questions back to the last one that
    stood on its own (the anchor, ``based_on``) are appended, the newest question's first."""
    earlier = [c for c in context if c and c.strip()][-CONTEXT_QUESTIONS:]
    if not earlier or not needs_context(question):
        return FollowUp(question, question)
    chain: list[str] = []
    for previous in reversed(earlier):
        chain.append(previous)
        if not needs_context(previous):
            break
    anchor = chain[-1]
    own = frozenset(content_terms(question))
    borrowed: list[str] = []
    taken = set(own)
    for previous in chain:  # newest first: the nearest question's words count most
        room = limit - len(borrowed)
        if room <= 0:
            break
        words = salient_terms(previous, idf, room, frozenset(taken))
        borrowed.extend(words)
        taken.update(t for w in words for t in tokenize([w])[0])
    if not borrowed:
        return FollowUp(question, question, anchor, ())
    # the words go before the question mark: "when was that? Ma Apple Pay" would read as a
    # two-part question (index.search.answer.question_parts) whose second part is a bag of words
    text = question.rstrip()
    mark = text[-1] if text[-1:] in "?!." else ""
    query = f"{text.rstrip('?!.').rstrip()} {' '.join(borrowed)}{mark}"
    return FollowUp(question, query, anchor, tuple(borrowed))
