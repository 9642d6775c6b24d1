"""Messages that are not questions about the articles ("help", "thanks", "hi", "42", "good
bot"): they never get a quote. Pure functions.

A message is small talk when it is one of a few fixed phrases, or when it has no content word
at all (after dropping stopwords, greetings, fillers and bare numbers). A one-word lookup such
as "Apollo" or "Laguna Beach" is not small talk: it has content words.
"""

from __future__ import annotations

import re
from typing import Literal

from index.storage.lexical import tokenize

Kind = Literal["help", "thanks", "greeting", "noise"]

_HELP = {
    "help", "help me", "help please", "please help", "usage", "commands", "how to use",
    "how do i use this", "how do i use you", "how does this work", "what can you do",
    "what do you do", "what are you", "who are you", "how do i ask", "how to ask", "info",
    "what is this", "what is this bot", "h",
}  # fmt: skip
_THANKS = {
    "thanks", "thank you", "thank you so much", "thanks a lot", "thx", "ty", "tysm", "cheers",
    "good bot", "nice bot", "great bot", "bad bot", "nice", "great", "cool", "ok", "okay", "k",
    "lol", "lmao", "awesome", "perfect", "got it", "no", "yes", "yep", "nope", "wow", "ah",
    "thanks bot", "much appreciated", "appreciated", "nice one", "well done", "good job",
}  # fmt: skip
_GREETING = {
    "hi", "hello", "hey", "hiya", "yo", "sup", "whats up", "what's up", "good morning",
    "good evening", "good afternoon", "good night", "bye", "goodbye", "see you", "gm", "gn",
    "hi there", "hello there", "hey there", "howdy", "greetings",
}  # fmt: skip
# words that carry no topic: a message made only of these (and stopwords) is noise
_FILLER = {
    "test", "testing", "tests", "ping", "pong", "hmm", "hm", "um", "uh", "asdf", "foo", "bar",
    "bot", "newsdesk", "pleas", "question", "answer", "someth", "anyth", "thing", "stuff",
    "tell", "say", "know", "ask", "lol", "what", "who", "whom", "whose", "when", "where", "why",
    "how", "which", "whi", "can", "could", "would", "should", "may", "might", "must", "shall",
    "will", "yes", "no", "ok", "okay", "hey", "hi", "hello", "thank", "thx", "pls", "plz",
}  # fmt: skip
_PUNCT = re.compile(r"[^\w\s']+")
_MENTION = re.compile(r"<[@#][!&]?\d+>")


def normalise(text: str) -> str:
    text = _MENTION.sub(" ", text or "")
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def classify(text: str) -> Kind | None:
    """The kind of small talk ``text`` is, or None for a real question."""
    if len(text or "") > 200:  # a long message is a question (or too long: said elsewhere)
        return None
    t = normalise(text)
    if not t:
        return "noise"
    for kind, phrases in (("help", _HELP), ("thanks", _THANKS), ("greeting", _GREETING)):
        if t in phrases:
            return kind  # type: ignore[return-value]
    words = t.split()
    if len(words) <= 4 and (words[0] in _GREETING or " ".join(words[:2]) in _GREETING):
        rest = " ".join(words[1:] if words[0] in _GREETING else words[2:])
        if not rest or rest in _THANKS or not _content(rest):
            return "greeting"
    if not _content(t):
        return "noise"
    return None


def _content(text: str) -> list[str]:
    """Stemmed content terms that can name a topic (not bare numbers, not fillers)."""
    terms = tokenize([text])[0]
    return [t for t in terms if not t.isdigit() and t not in _FILLER and len(t) > 1]


HELP_TEXT = (
    "Ask me a question about the indexed articles, in plain words, and I answer with the "
    "exact sentence from an article and its source. For example: “What did Ma say about "
    "Apple Pay?” or “When did the 1973 oil crisis begin?”. If no article answers it, "
    "I say so and suggest the closest articles."
)

REPLIES: dict[str, str] = {
    "help": HELP_TEXT,
    "thanks": "You're welcome. Ask me anything about the indexed articles.",
    "greeting": "Hello! Ask me a question about the indexed articles.",
    "noise": "That doesn't look like a question. Ask me something about the indexed articles.",
}
