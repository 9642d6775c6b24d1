"""What a new user trips over (issue 19, part A): each test follows a README promise from a
fresh clone -- the samples, titles of plain text files, look-ups by URL or id prefix, removing
several articles, the summary lines, feed counts, messages, and the Milvus ``uri`` rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.extract import from_text
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


# -- 2. a plain text file never loses its first paragraph ---------------------------------------

FIRST = (
    "The city council approved the new harbour bridge on Tuesday after a debate that lasted "
    "two years and split the town."
)


def test_a_first_paragraph_on_one_line_is_text_not_title(nd: Nd, tmp_path: Path) -> None:
    f = tmp_path / "harbour-bridge.txt"
    f.write_text(f"{FIRST}\n\nConstruction starts in May.\n", encoding="utf-8")
    assert nd("index", "-q", str(f)).code == 0
    art = json.loads(nd("article", str(f), "--json").out)
    assert art["title"] == "Harbour bridge"
    assert art["opening"] == FIRST
    assert nd("ask", "--json", "When did the council approve the bridge?").code == 0


@pytest.mark.parametrize(
    "first",
    [
        FIRST,
        "Ash rose into the sky. Flights were cancelled",  # a sentence ends inside
        "word " * 40,  # too long for a title
    ],
)
def test_from_text_keeps_a_first_line_that_is_no_title(first: str) -> None:
    title, text = from_text(f"{first}\n\nSecond paragraph.", "From the file name")
    assert title == "From the file name"
    assert text.startswith(first.strip())


@pytest.mark.parametrize(
    "first",
    [
        "1973 oil crisis",
        "Alibaba Founder Jack Ma Vows To Pour Cash Into Silicon Valley",
        "Oil prices rise in the U.S.",
        "Dr. Ruiz warns of more lava",
        "Will the bridge be finished by May?",
    ],
)
def test_from_text_takes_a_title_line(first: str) -> None:
    assert from_text(f"{first}\n\nThe text.", "Fallback") == (first, "The text.")
