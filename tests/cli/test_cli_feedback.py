"""`newsdesk feedback`, `gaps`, `forget` and `privacy.log_cli`: output, --json, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.community.feedback import FeedbackStore
from index.config import PrivacySettings
from index.embedding.hashing import HashEmbedder
from index.models import Answer, Quote
from tests.conftest import Nd
from tests.fakes.config import HASH_CONFIG


def _answer(q: str, *, abstain: bool) -> Answer:
    quote = (
        None
        if abstain
        else Quote("Lava reached the sea.", "v1", "Volcano", "v.txt", None, 5, 26, 0.9, 1)
    )
    ans = Answer(q, quote, [], confidence=0.3)
    ans.query_vector = HashEmbedder().embed_query(q)
    return ans


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A feedback log: three abstentions on two topics, one answer rated 👎 twice, one 👍."""
    data = tmp_path / "data"
    store = FeedbackStore(data, PrivacySettings())
    for q in ("What is the capital of Mars?", "capital city of Mars?", "Who is Valmare's mayor?"):
        store.log_answer(_answer(q, abstain=True), channel_id=42, guild_id=7)
    bad = store.log_answer(_answer("When did lava reach the sea?", abstain=False), channel_id=43)
    good = store.log_answer(_answer("Did lava reach the sea?", abstain=False), channel_id=43)
    store.vote(bad or 0, 1, -1)
    store.vote(bad or 0, 2, -1)
    store.vote(good or 0, 1, 1)
    store.close()
    return data


def test_feedback_text_and_json(nd: Nd, logged: Path) -> None:
    r = nd("feedback")
    assert r.code == 0, r.err
    first = r.out.splitlines()[0]
    assert "2 answers, 3 abstentions" in first and "👍 1" in first and "👎 2" in first
    assert "(33% 👍)" in first
    assert "👎 2 👍 0" in r.out and "When did lava reach the sea?" in r.out
    assert "Lava reached the sea." in r.out and "characters 5–26" in r.out
    data = json.loads(nd("feedback", "--json").out)
    assert (data["answers"], data["abstentions"], data["up"], data["down"]) == (2, 3, 1, 2)
    assert data["worst"][0]["question"] == "When did lava reach the sea?"
    assert data["worst"][0]["quote"] == "Lava reached the sea."


def test_feedback_without_a_log(nd: Nd) -> None:
    r = nd("feedback")
    assert r.code == 0 and "0 answers" in r.out and "No votes yet." in r.out


def test_gaps_groups_and_json(nd: Nd, logged: Path) -> None:
    r = nd("gaps")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "4 questions" in lines[0]
    assert lines[1].startswith("1. ×2") and "Mars" in lines[1]
    assert "channels 42" in lines[2] and "2 abstained" in lines[2]
    data = json.loads(nd("gaps", "--json", "--limit", "2").out)
    assert data["questions"] == 4 and len(data["groups"]) == 2
    mars = data["groups"][0]
    assert mars["count"] == 2 and mars["channels"] == [42]
    assert {mars["question"], *mars["examples"]} == {
        "What is the capital of Mars?",
        "capital city of Mars?",
    }
    lava = [g for g in json.loads(nd("gaps", "--json").out)["groups"] if "lava" in g["question"]]
    assert lava == [{**lava[0], "count": 1, "downvoted": 1, "abstained": 0}]


def test_since_filters(nd: Nd, logged: Path) -> None:
    assert "4 questions" in nd("gaps", "--since", "1h").out
    data = json.loads(nd("feedback", "--json", "--since", "2w").out)
    assert data["since"] and data["answers"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gaps", "--since", "soon"), "'soon' is not a span like 30m, 24h, 7d or 2w"),
        (("feedback", "--since", "0d"), "longer than 0"),
        (("forget",), "say what to forget"),
        (("forget", "--before", "yesterday"), "is not a date"),
    ],
)
def test_bad_input_is_one_line(nd: Nd, args: tuple[str, ...], message: str) -> None:
    line = nd(*args).one_error_line()
    assert message in line


def test_forget_user_and_before(nd: Nd, logged: Path) -> None:
    r = nd("forget", "--user", "1")
    assert r.code == 0
    assert r.out.strip() == (
        "forget: deleted 0 logged answers and 2 votes "
        "(questions are not linked to users: privacy.store_user_ids is off; "
        "thread questions and forum post claims never are: --before DATE deletes them)"
    )
    assert json.loads(nd("feedback", "--json").out)["down"] == 1
    r = nd("forget", "--before", "2999-01-01", "--json")
    assert json.loads(r.out) == {
        "answers": 5,
        "votes": 1,
        "thread_questions": 0,
        "forum_posts": 0,
        "forum_posts_kept": 0,
    }
    assert json.loads(nd("gaps", "--json").out)["groups"] == []


def test_cli_answers_are_logged_only_when_configured(
    nd: Nd, corpus_dir: Path, tmp_path: Path
) -> None:
    assert nd("index", str(corpus_dir), "-q").code == 0
    nd("ask", "Who won the national bread prize?")
    assert json.loads(nd("feedback", "--json").out)["answers"] == 0  # off by default
    config = tmp_path / "log.toml"
    config.write_text(HASH_CONFIG + "\n[privacy]\nlog_cli = true\n", encoding="utf-8")
    nd("ask", "Who won the national bread prize?", config=config)
    nd("ask", "What colour is the moon base?", config=config)
    data = json.loads(nd("feedback", "--json").out)
    assert data["answers"] + data["abstentions"] == 2
