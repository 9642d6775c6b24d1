"""Privacy over every table of community.sqlite3 (index/community/forum.py retention and
forget, index/community/privacy.py): thread questions and forum post claims are pruned and
forgotten, a claim outlives the bot's catch-up window, and no forum table names a user."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index.community import privacy
from index.community.db import DB_NAME
from index.community.feedback import FeedbackStore
from index.community.forum import CLAIM_KEEP_DAYS, ForumStore
from index.config import PrivacySettings
from index.errors import NewsdeskError
from index.models import Answer

DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def forum_at(path: Path, clock: Clock, **settings: object) -> ForumStore:
    return ForumStore(path, PrivacySettings(**settings), clock=clock)  # type: ignore[arg-type]


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path / DB_NAME) as c:
        return int(c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_retention_prunes_thread_questions_at_a_write_and_on_open(tmp_path: Path) -> None:
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=30)
    store.remember(1, "Who won the bread prize?")
    clock.now += 10 * DAY
    store.remember(2, "When did lava reach the sea?")
    clock.now += 21 * DAY  # the first is 31 days old, the second 21
    store.remember(3, "Who is the mayor?")  # a write prunes
    assert store.questions(1) == [] and store.threads() == {2, 3}
    store.close()
    clock.now += 10 * DAY  # the second is 31 days old
    reopened = forum_at(tmp_path, clock, retention_days=30)
    assert reopened.threads() == {3}  # opening prunes too (a read opens the file)
    reopened.close()


def test_retention_zero_keeps_thread_questions_and_claims(tmp_path: Path) -> None:
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=0)
    store.remember(1, "old question")
    store.claim_post(10, forum_id=9)
    clock.now += 3650 * DAY
    store.remember(2, "new question")
    assert store.threads() == {1, 2} and store.claimed([10]) == {10}
    store.close()


def test_a_young_claim_outlives_a_short_retention(tmp_path: Path) -> None:
    """retention_days = 1 deletes a day-old question but keeps the post's claim for
    CLAIM_KEEP_DAYS (the bot catches up on posts of the last 24 hours after a restart)."""
    assert CLAIM_KEEP_DAYS * 24 > 24  # longer than bot.threads.CATCH_UP_HOURS
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=1)
    assert store.claim_post(10, forum_id=9)
    store.remember(10, "the post's question")
    clock.now += 1.5 * DAY
    store.remember(11, "a later question")  # a write prunes
    assert store.questions(10) == []
    assert store.claimed([10]) == {10} and not store.claim_post(10, forum_id=9)
    store.close()
    clock.now += 0.4 * DAY  # 1.9 days: a new process, still claimed
    again = forum_at(tmp_path, clock, retention_days=1)
    assert not again.claim_post(10, forum_id=9)
    assert again.post_outcome(10) == "pending"
    clock.now += 0.2 * DAY  # 2.1 days: past both the retention and the floor
    again.remember(12, "much later")
    assert again.claimed([10]) == set()
    again.close()


def test_a_long_retention_keeps_claims_as_long(tmp_path: Path) -> None:
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=30)
    store.claim_post(10, forum_id=9)
    clock.now += 29 * DAY
    store.remember(1, "a write")
    assert store.claimed([10]) == {10}
    clock.now += 2 * DAY
    store.remember(1, "another write")
    assert store.claimed([10]) == set()
    store.close()


def test_forget_before_deletes_questions_and_old_claims(tmp_path: Path) -> None:
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=0)
    store.claim_post(10, forum_id=9)
    store.remember(10, "first")
    store.remember(10, "second")
    clock.now += 5 * DAY
    store.claim_post(11, forum_id=9)
    store.remember(11, "recent")
    clock.now += 1 * DAY  # claim 10 is 6 days old, claim 11 one day
    report = store.forget(clock.now + DAY)  # a date after everything
    assert (report.thread_questions, report.forum_posts, report.forum_posts_kept) == (3, 1, 1)
    assert store.threads() == set() and store.claimed([10, 11]) == {11}
    report = store.forget(clock.now - 2 * DAY)  # nothing left before that
    assert (report.thread_questions, report.forum_posts, report.forum_posts_kept) == (0, 0, 0)
    store.close()


def test_forget_without_a_file_creates_none(tmp_path: Path) -> None:
    report = forum_at(tmp_path, Clock()).forget(1e12)
    assert report.thread_questions == report.forum_posts == 0
    assert not (tmp_path / DB_NAME).exists()
    assert privacy.forget(tmp_path, PrivacySettings(), before=1e12).to_json() == {
        "answers": 0,
        "votes": 0,
        "thread_questions": 0,
        "forum_posts": 0,
        "forum_posts_kept": 0,
    }
    assert not (tmp_path / DB_NAME).exists()


def test_forum_tables_store_no_user_id(tmp_path: Path) -> None:
    store = forum_at(tmp_path, Clock())
    store.remember(1, "q")
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as c:
        for table, expected in (
            ("forum_posts", {"thread_id", "forum_id", "claimed_at", "outcome", "answer_id"}),
            ("thread_questions", {"thread_id", "seq", "question", "asked_at"}),
        ):
            columns = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
            assert columns == expected  # a new column: update privacy.py and README "Privacy"


def test_an_existing_file_gets_the_time_indexes(tmp_path: Path) -> None:
    """A community file written before retention applied to the forum tables: opening it adds
    the indexes and prunes what is past the retention."""
    with sqlite3.connect(tmp_path / DB_NAME) as c:
        c.executescript(
            "CREATE TABLE forum_posts (thread_id INTEGER PRIMARY KEY, forum_id INTEGER NOT NULL,"
            " claimed_at REAL NOT NULL, outcome TEXT NOT NULL DEFAULT 'pending',"
            " answer_id INTEGER);"
            "CREATE TABLE thread_questions (thread_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
            " question TEXT NOT NULL, asked_at REAL NOT NULL, PRIMARY KEY (thread_id, seq));"
        )
        c.execute("INSERT INTO forum_posts (thread_id, forum_id, claimed_at) VALUES (1, 9, 0)")
        c.execute("INSERT INTO thread_questions VALUES (1, 1, 'old', 0)")
    clock = Clock()
    store = forum_at(tmp_path, clock, retention_days=90)
    assert store.threads() == set() and store.claimed([1]) == set()
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"forum_posts_time", "thread_questions_time"} <= names


def _answer(question: str) -> Answer:
    ans = Answer(question, None, [], confidence=0.1)
    ans.query_vector = np.ones(4, dtype=np.float32) / 2
    return ans


def _community(tmp_path: Path, clock: Clock) -> None:
    """Two logged answers (one voted on by user 5), three thread questions, two claims (one
    a day old), all made 10 days before ``clock``."""
    settings = PrivacySettings(retention_days=0)
    clock.now -= 10 * DAY
    feedback = FeedbackStore(tmp_path, settings, clock=clock)
    first = feedback.log_answer(_answer("first"), channel_id=1)
    feedback.log_answer(_answer("second"), channel_id=1)
    feedback.vote(first or 0, 5, -1)
    forum = ForumStore(tmp_path, settings, clock=clock)
    forum.claim_post(10, forum_id=9)
    forum.remember(10, "first")
    forum.remember(11, "second")
    forum.remember(11, "third")
    clock.now += 9 * DAY
    forum.claim_post(12, forum_id=9)
    clock.now += 1 * DAY
    feedback.close()
    forum.close()


def test_privacy_forget_before_covers_every_table(tmp_path: Path) -> None:
    clock = Clock()
    _community(tmp_path, clock)
    report = privacy.forget(
        tmp_path, PrivacySettings(retention_days=0), before=clock.now + 1, clock=clock
    )
    assert report.to_json() == {
        "answers": 2,
        "votes": 1,
        "thread_questions": 3,
        "forum_posts": 1,
        "forum_posts_kept": 1,
    }
    assert report.summary() == (
        "deleted 2 logged answers, 1 vote, 3 thread questions and 1 forum post claim "
        f"(kept 1 claim of the last {CLAIM_KEEP_DAYS} days, so those posts are not answered "
        "again)"
    )
    for table, left in (
        ("feedback_answers", 0),
        ("feedback_votes", 0),
        ("thread_questions", 0),
        ("forum_posts", 1),
    ):
        assert rows(tmp_path, table) == left, table


def test_privacy_forget_user_leaves_thread_questions(tmp_path: Path) -> None:
    clock = Clock()
    _community(tmp_path, clock)
    for before in (None, clock.now + 1):
        report = privacy.forget(
            tmp_path, PrivacySettings(retention_days=0), user_id=5, before=before, clock=clock
        )
        assert (report.thread_questions, report.forum_posts) == (0, 0)
        assert "thread questions and forum post claims never are" in report.summary()
        assert rows(tmp_path, "thread_questions") == 3 and rows(tmp_path, "forum_posts") == 2
    assert rows(tmp_path, "feedback_votes") == 0 and rows(tmp_path, "feedback_answers") == 2


def test_forget_user_summary_with_user_ids_stored(tmp_path: Path) -> None:
    clock = Clock()
    _community(tmp_path, clock)
    report = privacy.forget(
        tmp_path, PrivacySettings(retention_days=0, store_user_ids=True), user_id=5, clock=clock
    )
    assert report.summary() == (
        "deleted 0 logged answers and 1 vote (thread questions and forum post claims are not "
        "linked to users: --before DATE deletes them)"
    )


def test_privacy_forget_needs_a_user_or_a_date(tmp_path: Path) -> None:
    with pytest.raises(NewsdeskError, match="say what to forget"):
        privacy.forget(tmp_path, PrivacySettings())
