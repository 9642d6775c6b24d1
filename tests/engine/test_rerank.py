"""The learned answer-sentence scorer: shortlist, re-ordering, captions, quote boundaries,
multi-part questions, small talk and typo tolerance (pure, with a fake scorer), and the
shipped ONNX model itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.config import Settings
from index.models import Hit
from index.search.answer import question_parts, rerank_select, second_part, select, shortlist
from index.search.rerank import DEFAULT_DIR, OnnxReranker, pair_text, read_info
from index.search.smalltalk import classify
from index.storage.lexical import LexicalIndex
from tests.fakes.hits import EMB, idf, lookup_for, make_hit


class KeywordScorer:
    """A fake cross-encoder: +4 per keyword of the question's last word found in the text."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers  # question -> a phrase the right sentence contains
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append((question, list(texts)))
        want = self.answers.get(question, "\0")
        return np.array([4.0 if want in t else -4.0 for t in texts], dtype=np.float32)


TEXT = (
    "The harbour was busy on Monday. The mayor opened the new bridge at noon. "
    "Fishermen sold their catch at dawn. The bridge cost four million euros."
)


def ask(q: str, hits: list[Hit], scorer: KeywordScorer, **kw):  # type: ignore[no-untyped-def]
    return rerank_select(q, hits, EMB.embed_query(q), lookup_for(hits), idf, scorer, **kw)


def test_the_scorer_decides_and_its_probability_is_the_confidence() -> None:
    h = make_hit(TEXT, start=100)
    q = "Who opened the bridge?"
    r = ask(q, [h], KeywordScorer({q: "mayor"}))
    assert r.quote is not None
    assert r.quote.text == "The mayor opened the new bridge at noon."
    assert r.quote.start == 100 + TEXT.index("The mayor")
    assert r.confidence == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-4)


def test_low_scores_give_low_confidence() -> None:
    h = make_hit(TEXT)
    r = ask("Who won the election?", [h], KeywordScorer({}))
    assert r.confidence < 0.05


def test_the_scorer_reads_title_sentence_and_previous_sentence() -> None:
    h = make_hit(TEXT, title="Harbour news")
    q = "What did the bridge cost?"
    s = KeywordScorer({q: "four million"})
    ask(q, [h], s)
    texts = s.calls[0][1]
    assert pair_text("Harbour news", "The bridge cost four million euros.",
                     "Fishermen sold their catch at dawn.") in texts  # fmt: skip
    # the first sentence of a paragraph has no previous sentence
    assert pair_text("Harbour news", "The harbour was busy on Monday.") in texts


def test_no_context_across_a_paragraph_break() -> None:
    text = "Ma said. \n\nAs he interviewed Ma on a stage, Berman asked about eBay."
    h = make_hit(text)
    q = "Who interviewed Ma?"
    s = KeywordScorer({q: "Berman"})
    r = ask(q, [h], s)
    assert r.quote is not None and r.quote.text.startswith("As he interviewed")
    assert (
        pair_text("T", "As he interviewed Ma on a stage, Berman asked about eBay.") in s.calls[0][1]
    )


def test_passages_are_reordered_by_their_best_sentence() -> None:
    a = make_hit("Cats sleep a lot. They purr.", cid=1, art="a")
    b = make_hit("The bridge cost four million euros.", cid=2, art="b")
    q = "What did the bridge cost?"
    r = ask(q, [a, b], KeywordScorer({q: "four million"}))
    assert r.order[0] == 1
    assert sorted(r.order) == [0, 1]


def test_a_caption_never_wins_over_a_sentence() -> None:
    text = "Jack Ma.\n\nAlibaba founder Jack Ma says his company will invest more in the U.S."
    h = make_hit(text)
    q = "who is jack ma"
    r = ask(q, [h], KeywordScorer({q: "Jack Ma"}))  # both contain it: the caption is not read
    assert r.quote is not None and r.quote.text.startswith("Alibaba founder")


