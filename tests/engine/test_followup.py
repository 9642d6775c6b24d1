"""Follow-ups in a thread (index.search.followup): when a question needs the thread's earlier
questions, which words it borrows, and what that does to retrieval (hash embedder)."""

from __future__ import annotations

import pytest

from index.pipeline import Pipeline
from index.search import answer, followup

MA = "What did Ma say about Apple Pay?"


@pytest.mark.parametrize(
    "question",
    [
        "what about Tim Cook?",
        "when was that?",
        "and the price?",
        "What did he say about the iPhone sales?",
        "How about in China?",
        "why?",
        "who said it?",
    ],
)
def test_anaphoric_or_short_follow_ups_need_context(question: str) -> None:
    assert followup.needs_context(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who is Tim Cook?",
        "When did the volcano on Tern erupt?",
        "What prize did the bakery in Lyon win?",
        MA,
    ],
)
def test_self_contained_questions_do_not(question: str) -> None:
    assert not followup.needs_context(question)
    # ... and are asked exactly as written, context or not
    fu = followup.build(question, [MA, "when was that?"])
    assert fu.query == question and fu.based_on is None and fu.borrowed == ()


def test_a_follow_up_borrows_the_salient_terms_of_the_previous_question() -> None:
    fu = followup.build("what about Tim Cook?", [MA])
    assert fu.based_on == MA
    assert fu.borrowed == ("Ma", "Apple", "Pay")  # no "what", "did", "say", "about"
    assert fu.query == "what about Tim Cook Ma Apple Pay?"
    assert answer.question_parts(fu.query) == [fu.query]  # one question, not two


def test_without_context_nothing_is_borrowed() -> None:
    fu = followup.build("when was that?", [])
    assert fu.query == "when was that?" and fu.based_on is None


def test_idf_picks_the_rarest_words_and_keeps_their_order() -> None:
    rare = {"ma": 9.0, "pay": 5.0, "china": 7.0, "appl": 1.0}
    terms = followup.salient_terms(
        "What did Ma say about Apple Pay in China?", lambda t: rare.get(t, 0.5), limit=3
    )
    assert terms == ["Ma", "Pay", "China"]  # Apple is common in this index: left out


def test_a_chain_of_follow_ups_goes_back_to_the_anchor() -> None:
    fu = followup.build("and the price?", [MA, "when was that?"])
    assert fu.based_on == MA  # "when was that?" did not stand on its own
    assert "Apple" in fu.borrowed and "Ma" in fu.borrowed
    # a newer self-contained question replaces the older anchor
    fu = followup.build("when was that?", [MA, "What did the bakery in Lyon win?"])
    assert fu.based_on == "What did the bakery in Lyon win?"
    assert "Lyon" in fu.borrowed and "Ma" not in fu.borrowed


def test_words_the_follow_up_already_has_are_not_borrowed_twice() -> None:
    fu = followup.build("and Apple Pay in China?", [MA])
    assert fu.borrowed == ("Ma",)


CHESS = "Where did the chess champion defend her title?"


@pytest.mark.backends  # the index's idf and retrieval on FAISS and on Milvus Lite
def test_context_changes_what_is_retrieved(bot_pipeline: Pipeline) -> None:
    alone = bot_pipeline.ask("and the prize?")
    follow = bot_pipeline.ask("and the prize?", context=[CHESS])
    assert follow.follows_up == CHESS and alone.follows_up is None
    assert follow.question == "and the prize?"
    assert follow.passages[0].title == "Chess champion keeps her title"
    assert alone.passages[0].title != "Chess champion keeps her title"
    assert any("prize fund" in h.text for h in follow.passages[:2])


@pytest.mark.backends  # the index's idf and retrieval on FAISS and on Milvus Lite
def test_a_contentless_follow_up_is_answered_not_small_talk(bot_pipeline: Pipeline) -> None:
    assert bot_pipeline.ask("when was that?").smalltalk == "noise"
    ans = bot_pipeline.ask("when was that?", context=["When did the volcano on Tern erupt?"])
    assert ans.smalltalk is None and ans.follows_up is not None
    assert ans.passages[0].title == "Volcano erupts on remote island"
    assert ans.to_json()["follows_up"] == "When did the volcano on Tern erupt?"


@pytest.mark.backends  # the index's idf and retrieval on FAISS and on Milvus Lite
def test_a_self_contained_question_in_a_thread_ignores_the_context(bot_pipeline: Pipeline) -> None:
    plain = bot_pipeline.ask("What prize did the bakery in Lyon win?")
    threaded = bot_pipeline.ask("What prize did the bakery in Lyon win?", context=[CHESS])
    assert threaded.follows_up is None and "follows_up" not in threaded.to_json()
    assert [h.chunk_id for h in threaded.passages] == [h.chunk_id for h in plain.passages]
