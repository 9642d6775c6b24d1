"""How fresh answers are: the article date in answers (CLI and Discord card), the recency weight
that prefers newer articles when passages tie, and the new config keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot import formatting as fmt
from index.cli.render import format_answer
from index.config import Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.errors import ConfigError
from index.models import Answer, Document, Hit, Quote
from index.pipeline import Pipeline
from index.search.fusion import prefer_recent

pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite

TIDE = (
    "The tide tables for the harbour of Valmare were printed by the port office. "
    "High water comes twice a day and the ferry leaves one hour after it."
)


def hit(i: int, score: float, published: str | None) -> Hit:
    return Hit(i, f"a{i}", f"T{i}", f"/x/{i}.txt", None, "text", 0, 4, score, published)


def test_prefer_recent_breaks_ties_by_date_and_keeps_order_without_weight() -> None:
    hits = [hit(1, 0.8, "2020-01-01"), hit(2, 0.8, "2024-06-01T10:00:00+00:00"), hit(3, 0.8, None)]
    assert [h.chunk_id for h in prefer_recent(hits, 0.0)] == [1, 2, 3]
    ranked = prefer_recent(hits, 0.05)
    assert [h.chunk_id for h in ranked] == [2, 1, 3]
    assert ranked[0].score == pytest.approx(0.8 + 0.05 * 0.8)
    assert [h.details["recency"] for h in ranked] == [1.0, 0.0, 0.0]
    assert [h.score for h in hits] == [0.8, 0.8, 0.8]  # the input is not modified


def test_prefer_recent_is_a_nudge_not_an_override() -> None:
    hits = [hit(1, 1.0, "2001-01-01"), hit(2, 0.5, "2024-01-01"), hit(3, 0.97, "2023-12-31")]
    # the newest gains at most weight x the best score: 0.5 stays last, 0.97 overtakes 1.0
    assert [h.chunk_id for h in prefer_recent(hits, 0.05)] == [3, 1, 2]
    assert [h.chunk_id for h in prefer_recent(hits, 0.01)] == [1, 3, 2]


def test_prefer_recent_undated_and_odd_dates() -> None:
    undated = [hit(1, 0.5, None), hit(2, 0.5, "not a date")]
    assert [h.chunk_id for h in prefer_recent(undated, 0.5)] == [1, 2]
    one = [hit(1, 0.5, None), hit(2, 0.5, "2024-01-01")]
    assert [h.chunk_id for h in prefer_recent(one, 0.1)] == [2, 1]
    negative = [hit(1, -0.2, "2020-01-01"), hit(2, -0.2, "2021-01-01")]
    assert [h.chunk_id for h in prefer_recent(negative, 0.1)] == [2, 1]


def test_ask_prefers_the_newer_of_two_tied_articles(settings: Settings, tmp_path: Path) -> None:
    """Two articles with the same text tie; the tie goes to one of them by position. With the
    dates swapped between two indexes, the older article wins one of them -- until a recency
    weight makes the newer one win both."""
    question = "When does the ferry leave after high water?"
    pipes = []
    for n, dates in enumerate([("2019-05-01", "2024-05-01"), ("2024-05-01", "2019-05-01")]):
        pipe = Pipeline(dataclasses.replace(settings, data_dir=tmp_path / f"d{n}"), HashEmbedder())
        pipe.add_documents(
            [
                # the same passage; the texts differ by a trailing space, or they would be one
                # article (duplicates are indexed once)
                Document(f"/x/{name}.txt", "Tides", TIDE + pad, None, d)
                for name, d, pad in zip("ab", dates, ("", " "), strict=True)
            ]
        )
        pipes.append(pipe)
    firsts = []
    for pipe in pipes:
        hits = pipe.search(question)
        assert hits[0].score == hits[1].score  # a tie
        quote = pipe.ask(question).quote
        assert quote is not None
        firsts.append((hits[0].published, quote.published))
    assert ("2019-05-01", "2019-05-01") in firsts  # by position, the older one wins once

    settings.retrieval.recency_weight = 0.05
    for pipe in pipes:
        hits = pipe.search(question)
        assert [h.published for h in hits[:2]] == ["2024-05-01", "2019-05-01"]
        answer = pipe.ask(question)
        assert answer.quote is not None and answer.quote.published == "2024-05-01"
        assert "one hour after it" in answer.quote.text
        pipe.close()


def test_cli_answer_shows_the_article_date() -> None:
    q = Quote("High water comes twice a day.", "a1", "Tides", "/x/t.md", None, 0, 5, 0.9, 1)
    dated = Quote(**{**q.__dict__, "published": "2024-05-01T08:00:00+00:00"})
    hits = [hit(1, 0.9, "2024-05-01"), hit(2, 0.5, None)]
    text = format_answer(Answer("q", dated, hits))
    assert "  — Tides (/x/t.md), published 2024-05-01\n" in text
    assert " 1. T1, published 2024-05-01\n" in text and " 2. T2\n" in text
    assert "published" not in format_answer(Answer("q", q, []))


def test_answer_card_shows_the_article_date() -> None:
    text = "High water comes twice a day."
    q = Quote(
        text, "a0", "Tides", "/x/t.md", "https://news.example.com/t", 0, 5, 0.9, 0, "2024-03-05"
    )
    others = [
        Hit(1, "a1", "Ferry times", "/x/f.md", None, "The ferry leaves.", 0, 5, 0.5, "2023-11-30"),
        Hit(2, "a2", "Undated", "/x/u.md", None, "Other text.", 0, 5, 0.4, None),
    ]
    e = fmt.answer_embed(Answer("When is high water?", q, others))
    assert e.description == (
        f"> “{text}”\n— [Tides](https://news.example.com/t) · published 2024-03-05 "
        "(<t:1709596800:R>)"
    )
    assert [f.name for f in e.fields] == ["Ferry times · 2023-11-30", "Undated"]
    undated = Quote(**{**q.__dict__, "published": None})
    assert "published" not in (fmt.answer_embed(Answer("q", undated, [])).description or "")
    assert fmt.freshness("next Tuesday") == "" and fmt.published_date("2024-13") == ""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_subscription_config(tmp_path: Path) -> None:
    s = load_settings(
        write(
            tmp_path,
            "[retrieval]\nrecency_weight = 0.05\n[sync]\nannounce_max = 3\n"
            '[[feeds]]\nurl = "https://example.org/feed.xml"\nchannel = 1234567890123456789\n'
            '[[feeds]]\nurl = "https://example.org/b.xml"\ninterval = 5\n'
            '[[folders]]\npath = "articles"\n',
        )
    )
    assert s.retrieval.recency_weight == 0.05 and s.sync.announce_max == 3
    assert [(f.url, f.interval, f.channel) for f in s.feeds] == [
        ("https://example.org/feed.xml", 30.0, 1234567890123456789),
        ("https://example.org/b.xml", 5.0, 0),
    ]
    assert [(f.path, f.interval) for f in s.folders] == [((tmp_path / "articles"), 5.0)]
    assert load_settings().feeds == [] and load_settings().retrieval.recency_weight == 0.0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[retrieval]\nrecency_weight = 2", r"retrieval\.recency_weight must be between 0"),
        ('[[feeds]]\nurl = "ftp://x/f"', r"feeds\[0\]\.url must be the http\(s\) address"),
        ("[[feeds]]\ninterval = 5", r"feeds\[0\]\.url is missing"),
        (
            '[[feeds]]\nurl = "https://x/f"\nintervall = 3',
            r"unknown key 'feeds\[0\]\.intervall' \(did you mean \"feeds\[0\]\.interval\"\?\)",
        ),
        ('[[feeds]]\nurl = "https://x/f"\ninterval = 0.5', r"feeds\[0\]\.interval must be a"),
        ('[[feeds]]\nurl = "https://x/f"\nchannel = "general"', r"feeds\[0\]\.channel must be"),
        ('[[feeds]]\nurl="https://x/f"\n[[feeds]]\nurl="https://x/f"', r"feeds\[1\]\.url must be"),
        ("feeds = 3", r"feeds must be a list of tables, written \[\[feeds\]\]"),
        ("feeds = [1]", r"feeds\[0\] must be a table"),
        ("[[folders]]\ninterval = 3", r"folders\[0\]\.path is missing"),
        ('[[folders]]\npath = "a"\ninterval = 0', r"folders\[0\]\.interval must be"),
        ("[sync]\nannounce_max = 0", r"sync\.announce_max must be an integer between 1 and 50"),
        ("[sync]\nmax_backoff = 0", r"sync\.max_backoff must be a number of minutes"),
    ],
)
def test_subscription_config_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, toml))


def test_the_commented_subscription_examples_load(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parent.parent.parent / "config.example.toml").read_text()
    block = example[example.index("# [[feeds]]") :]
    uncommented = "\n".join(line.removeprefix("# ").removeprefix("#") for line in block.split("\n"))
    s = load_settings(write(tmp_path, example + "\n" + uncommented))
    assert [(f.url, f.interval, f.channel) for f in s.feeds] == [
        ("https://example.com/feed.xml", 30.0, 123456789012345678)
    ]
    assert [(f.path, f.interval, f.channel) for f in s.folders] == [(tmp_path / "articles", 5.0, 0)]
