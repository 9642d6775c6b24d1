"""index/written/verify.py: citations and quotes of a generated answer checked against passages."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from index.written.verify import (
    citation_numbers,
    fallback_reason,
    is_refusal,
    normalise,
    quote_spans,
    segments,
    strip_reasoning,
    verify,
)

MA = (
    "But when Berman asked whether Alibaba would somehow dovetail its Alipay online payments "
    "service with Apple Pay, the new payments service from Tim Cook and company, Ma said he was "
    "“very interested” in such a partnership."
)
FUND = "Ma said Alibaba would invest in Silicon Valley start-ups — “a lot of them,” he added."
PASSAGES = [MA, FUND]
TITLES = ["Alibaba Founder Jack Ma Vows To Pour Cash Into Silicon Valley"] * 2


def kinds(v) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.kind for r in v.removed]


# -- parsing ----------------------------------------------------------------------------------


def test_citation_numbers_lists_and_ranges() -> None:
    assert citation_numbers("1") == [1]
    assert citation_numbers("1, 3") == [1, 3]
    assert citation_numbers("2-4") == [2, 3, 4]
    assert citation_numbers("1; 2 and 5") == [1, 2, 5]
    assert citation_numbers("3, 3") == [3]


def test_quote_spans_straight_curly_guillemets_and_unclosed() -> None:
    text = 'He said "one" and “two” and «three» and "open'
    assert [text[a:b] for a, b in quote_spans(text)] == ["one", "two", "three", "open"]
    assert quote_spans("Ma's plan, the company's 'idea'") == []  # apostrophes are not quotes


def test_normalise_whitespace_quotes_dashes_and_unicode_forms() -> None:
    assert normalise("he was\n “very   interested”") == 'he was "very interested"'
    assert normalise("Ma’s ‘plan’") == normalise("Ma's 'plan'")
    assert normalise("start–ups — a lot") == "start-ups - a lot"
    assert normalise("wait…") == "wait..."
    assert normalise("a\u00a0b") == "a b"


def test_segments_keep_quotations_whole_and_trailing_citations_with_their_sentence() -> None:
    line = 'He said "It is big. It is fast." Then he left. [2] Later he came back [1].'
    parts = [line[a:b] for a, b in segments(line)]
    assert parts == [
        'He said "It is big. It is fast."',
        "Then he left. [2]",
        "Later he came back [1].",
    ]


def test_refusal_and_reasoning_blocks() -> None:
    assert is_refusal("NOT IN THE ARTICLES")
    assert is_refusal("  not in the articles.")
    assert not is_refusal("The articles do not say, but [1] suggests it.")
    assert strip_reasoning("<think>the user wants...</think>\nMa said [1].") == "Ma said [1]."
    assert strip_reasoning("<think>still thinking") == ""


# -- verification -------------------------------------------------------------------------------


def test_faithful_answer_is_kept_whole() -> None:
    text = (
        'Ma said he was "very interested" in a partnership with Apple Pay [1]. '
        "He also plans to invest in start-ups [2]."
    )
    v = verify(text, PASSAGES, TITLES)
    assert v.text == text
    assert v.cited == [1, 2] and v.removed == [] and (v.sentences, v.kept) == (2, 2)
    assert fallback_reason(v) is None


def test_quote_matches_after_whitespace_and_quote_normalisation() -> None:
    # straight quotes for curly ones, a line break inside, a comma moved inside the quote
    text = (
        'Ma said he was "very\n interested" in such a partnership [1]. He said "a lot of them," [2]'
    )
    v = verify(text, PASSAGES, TITLES)
    assert "very" in v.text and "a lot of them" in v.text
    assert v.removed == [] and fallback_reason(v) is None


def test_fabricated_quote_removes_its_sentence() -> None:
    text = 'Ma said he was "thrilled to bits" about Apple Pay [1]. He will invest in start-ups [2].'
    v = verify(text, PASSAGES, TITLES)
    assert v.text == "He will invest in start-ups [2]."
    assert kinds(v) == ["quote", "sentence"]
    assert v.removed[0].text == "thrilled to bits"
    assert "[1]" in v.removed[0].reason
    assert fallback_reason(v) is None  # half of it is left, with a citation


def test_quote_must_be_in_the_cited_passage_not_just_any() -> None:
    # the words exist, but in passage 2, while the sentence cites passage 1
    v = verify('He said "a lot of them" [1].', PASSAGES, TITLES)
    assert v.text == "" and kinds(v) == ["quote", "sentence"]
    assert fallback_reason(v) is not None


def test_quote_without_a_citation_is_checked_against_all_and_gets_one() -> None:
    v = verify('He called it "a lot of them".', PASSAGES, TITLES)
    assert v.text == 'He called it "a lot of them" [2].'
    assert v.cited == [2]


def test_citation_to_a_missing_passage_is_removed() -> None:
    v = verify("Ma likes Apple Pay [1, 7]. He will invest [2].", PASSAGES, TITLES)
    assert v.text == "Ma likes Apple Pay [1]. He will invest [2]."
    assert kinds(v) == ["citation"] and v.removed[0].text == "[7]"
    assert "no passage [7]" in v.removed[0].reason


def test_sentence_citing_only_missing_passages_is_removed() -> None:
    v = verify("Ma bought Apple [9]. He will invest [2].", PASSAGES, TITLES)
    assert v.text == "He will invest [2]."
    assert kinds(v) == ["citation", "sentence"]
    assert v.cited == [2]
    v = verify("Ma bought Apple [0].", PASSAGES, TITLES)
    assert v.text == "" and fallback_reason(v) is not None


def test_fallback_rules() -> None:
    assert "no answer" in (fallback_reason(verify("NOT IN THE ARTICLES", PASSAGES)) or "")
    assert fallback_reason(verify("", PASSAGES)) is not None
    uncited = verify("Ma is interested in payments.", PASSAGES)
    assert uncited.text and fallback_reason(uncited) == "the generated answer cites no passage"
    mostly_bad = verify(
        'A "made up" [1]. B "also made up" [1]. He will invest [2].', PASSAGES, TITLES
    )
    assert mostly_bad.kept == 1 and mostly_bad.sentences == 3
    assert "2 of 3" in (fallback_reason(mostly_bad) or "")


def test_lists_and_paragraphs_survive_and_a_bad_item_goes() -> None:
    text = (
        '- Ma is "very interested" [1].\n- He said "we will buy Apple" [2].\n\nHe will invest [2].'
    )
    v = verify(text, PASSAGES, TITLES)
    assert v.text == '- Ma is "very interested" [1].\n\nHe will invest [2].'


def test_numbered_list_marks_are_not_sentences() -> None:
    v = verify("1. Ma is interested [1].\n2. He will invest [2].", PASSAGES, TITLES)
    assert v.text == "1. Ma is interested [1].\n2. He will invest [2]."
    assert v.sentences == 2


def test_partial_answer_leaves_out_the_last_sentence_and_open_quotes() -> None:
    v = verify('Ma was "very interested" [1]. He said "a lot', PASSAGES, TITLES, final=False)
    assert v.text == 'Ma was "very interested" [1].'
    v = verify('He said "a lot of', PASSAGES, TITLES, final=False)
    assert v.text == ""
    # a sentence waits for the citation that may follow its full stop
    v = verify("He will invest.", PASSAGES, TITLES, final=False)
    assert v.text == ""


def test_the_title_counts_as_part_of_its_passage() -> None:
    v = verify('The story is titled "Alibaba Founder Jack Ma Vows" [1].', PASSAGES, TITLES)
    assert v.removed == [] and v.cited == [1]


# -- property: nothing unverifiable survives -----------------------------------------------------

WORDS = MA.split() + FUND.split() + ["invented", "claims", "Apple", "said", "never"]
WORDS += ['"', "“", "”", "[1]", "[3]", "[2, 4]", "\n", "\n\n", "\n- ", "\n1. ", "<think>", "."]
sentence = st.builds(
    lambda pre, quote, cites, end: (
        " ".join(pre)
        + (f' "{" ".join(quote)}"' if quote else "")
        + "".join(f" [{c}]" for c in cites)
        + end
    ),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6),
    st.one_of(
        st.just([]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
        st.integers(0, 20).map(lambda i: MA.split()[i : i + 4]),
    ),
    st.lists(st.integers(0, 5), max_size=2),
    st.sampled_from([".", "!", "?", ""]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(sentence, min_size=1, max_size=5), st.booleans())
def test_kept_text_has_only_valid_citations_and_verbatim_quotes(
    sentences: list[str], final: bool
) -> None:
    v = verify(" ".join(sentences), PASSAGES, TITLES, final=final)
    for group in re.findall(r"\[([^\]]*)\]", v.text):
        assert all(1 <= n <= len(PASSAGES) for n in citation_numbers(group)), v.text
    corpus = normalise(" ".join(f"{t}\n{p}" for t, p in zip(TITLES, PASSAGES, strict=True)))
    for a, b in quote_spans(v.text):
        span = normalise(v.text[a:b]).strip(" .,;:!?\"'")
        assert span in corpus, (span, v.text)
    assert set(v.cited) <= {1, 2}
    assert v.kept <= v.sentences
