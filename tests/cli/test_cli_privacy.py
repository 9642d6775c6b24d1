"""`newsdesk forget` over the forum tables: thread questions and forum post claims are deleted
by --before (a claim of the last two days is kept), counted in the summary and --json, and
--user says they are not linked to users."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from index.community.db import DB_NAME
from index.community.forum import ForumStore
from index.config import PrivacySettings
from tests.conftest import Nd

DAY = 86400.0


@pytest.fixture
def threads(tmp_path: Path) -> Path:
    """Three thread questions (10 days old) and two forum post claims: 10 days and 1 day old."""
    data = tmp_path / "data"
    old = ForumStore(data, PrivacySettings(retention_days=0), clock=lambda: time.time() - 10 * DAY)
    old.claim_post(10, forum_id=9)
    old.remember(10, "Who won the bread prize?")
    old.remember(11, "When did lava reach the sea?")
    old.remember(11, "when was that?")
    old.close()
    young = ForumStore(data, PrivacySettings(retention_days=0), clock=lambda: time.time() - DAY)
    young.claim_post(12, forum_id=9)
    young.close()
    return data


def _count(data: Path, table: str) -> int:
    with sqlite3.connect(data / DB_NAME) as c:
        return int(c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_forget_before_deletes_thread_questions_and_old_claims(nd: Nd, threads: Path) -> None:
    r = nd("forget", "--before", "2999-01-01")
    assert r.code == 0, r.err
    assert r.out.strip() == (
        "forget: deleted 0 logged answers, 0 votes, 3 thread questions and 1 forum post claim "
        "(kept 1 claim of the last 2 days, so those posts are not answered again)"
    )
    assert _count(threads, "thread_questions") == 0
    assert _count(threads, "forum_posts") == 1  # the day-old claim
    again = json.loads(nd("forget", "--before", "2999-01-01", "--json").out)
    assert again == {
        "answers": 0,
        "votes": 0,
        "thread_questions": 0,
        "forum_posts": 0,
        "forum_posts_kept": 1,
    }


def test_forget_before_an_earlier_date_keeps_newer_questions(nd: Nd, threads: Path) -> None:
    data = json.loads(nd("forget", "--before", "2000-01-01", "--json").out)
    assert data == {
        "answers": 0,
        "votes": 0,
        "thread_questions": 0,
        "forum_posts": 0,
        "forum_posts_kept": 0,
    }
    assert _count(threads, "thread_questions") == 3 and _count(threads, "forum_posts") == 2


def test_forget_user_leaves_thread_questions_and_says_why(nd: Nd, threads: Path) -> None:
    r = nd("forget", "--user", "5")
    assert r.code == 0, r.err
    assert "thread questions and forum post claims never are: --before DATE deletes them" in r.out
    data = json.loads(nd("forget", "--user", "5", "--before", "2999-01-01", "--json").out)
    assert (data["thread_questions"], data["forum_posts"]) == (0, 0)
    assert _count(threads, "thread_questions") == 3


def test_retention_from_the_config_prunes_thread_questions(
    nd: Nd, threads: Path, tmp_path: Path
) -> None:
    """Opening the file with privacy.retention_days (here through forget) applies it."""
    from tests.fakes.config import HASH_CONFIG

    config = tmp_path / "short.toml"
    config.write_text(HASH_CONFIG + "\n[privacy]\nretention_days = 1\n", encoding="utf-8")
    r = nd("forget", "--before", "2000-01-01", "--json", config=config)
    assert r.code == 0, r.err
    assert _count(threads, "thread_questions") == 0
    assert _count(threads, "forum_posts") == 1  # the day-old claim outlives retention_days = 1
