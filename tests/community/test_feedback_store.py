"""The feedback log (index/community/feedback.py): answers, one vote per user, retention, forget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index.community.db import DB_NAME
from index.community.feedback import AnswerGoneError, FeedbackStore
from index.config import PrivacySettings
from index.errors import NewsdeskError
from index.models import Answer, Quote
from index.pipeline import Pipeline

DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(question: str = "Who won the bread prize?", *, abstain: bool = False) -> Answer:
    quote = None
    if not abstain:
        quote = Quote(
            "A small bakery in Lyon won the national bread prize on Sunday.",
            "a1",
            "Bakery wins bread prize",
            "bakery.html",
            None,
            10,
            72,
            0.9,
            3,
        )
    ans = Answer(question, quote, [], confidence=0.2 if abstain else 0.8)
    ans.query_vector = np.ones(4, dtype=np.float32) / 2
    return ans


def store_at(tmp_path: Path, clock: Clock | None = None, **privacy: object) -> FeedbackStore:
    return FeedbackStore(tmp_path, PrivacySettings(**privacy), clock=clock or Clock())  # type: ignore[arg-type]


def test_log_keeps_question_quote_offsets_and_vector_but_no_user_id(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    aid = store.log_answer(answer(), channel_id=11, guild_id=22, user_id=33)
    assert aid is not None
    got = store.get(aid)
    assert got is not None
    assert (got.question, got.channel_id, got.guild_id) == ("Who won the bread prize?", 11, 22)
    assert (got.article_id, got.title, got.start, got.end) == (
        "a1",
        "Bakery wins bread prize",
        10,
        72,
    )
    assert got.quote and got.quote.startswith("A small bakery") and not got.abstained
    row = (
        sqlite3.connect(tmp_path / DB_NAME)
        .execute("SELECT user_id, vector FROM feedback_answers")
        .fetchone()
    )
    assert row[0] is None  # no user id unless privacy.store_user_ids
    assert np.frombuffer(row[1], np.float32).tolist() == [0.5] * 4
    store.close()


def test_user_id_kept_only_when_turned_on(tmp_path: Path) -> None:
    store = store_at(tmp_path, store_user_ids=True)
    store.log_answer(answer(), user_id=33)
    store.vote(1, 33, 1)
    c = sqlite3.connect(tmp_path / DB_NAME)
    assert c.execute("SELECT user_id FROM feedback_answers").fetchone()[0] == 33
    assert c.execute("SELECT user_key FROM feedback_votes").fetchone()[0] == "id:33"


def test_smalltalk_is_not_logged(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    assert store.log_answer(Answer("thanks", None, [], smalltalk="thanks")) is None
    assert store.summary().answers == store.summary().abstentions == 0


def test_one_vote_per_user_per_answer(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    aid = store.log_answer(answer())
    assert aid is not None
    assert store.vote(aid, 1, 1) == ("recorded", 1)
    assert store.vote(aid, 1, 1) == ("kept", 1)
    got = store.get(aid)
    assert got is not None and (got.up, got.down) == (1, 0)
    assert store.vote(aid, 2, 1) == ("recorded", 1)
    assert store.vote(aid, 1, -1) == ("changed", -1)
    got = store.get(aid)
    assert got is not None and (got.up, got.down) == (1, 1)
    keys = sqlite3.connect(tmp_path / DB_NAME).execute("SELECT user_key FROM feedback_votes")
    for (key,) in keys:  # a salted hash, never the id
        assert key.startswith("h:") and key[2:] != "1" and len(key) == 34


def test_vote_on_an_unknown_answer_is_refused(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.log_answer(answer())
    with pytest.raises(AnswerGoneError, match="no longer in the feedback log"):
        store.vote(99, 1, 1)
    with pytest.raises(ValueError):
        store.vote(1, 1, 0)


def test_switching_store_user_ids_keeps_one_vote(tmp_path: Path) -> None:
    clock = Clock()
    hashed = store_at(tmp_path, clock)
    hashed.log_answer(answer())
    hashed.vote(1, 7, 1)
    hashed.close()
    plain = store_at(tmp_path, clock, store_user_ids=True)
    assert plain.vote(1, 7, -1) == ("changed", -1)
    got = plain.get(1)
    assert got is not None and (got.up, got.down) == (0, 1)


def test_summary_totals_and_worst_rated(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock)
    good = store.log_answer(answer("good one"))
    bad = store.log_answer(answer("bad one"))
    worse = store.log_answer(answer("worse one"))
    store.log_answer(answer("no idea", abstain=True))
    assert good and bad and worse
    store.vote(good, 1, 1)
    store.vote(good, 2, 1)
    store.vote(bad, 1, -1)
    store.vote(bad, 2, 1)
    store.vote(worse, 1, -1)
    store.vote(worse, 2, -1)
    s = store.summary()
    assert (s.answers, s.abstentions, s.up, s.down) == (3, 1, 3, 3)
    assert s.share_up == 0.5
    assert [a.question for a in s.worst] == ["worse one", "bad one"]
    data = s.to_json()
    assert data["share_up"] == 0.5 and data["worst"][0]["down"] == 2
    assert data["worst"][0]["start"] == 10 and data["worst"][0]["article"] == "a1"
    clock.now += 2 * DAY
    store.log_answer(answer("later", abstain=True))
    recent = store.summary(since=clock.now - DAY)
    assert (recent.answers, recent.abstentions, recent.up, recent.down) == (0, 1, 0, 0)


def test_retention_deletes_old_answers_and_their_votes(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock, retention_days=30)
    old = store.log_answer(answer("old"))
    assert old is not None
    store.vote(old, 1, -1)
    clock.now += 31 * DAY
    new = store.log_answer(answer("new"))  # a write prunes
    assert store.get(old) is None and store.get(new or 0) is not None
    n = sqlite3.connect(tmp_path / DB_NAME).execute("SELECT COUNT(*) FROM feedback_votes")
    assert n.fetchone()[0] == 0
    with pytest.raises(AnswerGoneError):
        store.vote(old, 1, 1)
    store.close()
    clock.now += 31 * DAY
    reopened = store_at(tmp_path, clock, retention_days=30)
    assert reopened.get(new or 0) is None  # opening prunes too


def test_retention_zero_keeps_forever(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock, retention_days=0)
    store.log_answer(answer("old"))
    clock.now += 3650 * DAY
    store.log_answer(answer("new"))
    assert store.summary().answers == 2


def test_forget_a_users_votes_and_questions(tmp_path: Path) -> None:
    for keep_ids in (False, True):
        d = tmp_path / str(keep_ids)
        store = store_at(d, store_user_ids=keep_ids)
        mine = store.log_answer(answer("mine"), user_id=5)
        theirs = store.log_answer(answer("theirs"), user_id=6)
        assert mine and theirs
        store.vote(mine, 6, 1)
        store.vote(theirs, 5, -1)
        store.vote(theirs, 6, 1)
        report = store.forget(user_id=5)
        if keep_ids:  # the question 5 asked, with its vote by 6, and 5's vote
            assert (report.answers, report.votes) == (1, 2)
            assert store.get(mine) is None
        else:  # questions are not linked to anyone: only the vote
            assert (report.answers, report.votes) == (0, 1)
        got = store.get(theirs)
        assert got is not None and (got.up, got.down) == (1, 0)
        assert report.summary().startswith("deleted ")


def test_forget_before_a_date(tmp_path: Path) -> None:
    clock = Clock()
    store = store_at(tmp_path, clock, retention_days=0)
    a = store.log_answer(answer("a"))
    store.vote(a or 0, 1, 1)
    cut = clock.now + 10
    clock.now += 20
    b = store.log_answer(answer("b"))
    store.vote(a or 0, 2, 1)  # a vote after the cut, on an answer before it: goes with it
    store.vote(b or 0, 1, 1)
    report = store.forget(before=cut)
    assert (report.answers, report.votes) == (1, 2)
    assert store.get(a or 0) is None and store.get(b or 0) is not None
    with pytest.raises(NewsdeskError, match="say what to forget"):
        store.forget()


def test_reading_never_creates_the_file(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    assert store.summary().answers == 0 and store.gap_rows() == [] and store.get(1) is None
    assert store.forget(user_id=1).answers == 0
    assert not (tmp_path / DB_NAME).exists()


def test_damaged_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"not a database" * 100)
    store = store_at(tmp_path)
    with pytest.raises(NewsdeskError, match="cannot be read"):
        store.summary()


@pytest.mark.backends
def test_ask_answer_carries_the_query_vector(bot_pipeline: Pipeline, tmp_path: Path) -> None:
    """The vector the log stores is the one retrieval used, so logging embeds nothing."""
    q = "Who won the national bread prize?"
    ans = bot_pipeline.ask(q)
    assert ans.query_vector is not None
    assert np.allclose(ans.query_vector, bot_pipeline.embedder.embed_query(q), atol=1e-6)
    assert "query_vector" not in ans.to_json()
    store = store_at(tmp_path / "log")
    aid = store.log_answer(ans)
    blob = (
        sqlite3.connect(tmp_path / "log" / DB_NAME)
        .execute("SELECT vector FROM feedback_answers WHERE id = ?", (aid,))
        .fetchone()[0]
    )
    assert np.array_equal(np.frombuffer(blob, np.float32), ans.query_vector)
