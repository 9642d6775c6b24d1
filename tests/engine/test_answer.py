"""Sentence selection, confidence and abstention, on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.embedding.hashing import HashEmbedder
from index.models import Document
from index.pipeline import Pipeline
from index.search.answer import AnswerWeights, confidence, select
from index.tools.evaluate import run_eval
from tests.fakes.hits import EMB, idf, lookup_for, make_hit

pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite


TEXT = (
    "The harbour was busy on Monday. The mayor opened the new bridge at noon. "
    "Fishermen sold their catch at dawn. The bridge cost four million euros."
)


def test_selects_the_sentence_that_answers() -> None:
    h = make_hit(TEXT, start=100)
    q = "How much did the bridge cost?"
    quote, cand = select(q, [h], EMB.embed_query(q), lookup_for([h]), idf)
    assert quote is not None and cand is not None
    assert quote.text == "The bridge cost four million euros."
    # offsets are absolute into the article
    assert (quote.start, quote.end) == (100 + TEXT.index("The bridge cost"), 100 + len(TEXT))


def test_lexical_fallback_without_stored_vectors() -> None:
    h = make_hit(TEXT)
    quote, _ = select("When did fishermen sell their catch?", [h], None, None, idf)
    assert quote is not None and quote.text == "Fishermen sold their catch at dawn."


def test_two_adjacent_sentences_when_both_are_needed() -> None:
    text = "Anna Berg founded the company. She was born in Oslo in 1970. Sales doubled later."
    h = make_hit(text)
    q = "Which company founder was born in Oslo?"
    quote, _ = select(q, [h], None, None, idf, weights=AnswerWeights(dense=0.0, lexical=1.0))
    assert quote is not None
    assert quote.text == "Anna Berg founded the company. She was born in Oslo in 1970."


def test_pair_respects_max_chars() -> None:
    text = "Anna Berg founded the company. She was born in Oslo in 1970."
    quote, _ = select(
        "Which company founder was born in Oslo?", [make_hit(text)], None, None, idf,
        max_chars=40, weights=AnswerWeights(dense=0.0, lexical=1.0),
    )  # fmt: skip
    assert quote is not None and len(quote.text) <= 40


def test_overlong_sentence_is_cut_verbatim() -> None:
    text = "Bridge " + "word " * 200 + "end."
    quote, _ = select("bridge", [make_hit(text)], None, None, idf, max_chars=100)
    assert quote is not None
    assert len(quote.text) <= 100 and text.startswith(quote.text)
    assert quote.end - quote.start == len(quote.text)


def test_no_candidates() -> None:
    assert select("anything", [], None, None, idf) == (None, None)


def test_confidence_separates_related_from_unrelated() -> None:
    h = make_hit(TEXT, title="Harbour news")
    related = confidence("How much did the bridge cost?", [h], [0.8], idf)
    unrelated = confidence("Who won the chess championship?", [h], [0.1], idf)
    assert related > 0.6 > 0.2 > unrelated
    assert confidence("x", [], [], idf) == 0.0


def test_pipeline_abstains_with_suggestions(pipeline: Pipeline) -> None:
    pipeline.add_documents(
        [
            Document("/a/bridge.txt", "Harbour news", TEXT),
            Document("/a/chess.txt", "Chess final", "The champion won the final in Madrid."),
        ]
    )
    ans = pipeline.ask("How much did the bridge cost?")
    assert ans.quote is not None and "four million" in ans.quote.text
    assert ans.confidence >= pipeline.settings.answer.min_confidence
    ans = pipeline.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert ans.quote is None and ans.abstained
    assert ans.suggestions and set(ans.suggestions) <= {"Harbour news", "Chess final"}
    assert ans.to_json()["answer"] is None


def test_eval_on_a_tiny_corpus(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "bridge.txt").write_text("Harbour news\n\n" + TEXT)
    (corpus / "chess.txt").write_text(
        "Chess final\n\nThe champion won the final in Madrid. Her opponent resigned on move 61."
    )
    qa = tmp_path / "qa.jsonl"
    rows = [
        {
            "question": "How much did the bridge cost?",
            "answers": ["four million"],
            "article": "bridge",
        },
        {
            "question": "On which move did the opponent resign?",
            "answers": ["61"],
            "article": "chess",
        },
    ]
    qa.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = run_eval(settings, corpus, qa, k=3, leave_out=True, embedder=HashEmbedder())
    assert res.questions == 2 and res.articles == 2
    assert res.hit_at["1"] == 1.0 and res.mrr_at_10 == 1.0
    assert res.answer_accuracy == 1.0 and res.answered_share == 1.0
    # with its article left out, each question has nothing to go on
    assert res.leave_out_abstained == 1.0
    assert res.index_seconds > 0 and res.latency_ms_p50 > 0


@pytest.mark.parametrize("bad", ['{"question": "q"}', "not json"])
def test_eval_rejects_bad_qa_files(tmp_path: Path, settings, bad: str) -> None:  # type: ignore[no-untyped-def]
    from index.errors import SourceError

    qa = tmp_path / "qa.jsonl"
    qa.write_text(bad + "\n")
    with pytest.raises(SourceError, match="line 1"):
        run_eval(settings, tmp_path, qa, embedder=HashEmbedder())