def test_shortlist_keeps_the_best_of_every_passage() -> None:
    hits = [make_hit(f"Sentence number {i} is here. Another one {i} follows.", cid=i, art=str(i))
            for i in range(6)]  # fmt: skip
    from index.search.answer import candidates

    cands = candidates(hits, 6, lookup_for(hits), EMB.embed_query("x"))
    for i, c in enumerate(cands):
        c.score = -i
    keep = shortlist(cands, 2)
    assert {cands[i].hit_index for i in keep} == set(range(6))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["Ma said.", "It rained.", "He left early.", "Yes."]),
                 min_size=1, max_size=4),
        min_size=1, max_size=4,
    ),
    st.sampled_from(["\n\n", "\n\n\n", "\n \n"]),
)  # fmt: skip
def test_a_quote_never_spans_a_blank_line(paras: list[list[str]], sep: str) -> None:
    text = sep.join(" ".join(p) for p in paras)
    h = make_hit(text)
    for q in ("Who said it?", "Did it rain and did he leave?"):
        quote, _ = select(q, [h], EMB.embed_query(q), lookup_for([h]), idf)
        assert quote is not None
        assert "\n\n" not in quote.text and "\n \n" not in quote.text
        for ratio in (1.0, 0.0):  # one sentence; any scored neighbour may join
            r = ask(q, [h], KeywordScorer({q: "rained"}), pair_ratio=ratio)
            assert r.quote is not None and "\n" not in r.quote.text
            assert r.quote.text == h.text[r.quote.start - h.start : r.quote.end - h.start]


class GradedScorer:
    """A fake cross-encoder giving a fixed logit to the texts containing a phrase (-4 else)."""

    def __init__(self, logits: dict[str, float]) -> None:
        self.logits = logits

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        def one(t: str) -> float:
            sentence = t.split(" | ")[1] if " | " in t else t  # not the context sentence
            return max([v for k, v in self.logits.items() if k in sentence], default=-4.0)

        return np.array([one(t) for t in texts], dtype=np.float32)


def _sig(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


@pytest.mark.parametrize(
    ("neighbour", "ratio", "joined"),
    [(1.0, 0.3, True), (-2.0, 0.3, False), (1.0, 1.0, False), (-2.0, 0.1, True)],
)
def test_a_neighbour_the_scorer_rates_close_to_the_best_joins_the_quote(
    neighbour: float, ratio: float, joined: bool
) -> None:
    h = make_hit(TEXT, start=100)
    q = "Who opened the bridge?"
    r = ask(q, [h], GradedScorer({"mayor": 2.0, "harbour": neighbour}), pair_ratio=ratio)
    assert r.quote is not None
    one = "The mayor opened the new bridge at noon."
    two = "The harbour was busy on Monday. " + one
    assert r.quote.text == (two if joined else one)
    assert r.quote.start == 100 + TEXT.index(r.quote.text)
    assert r.quote.end == r.quote.start + len(r.quote.text)
    assert r.confidence == pytest.approx(_sig(2.0), rel=1e-4)  # the best sentence's alone
    assert (r.joined is not None) == joined


def test_the_likelier_neighbour_joins_and_only_within_max_chars_and_the_paragraph() -> None:
    h = make_hit(TEXT)
    q = "Who opened the bridge?"
    mayor = "The mayor opened the new bridge at noon."
    r = ask(q, [h], GradedScorer({"mayor": 2.0, "harbour": 0.0, "Fishermen": 1.0}),
            pair_ratio=0.2)  # fmt: skip
    assert r.quote is not None
    assert r.quote.text == mayor + " Fishermen sold their catch at dawn."
    tight = ask(q, [h], GradedScorer({"mayor": 2.0, "Fishermen": 1.0}), pair_ratio=0.2,
                max_chars=60)  # fmt: skip
    assert tight.quote is not None and tight.quote.text == mayor
    split = make_hit("The harbour was busy on Monday.\n\nThe mayor opened the new bridge at noon.")
    r2 = ask(q, [split], GradedScorer({"mayor": 2.0, "harbour": 1.9}), pair_ratio=0.0)
    assert r2.quote is not None and r2.quote.text == mayor


def test_question_parts() -> None:
    assert question_parts("When did the embargo start and when did it end?") == [
        "When did the embargo start?",
        "when did it end?",
    ]
    assert question_parts("Who was Tom and Jerry's creator?") == [
        "Who was Tom and Jerry's creator?"
    ]
    assert question_parts("What did Ma say?") == ["What did Ma say?"]
    assert len(question_parts("Who won the final? Where was it played?")) == 2


def test_multi_part_question_quotes_two_places() -> None:
    text = (
        "The embargo began in October 1973.\n\nPrices rose sharply in the winter.\n\n"
        "The embargo was lifted in March 1974."
    )
    h = make_hit(text)
    q = "When did the embargo start and when did it end?"
    answers = {q: "began", "When did the embargo start?": "began", "when did it end?": "lifted"}
    s = KeywordScorer(answers)
    r = ask(q, [h], s)
    assert r.quote is not None and "began" in r.quote.text
    more = second_part(q, [h], r, s, 400)
    assert [m.text for m, _p in more] == ["The embargo was lifted in March 1974."]


def test_a_part_answered_by_the_joined_neighbour_is_not_quoted_again() -> None:
    text = "The embargo began in October 1973. It was lifted in March 1974."
    h = make_hit(text)
    q = "When did the embargo start and when did it end?"
    s = GradedScorer({"began": 2.0, "lifted": 1.5})
    r = ask(q, [h], s, pair_ratio=0.3)
    assert r.quote is not None and r.quote.text == text
    assert second_part(q, [h], r, s, 400) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("help", "help"), ("Help!", "help"), ("<@123> help", "help"), ("thanks", "thanks"),
        ("Thank you!", "thanks"), ("good bot", "thanks"), ("hi", "greeting"),
        ("hello there", "greeting"), ("42", "noise"), ("what", "noise"), ("test", "noise"),
        ("???", "noise"), ("", "noise"),
        ("who is jack ma", None), ("Apollo", None), ("What did Ma say about Apple Pay?", None),
        ("hi, who is jack ma?", None), ("Laguna Beach", None),
    ],
)  # fmt: skip
def test_smalltalk(text: str, kind: str | None) -> None:
    assert classify(text) == kind


