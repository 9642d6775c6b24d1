"""News briefs and extractive summaries (index/search/brief.py, index/search/summary.py), on
both backends: newest first by the article's date (else when indexed), the ``since`` window,
the ``article_ids`` filter (a channel's scope), verbatim sentences."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from index.errors import ArticleNotFoundError
from index.models import Document
from index.pipeline import Pipeline
from index.search import brief as news
from index.search.summary import central_sentence, central_sentences, mmr_indices

pytestmark = pytest.mark.backends  # every test here runs on FAISS and on Milvus Lite

UTC = dt.UTC


def _doc(name: str, title: str, published: str | None, *sentences: str) -> Document:
    text = " ".join(sentences[:2]) + "\n\n" + " ".join(sentences[2:])
    return Document(f"https://news.example.com/{name}", title, text.strip(), None, published)


DOCS = [
    _doc(
        "old",
        "Harbour cranes sold",
        "2024-01-15",
        "The harbour cranes of Valmare were sold to a Dutch shipping firm on Monday.",
        "Dock workers protested against the sale of the harbour cranes at the gate.",
        "The firm said the cranes would stay in Valmare for at least five more years.",
    ),
    _doc(
        "chess",
        "Chess champion keeps her title",
        "2024-03-05",
        "The world chess champion defended her title in Madrid on Sunday evening.",
        "She won the final game with the black pieces after six hours of play.",
        "Her opponent resigned on move 61 and congratulated the champion warmly.",
    ),
    _doc(
        "bridge",
        "Bridge vote passes",
        "2025-06-01T10:00:00+02:00",
        "The city council voted to build a new bridge across the river Tern.",
        "The bridge will cost forty million euros and open in the spring of 2028.",
        "Cyclists and pedestrians will have a separate lane on the new bridge.",
    ),
]
UNDATED = _doc(
    "bakery",
    "Bakery wins bread prize",
    None,
    "A small bakery in Lyon won the national bread prize on Sunday afternoon.",
    "The baker uses a sourdough starter that is forty years old, he told reporters.",
    "He said he would hire two apprentices with the prize money next year.",
)


@pytest.fixture
def indexed(pipeline: Pipeline) -> Pipeline:
    pipeline.add_documents([*DOCS, UNDATED])
    return pipeline


def titles(b: news.Brief) -> list[str]:
    return [i.title for i in b.items]


def test_newest_first_by_date_else_when_indexed(indexed: Pipeline) -> None:
    b = indexed.brief()
    # the undated article counts from when it was indexed (now): the newest
    assert titles(b) == [
        "Bakery wins bread prize",
        "Bridge vote passes",
        "Chess champion keeps her title",
        "Harbour cranes sold",
    ]
    assert b.total == 4 and b.since is None
    first, bridge = b.items[0], b.items[1]
    assert first.dated_by == "indexed" and first.date == dt.datetime.now(UTC).date().isoformat()
    assert bridge.dated_by == "published" and bridge.date == "2025-06-01"
    assert bridge.link == "https://news.example.com/bridge"
    data = b.to_json()
    assert data["total"] == 4 and data["articles"][1]["published"] == "2025-06-01T10:00:00+02:00"
    assert [a["title"] for a in data["articles"]] == titles(b)
    # limit keeps the newest; total still counts every match
    two = indexed.brief(limit=2)
    assert titles(two) == titles(b)[:2] and two.total == 4


def test_since_window(indexed: Pipeline) -> None:
    b = indexed.brief(since=dt.datetime(2024, 3, 1, tzinfo=UTC))
    assert titles(b) == [
        "Bakery wins bread prize",
        "Bridge vote passes",
        "Chess champion keeps her title",
    ]
    # a date without a time is the whole day: noon on that day still includes it
    noon = indexed.brief(since=dt.datetime(2024, 3, 5, 12, tzinfo=UTC))
    assert "Chess champion keeps her title" in titles(noon)
    after = indexed.brief(since=dt.datetime(2024, 3, 6, tzinfo=UTC))
    assert "Chess champion keeps her title" not in titles(after)
    # a duration counts back from now: only the article indexed a moment ago
    recent = indexed.brief(since=dt.timedelta(hours=1))
    assert titles(recent) == ["Bakery wins bread prize"] and recent.total == 1
    # a duration from another "now": the bridge (2025-06-01 08:00 UTC) and nothing older
    at = dt.datetime(2025, 6, 2, 8, tzinfo=UTC)
    b = news.brief(indexed.store, dt.timedelta(hours=24), now=at)
    assert "Bridge vote passes" in titles(b) and "Chess champion keeps her title" not in titles(b)
    assert b.since == at - dt.timedelta(hours=24)
    far = indexed.brief(since=dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert far.items == [] and far.total == 0


def test_article_ids_filter(indexed: Pipeline) -> None:
    ids = {d.article_id for d in DOCS[:2]}
    b = indexed.brief(article_ids=ids)
    assert titles(b) == ["Chess champion keeps her title", "Harbour cranes sold"]
    assert {i.id for i in b.items} == ids and b.total == 2
    assert indexed.brief(article_ids=set()).items == []
    scoped = indexed.brief(since=dt.datetime(2024, 3, 1, tzinfo=UTC), article_ids=ids)
    assert titles(scoped) == ["Chess champion keeps her title"]


def test_central_sentence_is_verbatim_from_the_article(indexed: Pipeline) -> None:
    for item in indexed.brief().items:
        article = indexed.get_article(item.id)
        assert item.sentence
        assert item.sentence in " ".join(article.text.split())
        assert item.sentence == central_sentence(indexed.store, item.id)


def test_summary_sentences_are_verbatim_central_and_in_article_order(indexed: Pipeline) -> None:
    for doc in [*DOCS, UNDATED]:
        s = indexed.summarize(doc.article_id, 3)
        assert s.article.id == doc.article_id
        assert len(s.sentences) == 3
        starts = [x.start for x in s.sentences]
        assert starts == sorted(starts) and len(set(starts)) == 3
        for x in s.sentences:
            assert x.text == s.article.text[x.start : x.end]  # verbatim, offsets into the text
        one = indexed.summarize(doc.article_id, 1).sentences
        assert [" ".join(one[0].text.split())] == [central_sentence(indexed.store, doc.article_id)]
    by_title = indexed.summarize("Bridge vote passes", 2)
    assert by_title.article.title == "Bridge vote passes" and len(by_title.sentences) == 2
    with pytest.raises(ArticleNotFoundError):
        indexed.summarize("no such article at all")


def test_summary_passes_over_a_repeated_sentence(pipeline: Pipeline) -> None:
    repeated = "The harbour cranes of Valmare were sold to a Dutch shipping firm on Monday."
    text = (
        f"{repeated} Dock workers protested against the sale of the harbour cranes.\n\n"
        "The firm said the harbour cranes would stay in Valmare for five more years.\n\n"
        f"{repeated} The mayor of Valmare called the sale of the cranes a sad day for the port."
    )
    doc = Document("/tmp/cranes.txt", "Cranes", text)
    pipeline.add_documents([doc])
    picked = [x.text for x in central_sentences(pipeline.store, doc.article_id, 3)]
    assert len(picked) == 3 and picked.count(repeated) <= 1


def test_mmr_picks_the_centre_first_and_skips_near_copies() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 1.0, 0.0])
    mid = np.array([1.0, 1.0, 0.2])
    vecs = np.vstack([a, mid, mid * 1.0001, b])
    picks = mmr_indices(vecs, 3)
    assert picks[0] in (1, 2)  # the centre first
    assert not {1, 2} <= set(picks)  # never both copies
    assert mmr_indices(vecs, 10) and len(mmr_indices(vecs, 10)) == 4
    # ordinary-length sentences first: an ineligible row only when the eligible run out, but a
    # near-copy of a picked one comes last of all
    c = np.array([0.0, 0.0, 1.0])
    assert 3 not in mmr_indices(np.vstack([a, mid, b, c]), 3, [True, True, True, False])
    assert mmr_indices(np.vstack([a, mid, b, c]), 4, [True, True, True, False])[3] == 3
    assert sorted(mmr_indices(vecs, 3, [True, True, True, False])) == [0, 2, 3] or sorted(
        mmr_indices(vecs, 3, [True, True, True, False])
    ) == [0, 1, 3]
    assert mmr_indices(np.zeros((0, 3)), 3) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", dt.timedelta(hours=24)),
        ("30m", dt.timedelta(minutes=30)),
        ("7d", dt.timedelta(days=7)),
        ("2w", dt.timedelta(days=14)),
        (" 1.5 H ", dt.timedelta(hours=1.5)),
    ],
)
def test_parse_since_durations(text: str, expected: dt.timedelta) -> None:
    now = dt.datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert news.parse_since(text, now) == now - expected


def test_parse_since_dates_and_errors() -> None:
    now = dt.datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert news.parse_since("2026-11-01", now) == dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert news.parse_since("2026-11-01T08:30+01:00", now) == dt.datetime(
        2026, 11, 1, 7, 30, tzinfo=UTC
    )
    assert news.parse_since("99999d", now) == now - dt.timedelta(days=news.MAX_SINCE_DAYS)
    for bad in ("yesterday", "", "24", "24x", "0h", "2026-13-01", "h24", "-3d"):
        with pytest.raises(news.InvalidSinceError) as e:
            news.parse_since(bad, now)
        assert "30m, 24h, 7d" in str(e.value) and "\n" not in str(e.value)


def test_an_empty_index_gives_an_empty_brief(pipeline: Pipeline) -> None:
    b = pipeline.brief(since=dt.timedelta(days=1))
    assert b.items == [] and b.total == 0 and b.since is not None
