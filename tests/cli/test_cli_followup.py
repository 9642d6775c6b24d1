"""`newsdesk ask --after` and `newsdesk chat`: follow-ups built on earlier questions."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Nd

CHESS_Q = "Where did the chess champion defend her title?"


def test_ask_after_builds_on_the_earlier_question(nd: Nd, corpus_dir: Path) -> None:
    assert nd("index", str(corpus_dir)).code == 0
    r = nd("ask", "--after", CHESS_Q, "and the prize?")
    assert r.code == 0
    assert r.out.startswith(f"Following up on: “{CHESS_Q}”\n")
    assert "1. Chess champion keeps her title" in r.out
    data = json.loads(nd("ask", "--json", "--after", CHESS_Q, "and the prize?").out)
    assert data["follows_up"] == CHESS_Q and data["question"] == "and the prize?"
    # a question that stands on its own: no follow-up line, no key
    r = nd("ask", "--json", "--after", CHESS_Q, "Who won the national bread prize?")
    assert "follows_up" not in json.loads(r.out)


def test_ask_after_needs_a_question(nd: Nd, corpus_dir: Path) -> None:
    nd("index", str(corpus_dir))
    r = nd("ask", "--after", CHESS_Q, stdin="and the prize?\n")
    assert r.code == 2 and r.err.strip() == (
        "newsdesk: error: --after needs a QUESTION and no --generate"
    )


def test_chat_follows_up_on_the_earlier_questions(nd: Nd, corpus_dir: Path) -> None:
    nd("index", str(corpus_dir))
    r = nd("chat", stdin=f"{CHESS_Q}\nwhen was that?\n")
    assert r.code == 0
    before, second = r.out.split(f"Following up on: “{CHESS_Q}”")
    assert "Following up" not in before and "Chess champion" in second