def test_misspelt_query_terms_are_corrected_against_the_vocabulary() -> None:
    texts = [
        "Apollo 11 landed on the Moon in July 1969.",
        "The steam engine used atmospheric pressure.",
        "Jacksonville is the largest city in Florida.",
    ]
    lex = LexicalIndex.build([1, 2, 3], texts)
    assert lex.search("When did Apolo 11 land on the mooon", 3)[0][0] == 1
    assert lex.search("atmosferic engin", 3)[0][0] == 2
    assert lex.correct("mooon") == "moon"
    assert lex.correct("zzzzzz") is None
    assert lex.correct("moo") is None  # too short to guess


# -- the shipped model ---------------------------------------------------------------------------


def test_shipped_model_is_small_int8_and_has_a_card() -> None:
    files = {p.name for p in DEFAULT_DIR.iterdir()}
    assert {"model.onnx", "tokenizer.json", "reranker.json", "MODEL_CARD.md"} <= files
    assert (DEFAULT_DIR / "model.onnx").stat().st_size <= 30_000_000
    info = read_info(DEFAULT_DIR)
    assert 0.0 < info.threshold < 1.0
    assert info.max_len >= 32


def test_shipped_model_prefers_the_answering_sentence() -> None:
    r = OnnxReranker()
    q = "What did Ma say about Apple Pay?"
    texts = [
        pair_text("Alibaba Founder Jack Ma", "Ma said he was “very interested” in such a "
                  "partnership with Apple Pay."),
        pair_text("Alibaba Founder Jack Ma", "Alibaba became one of the most valuable tech "
                  "companies on the planet."),
        pair_text("Steam engine", "A steam engine is a heat engine that performs work."),
    ]  # fmt: skip
    logits = r.score(q, texts)
    assert logits.shape == (3,)
    assert np.all(np.isfinite(logits))
    assert int(np.argmax(logits)) == 0
    assert logits[2] < logits[0] - 2
    assert r.score(q, []).shape == (0,)


def test_missing_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    from index.errors import ConfigError

    with pytest.raises(ConfigError, match=r"answer\.reranker"):
        OnnxReranker(tmp_path)


def council_meetings(folder: Path, n: int) -> Path:
    """``n`` short look-alike articles (a council meeting each) in ``folder``."""
    folder.mkdir()
    for i in range(n):
        (folder / f"other-{i}.txt").write_text(
            f"Council meeting {i}\n\nThe city council met on Monday {i} to discuss the budget. "
            f"The mayor said the library would open {i} days later. Residents asked about "
            "parking near the harbour and the price of the ferry.",
            encoding="utf-8",
        )
    return folder


def test_verdicts_unchanged_when_unrelated_articles_are_added(
    tmp_path: Path, corpus_dir: Path
) -> None:
    """Hash embedder, shipped reranker: the bakery's questions get the same verdict whether
    the bakery is indexed alone or beside other articles (no corpus statistics decide)."""
    from index.config import load_settings
    from index.pipeline import Pipeline

    questions = [
        "Who is the baker?",
        "Which prize did the bakery in Lyon win?",
        "How old is the sourdough starter?",
        "What is the population of Miami?",
    ]
    others = council_meetings(tmp_path / "others", 12)
    verdicts = []
    for name, sources in (
        ("alone", [corpus_dir / "bakery.html"]),
        ("all", [corpus_dir, others]),
    ):
        s = load_settings(data_dir=tmp_path / name)
        s.answer.min_confidence = None  # the reranker's calibrated threshold
        with Pipeline(s, EMB) as p:
            p.add([str(x) for x in sources])
            verdicts.append([p.ask(q).quote is None for q in questions])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0] is False  # the baker is named: answered in both


