"""What a new user trips over (issue 19, part A): each test follows a README promise from a
fresh clone -- the samples, titles of plain text files, look-ups by URL or id prefix, removing
several articles, the summary lines, feed counts, messages, and the Milvus ``uri`` rule."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT, Nd

SAMPLES = ROOT / "samples"


# -- 1. samples/ holds articles only ----------------------------------------------------------


def test_indexing_the_samples_indexes_the_articles_only(nd: Nd) -> None:
    """`make run` indexes samples/: the licence list is not an article there."""
    assert nd("index", "-q", str(SAMPLES)).code == 0
    rows = json.loads(nd("articles", "--json").out)
    names = sorted(Path(r["source"]).name for r in rows)
    assert names == sorted(p.name for p in SAMPLES.glob("*.txt"))
    assert all(p.suffix == ".txt" for p in SAMPLES.iterdir())
