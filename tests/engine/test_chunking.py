from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunking import (
    all_sentences,
    chunk_text,
    paragraphs,
    sentences,
    whitespace_token_counter,
)


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_sentences_split_on_terminal_punctuation() -> None:
    t = "The cat sat. The dog ran! Did it? Yes."
    assert texts(t, sentences(t)) == ["The cat sat.", "The dog ran!", "Did it?", "Yes."]


def test_sentences_keep_abbreviations_and_initials() -> None:
    t = "Dr. Smith met J. K. Rowling in the U.S. Senate. Then he left at 5 p.m. on Monday."
    got = texts(t, sentences(t))
    assert got == [
        "Dr. Smith met J. K. Rowling in the U.S. Senate.",
        "Then he left at 5 p.m. on Monday.",
    ]


def test_sentences_with_closing_quotes() -> None:
    t = "“We will invest more,” Ma said. “It’s our time.” He smiled."
    assert texts(t, sentences(t)) == [
        "“We will invest more,” Ma said.",
        "“It’s our time.”",
        "He smiled.",
    ]


def test_no_split_before_lowercase() -> None:
    t = "It cost 3.5 billion dollars. e.g. this stays together."
    assert texts(t, sentences(t)) == ["It cost 3.5 billion dollars. e.g. this stays together."]


def test_paragraphs_and_all_sentences_never_cross_blank_lines() -> None:
    t = "Title line\n\nFirst para one. First para two\n\n\n  Second para.  \n"
    assert texts(t, paragraphs(t)) == [
        "Title line",
        "First para one. First para two",
        "Second para.",
    ]
    assert texts(t, all_sentences(t)) == [
        "Title line",
        "First para one.",
        "First para two",
        "Second para.",
    ]


def test_chunks_respect_budget_and_are_verbatim() -> None:
    para = " ".join(f"Sentence number {i} has five words." for i in range(40))
    t = para + "\n\n" + para
    spans = chunk_text(t, whitespace_token_counter, budget=30, overlap=1)
    assert len(spans) > 4
    for a, b in spans:
        assert whitespace_token_counter([t[a:b]])[0] <= 30
        assert t[a:b] == t[a:b].strip()
    # every sentence is in some chunk
    for s, e in all_sentences(t):
        assert any(a <= s and e <= b for a, b in spans)


def test_overlap_repeats_last_sentence_inside_a_paragraph() -> None:
    t = " ".join(f"S{i} a b c d." for i in range(10))  # 6 tokens each
    spans = chunk_text(t, whitespace_token_counter, budget=18, overlap=1)
    first, second = texts(t, spans[:2])
    assert first.split(". ")[-1].rstrip(".") == second.split(". ")[0].rstrip(".")
    no_overlap = chunk_text(t, whitespace_token_counter, budget=18, overlap=0)
    assert len(no_overlap) < len(spans)
    assert all(no_overlap[i][1] < no_overlap[i + 1][0] for i in range(len(no_overlap) - 1))


def test_paragraph_that_fits_starts_a_new_chunk() -> None:
    p1 = "Alpha one two three. Alpha four five six."
    p2 = "Beta one two three four. Beta five six seven eight."
    t = f"{p1}\n\n{p2}"
    spans = chunk_text(t, whitespace_token_counter, budget=12, overlap=1)
    assert texts(t, spans) == [p1, p2]


def test_short_paragraphs_are_packed_together() -> None:
    t = "One.\n\nTwo.\n\nThree."
    assert texts(t, chunk_text(t, whitespace_token_counter, budget=100)) == [t]


def test_overlong_sentence_is_cut_at_whitespace() -> None:
    t = " ".join(["word"] * 50) + "."
    spans = chunk_text(t, whitespace_token_counter, budget=20)
    assert len(spans) == 3
    assert all(whitespace_token_counter([t[a:b]])[0] <= 20 for a, b in spans)


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("   \n\n ", whitespace_token_counter, budget=10) == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=80),
        min_size=0,
        max_size=12,
    ),
    st.integers(min_value=3, max_value=40),
    st.integers(min_value=0, max_value=3),
)
def test_chunk_properties(parts: list[str], budget: int, overlap: int) -> None:
    t = ". ".join(parts)
    spans = chunk_text(t, whitespace_token_counter, budget=budget, overlap=overlap)
    starts = [a for a, _ in spans]
    assert starts == sorted(starts)
    for a, b in spans:
        assert 0 <= a < b <= len(t)
        assert t[a:b].strip() == t[a:b]
    covered = "".join(t[a:b] for a, b in spans)
    for word in t.split():
        assert word in covered