def test_combiner_ranks_by_its_features_and_round_trips_through_the_meta() -> None:
    from index.search.answer import FEATURES, Combiner

    meta = {"combiner": {"features": list(FEATURES), "weights": [0, 0, 5, 0, 0, 0], "bias": -1}}
    comb = Combiner.from_meta(meta)
    assert comb is not None and comb([0, 0, 1, 0, 0, 0]) == pytest.approx(4.0)
    assert (
        Combiner.from_meta({"combiner": {"features": ["other"], "weights": [1], "bias": 0}}) is None
    )
    assert Combiner.from_meta({}) is None
    # the fake scorer prefers "mayor"; a combiner on term share prefers the cost sentence
    h = make_hit(TEXT)
    q = "How much did the bridge cost?"
    plain = ask(q, [h], KeywordScorer({q: "mayor"}))
    assert plain.quote is not None and "mayor" in plain.quote.text
    mixed = ask(q, [h], KeywordScorer({q: "mayor"}), combiner=comb, passage_cos=[0.5])
    assert mixed.quote is not None and mixed.quote.text == "The bridge cost four million euros."
    assert len(mixed.scored[0].features) == len(FEATURES)
    assert mixed.scored[0].features[4] == 0.5


def test_spell_rewrites_misspelt_words_for_the_embedder_and_reranker() -> None:
    lex = LexicalIndex.build(
        [1, 2], ["Apollo 11 landed on the Moon in July 1969.", "The atmospheric engine ran."]
    )
    assert lex.spell("When did Apolo 11 land on the mooon?") == (
        "When did Apollo 11 land on the moon?"
    )
    assert lex.spell("Who built the atmosferic engine?") == "Who built the atmospheric engine?"
    # known words, stopwords, numbers and far-off words are left as typed
    for text in ("When did Apollo land?", "What is the 1969 zzzzzz?", "Who is Trump?", "the"):
        assert lex.spell(text) == text
    assert LexicalIndex.build([], []).spell("mooon") == "mooon"  # empty index


def test_real_words_the_articles_lack_are_not_corrected_into_look_alikes() -> None:
    """A tiny corpus: "year" and "mayor" are English words it lacks, not typos of "yeast" and
    "major"; the verdict must not depend on which near-spellings happen to be indexed."""
    lex = LexicalIndex.build([1], ["The yeast rose. The major road closed."])
    assert lex.spell("What year did the mayor say?") == "What year did the mayor say?"
    assert lex.search("What year did the mayor say?", 1) == []
    assert lex.spell("How did the yeest rise?") == "How did the yeast rise?"


def test_ask_embeds_the_corrected_question_and_answers_the_one_asked(
    settings: Settings, corpus_dir: Path
) -> None:
    from index.embedding.hashing import HashEmbedder
    from index.pipeline import Pipeline

    class Recording(HashEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.queries: list[str] = []

        def embed_query(self, text: str) -> np.ndarray:
            self.queries.append(text)
            return super().embed_query(text)

    emb = Recording()
    p = Pipeline(settings, emb)
    try:
        p.add([str(corpus_dir)])
        right = p.ask("Who is the baker in Lyon?")
        typo = p.ask("Who is the bakker in Lyonn?")
        assert emb.queries[-1] == "Who is the baker in Lyon?"
        assert typo.question == "Who is the bakker in Lyonn?"
        assert typo.searched_as == "Who is the baker in Lyon?" and right.searched_as is None
        assert typo.to_json()["searched_as"] == typo.searched_as
        assert "searched_as" not in right.to_json()
        [many] = p.ask_many(["Who is the bakker in Lyonn?"])
        assert not isinstance(many, Exception) and many.searched_as == typo.searched_as
        assert right.quote is not None and typo.quote is not None
        assert typo.quote.text == right.quote.text
        assert [h.chunk_id for h in typo.passages] == [h.chunk_id for h in right.passages]
    finally:
        p.close()


@pytest.mark.parametrize("passages", [2, 6])
def test_the_reranker_reads_the_best_sentence_of_each_of_rerank_passages(
    tmp_path: Path, passages: int
) -> None:
    """answer.rerank_passages: the shortlist holds the best sentence of every one of the top
    N passages and nothing from below them."""
    from index.config import load_settings
    from index.pipeline import Pipeline

    folder = council_meetings(tmp_path / "articles", 12)
    s = load_settings(data_dir=tmp_path / "d")
    s.answer.rerank_passages = passages
    with Pipeline(s, EMB) as p:
        p.add([str(folder)])
        p.ask("When will the library open after the council met?")
        r = p.last_reranked
    assert r is not None
    assert {c.hit_index for c in r.scored} == set(range(passages))
