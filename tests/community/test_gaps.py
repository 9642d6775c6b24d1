"""``gaps`` grouping (index/community/gaps.py): similar questions together, ranked by count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.community.feedback import GapRow
from index.community.gaps import group_questions
from index.embedding.hashing import HashEmbedder
from index.tools.bench_community import gaps_latency

EMB = HashEmbedder()


def rows(*questions: tuple[str, float], channel: int | None = 1) -> list[GapRow]:
    return [
        GapRow(i, t, q, channel, True, 0, EMB.embed_query(q)) for i, (q, t) in enumerate(questions)
    ]


def test_similar_questions_are_one_group_ranked_by_count() -> None:
    got = group_questions(
        rows(
            ("What is the capital of Mars?", 1),
            ("Who is the mayor of Valmare?", 2),
            ("capital city of Mars?", 3),
            ("Who won the bread prize?", 4),
            ("who won the bread prize", 5),
            ("Which bakery won the national bread prize?", 6),
        )
    )
    assert [g.count for g in got] == [3, 2, 1]
    bread, mars, mayor = got
    assert bread.question == "who won the bread prize"  # the most asked wording leads
    assert bread.examples == ["Which bakery won the national bread prize?"]
    assert bread.last_asked == 6 and bread.abstained == 3
    assert {mars.question, *mars.examples} == {
        "What is the capital of Mars?",
        "capital city of Mars?",
    }
    assert mayor.question == "Who is the mayor of Valmare?" and mayor.examples == []


def test_ties_rank_the_latest_first_and_limit() -> None:
    got = group_questions(rows(("old question about volcanoes", 1), ("new one on chess", 9)))
    assert [g.question for g in got] == ["new one on chess", "old question about volcanoes"]
    assert len(group_questions(rows(("a b c", 1), ("d e f", 2)), limit=1)) == 1


def test_unrelated_questions_never_merge_through_a_chain() -> None:
    """a~b~c~d, each 40° from the next: connected components would make one group of four;
    here every member is close to its group's leader, so a and d are never together."""

    def at(deg: float) -> np.ndarray:
        r = np.radians(deg)
        return np.array([np.cos(r), np.sin(r), 0, 0], dtype=np.float32)

    chain = [GapRow(i, i + 1, f"{n}?", 1, True, 0, at(40 * i)) for i, n in enumerate("abcd")]
    got = group_questions(chain, threshold=0.707)
    assert sum(g.count for g in got) == 4 and len(got) == 2
    for g in got:
        assert not {"a?", "d?"} <= {g.question, *g.examples}


def test_channels_counts_and_rows_without_vectors() -> None:
    qs = [
        GapRow(0, 1, "Where is Tern?", 5, True, 0, None),
        GapRow(1, 2, "where is tern", 7, False, 2, None),
        GapRow(2, 3, "Where is Tern island?", None, True, 0, EMB.embed_query("Where is Tern?")),
    ]
    got = group_questions(qs)
    assert [g.count for g in got] == [2, 1]  # same words without vectors still group
    assert got[0].channels == [5, 7] and (got[0].abstained, got[0].downvoted) == (1, 1)
    data = got[0].to_json()
    assert data["count"] == 2 and data["last_asked"].startswith("1970-01-01T00:00:02")


def test_other_dimensions_stay_alone() -> None:
    """After a model change the latest dimension is compared; older vectors stay alone."""
    qs = [
        GapRow(0, 1, "x three", 1, True, 0, np.ones(8, np.float32) / 8**0.5),
        GapRow(1, 2, "x one", 1, True, 0, np.ones(4, np.float32) / 2),
        GapRow(2, 3, "x two", 1, True, 0, np.ones(4, np.float32) / 2),
    ]
    got = group_questions(qs)
    assert [(g.count, g.question) for g in got] == [(2, "x two"), (1, "x three")]


def test_empty() -> None:
    assert group_questions([]) == []


def test_many_questions_are_grouped_exactly() -> None:
    """2,000 noisy copies of 40 topics: every group is one topic, and all are found."""
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((40, 64)).astype(np.float32)
    topic = rng.integers(40, size=2000)
    qs = []
    for i, t in enumerate(topic):
        v = centers[t] + 0.15 * rng.standard_normal(64).astype(np.float32)
        qs.append(GapRow(i, float(i), f"topic {t} wording {i}", 1, True, 0, v / np.linalg.norm(v)))
    got = group_questions(qs, threshold=0.8)
    assert len(got) == 40 and sum(g.count for g in got) == 2000
    for g in got:
        names = {q.split()[1] for q in [g.question, *g.examples]}
        assert len(names) == 1
    counts = [g.count for g in got]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == np.bincount(topic).max()


def test_bench_figure_groups_its_synthetic_topics(tmp_path: Path) -> None:
    """`newsdesk bench`'s gaps figure (small here): logged like the bot logs, grouped by topic."""
    res = gaps_latency(tmp_path, n=400, dim=48, seed=1, topics=12)
    assert res["questions"] == 400 and res["groups"] == 12
    assert res["largest"] >= 400 // 12 and res["seconds"] >= 0
