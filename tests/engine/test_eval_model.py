"""A real-model evaluation on two squad-dev articles (their questions only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.config import load_settings
from index.tools.evaluate import run_eval
from tests.conftest import SQUAD

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not SQUAD.is_dir(), reason="../shared/eval/squad-dev not present"),
]

ARTICLES = ("1973-oil-crisis", "jacksonville-florida")


def test_real_model_eval_on_two_articles(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for a in ARTICLES:
        (corpus / f"{a}.txt").write_bytes((SQUAD / "articles" / f"{a}.txt").read_bytes())
    qa = tmp_path / "qa.jsonl"
    rows = [
        line
        for line in (SQUAD / "qa.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["article"] in ARTICLES
    ]
    qa.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = run_eval(load_settings(), corpus, qa, k=10, leave_out=True, embedder=real_embedder)
    assert res.questions == len(rows) > 100
    assert res.articles == 2 and res.errors == 0
    assert res.hit_at["5"] >= 0.9
    assert res.hit_at["1"] >= 0.75
    assert res.answer_accuracy >= 0.65
    assert res.answered_share >= 0.85
    # with only two articles, leaving one out leaves the other, unrelated one: abstain
    assert res.leave_out_abstained is not None and res.leave_out_abstained >= 0.8
