"""Spelling correction of question words (index/storage/spelling.py) through the BM25 index."""

from __future__ import annotations

import pytest

from index.storage.lexical import LexicalIndex
from index.storage.spelling import keys_neighbour, known_stems, known_words, max_edits

TEXTS = [
    "Oxygen therapy helps the body take up oxygen.",
    "The Conservative party won a victory in the election.",
    "Block II and the black module flew in 1968.",
    "John Sheepshanks gave paintings to the museum.",
    "The boycott began after the criminal acts, starting the protests.",
    "The atmospheric engine pumped water from the mine.",
]


@pytest.fixture(scope="module")
def lex() -> LexicalIndex:
    return LexicalIndex.build(list(range(1, len(TEXTS) + 1)), TEXTS)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("What does oxygen therpay do?", "What does oxygen therapy do?"),  # two letters swapped
        ("Who had a vitory?", "Who had a victory?"),  # an English word, not the stem "victori"
        ("What is one criinal act?", "What is one criminal act?"),
        ("When did Blpck II fly?", "When did Block II fly?"),  # p is next to o, far from a
        ("Was the Blzck module late?", "Was the Black module late?"),  # z is next to a
        ("What did John Sheeshanks give?", "What did John Sheepshanks give?"),  # a name
        ("Who built the atmosferic engine?", "Who built the atmospheric engine?"),
        ("Boycotting: when?", "Boycott: when?"),  # not "Boycottting"
    ],
)
def test_misspelt_words_become_the_word_meant(lex: LexicalIndex, typed: str, meant: str) -> None:
    assert lex.spell(typed) == meant


@pytest.mark.parametrize(
    "text",
    [
        "Who was skirting the law?",  # an inflection of "skirt", not a typo of "starting"
        "What year did the mayor say?",  # English words the articles lack
        "What is the 1968 zzzzzz?",  # numbers and far-off words
        "Who is Trump?",
        "Who won the victory?",  # already right
    ],
)
def test_real_words_and_far_off_words_are_left_as_typed(lex: LexicalIndex, text: str) -> None:
    assert lex.spell(text) == text


def test_bm25_searches_the_corrected_terms(lex: LexicalIndex) -> None:
    assert lex.search("oxygen therpay", 3)[0][0] == 1
    assert lex.search("criinal acts", 3)[0][0] == 5
    assert lex.search("Sheeshanks paintings", 3)[0][0] == 4
    assert lex.search("skirting", 3) == []  # a real word the articles lack matches nothing


def test_keyboard_neighbours() -> None:
    assert keys_neighbour("p", "o") and keys_neighbour("a", "z") and keys_neighbour("g", "t")
    assert not keys_neighbour("p", "a") and not keys_neighbour("a", "a")
    assert not keys_neighbour("1", "q")


def test_the_english_word_list_and_edit_limits() -> None:
    words = known_words()
    assert {"therapy", "victory", "year", "mayor"} <= words
    assert len(words) > 15_000
    from index.storage.lexical import _stemmer

    assert "skirt" in known_stems(_stemmer().stemWord)
    assert [max_edits(w) for w in ("moon", "mooon", "therpay")] == [1, 1, 2]
