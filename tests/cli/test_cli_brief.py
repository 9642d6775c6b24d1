"""`newsdesk brief` and `newsdesk article --summary` (index/cli/commands_brief.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Nd

CHESS = "Chess champion keeps her title"


def usage_error(nd: Nd, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """An argparse refusal: exit 2 and its message (the last line on stderr)."""
    with pytest.raises(SystemExit) as e:
        nd(*args)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_brief_text_lists_the_newest_first_with_their_central_sentence(
    nd: Nd, corpus_dir: Path
) -> None:
    nd("index", str(corpus_dir))
    text = nd("article", "--text", CHESS).out
    r = nd("brief")
    assert r.code == 0 and r.err == ""
    lines = r.out.splitlines()
    assert lines[0] == "The 3 newest articles:"
    # the two undated articles count from when they were indexed (now); chess is dated 2024
    heads = [line for line in lines if line[:4].isdigit()]
    assert len(heads) == 3 and heads[-1] == f"2024-03-05  {CHESS}"
    assert all(h.split("  ")[0].endswith("(indexed)") for h in heads[:2])
    at = lines.index(heads[-1])
    assert lines[at + 1] == "  https://news.example.com/chess"
    quoted = " ".join(x.strip() for x in lines[at + 2 :]).strip()
    assert quoted.startswith("“") and quoted.endswith("”")
    assert quoted[1:-1] in " ".join(text.split())  # verbatim from the article

    r = nd("brief", "--limit", "1", "--since", "2024-03-06")
    assert r.out.startswith("The newest article since 2024-03-06 (of 2):")
    assert CHESS not in r.out


def test_brief_json(nd: Nd, corpus_dir: Path) -> None:
    nd("index", str(corpus_dir))
    data = json.loads(nd("brief", "--json", "--since", "7d").out)
    assert data["total"] == 2 and data["since"].endswith("+00:00")
    assert {a["title"] for a in data["articles"]} == {
        "Volcano erupts on remote island",
        "Bakery wins bread prize",
    }
    data = json.loads(nd("brief", "--json").out)
    assert data["since"] is None and data["total"] == 3
    chess = data["articles"][-1]
    assert chess["title"] == CHESS and chess["date"] == "2024-03-05"
    assert chess["dated_by"] == "published" and chess["link"] == "https://news.example.com/chess"
    assert chess["sentence"] and set(chess) >= {"id", "source", "url", "published", "indexed"}


def test_brief_errors_and_empty_results(
    nd: Nd, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = nd("brief")
    assert r.code == 0 and r.out.startswith("No articles yet: run `newsdesk index")
    assert json.loads(nd("brief", "--json").out) == {"since": None, "total": 0, "articles": []}
    nd("index", str(corpus_dir))
    line = nd("brief", "--since", "yesterday").one_error_line()
    assert "--since" in line and "'yesterday'" in line and "24h" in line and "2026-11-01" in line
    assert "--since" in nd("brief", "--since", "0h").one_error_line()
    r = nd("brief", "--since", "2099-01-01")
    assert r.code == 0 and r.out.startswith("No articles since 2099-01-01")
    assert "--limit" in usage_error(nd, capsys, "brief", "--limit", "0")


def test_brief_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    from index.cli import main

    with pytest.raises(SystemExit):
        main(["brief", "--help"])
    out = capsys.readouterr().out
    assert "newsdesk brief --since 24h" in out and "2026-11-01" in out and "--json" in out


def test_article_summary(nd: Nd, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nd("index", str(corpus_dir))
    plain = nd("article", CHESS).out
    assert "Summary" not in plain and "The world chess champion defended" in plain  # unchanged
    text = nd("article", "--text", CHESS).out.rstrip("\n")
    data = json.loads(nd("article", CHESS, "--summary", "--json").out)
    assert data["opening"].startswith("The world chess champion")
    summary = data["summary"]
    assert len(summary) == 3
    assert [s["start"] for s in summary] == sorted(s["start"] for s in summary)
    for s in summary:
        assert text[s["start"] : s["end"]] == s["text"]
    two = json.loads(nd("article", CHESS, "--summary", "2", "--json").out)["summary"]
    assert len(two) == 2 and {s["text"] for s in two} <= {s["text"] for s in summary}

    r = nd("article", CHESS, "--summary")
    assert r.code == 0
    assert "Summary (3 sentences, verbatim, in article order):" in r.out
    bullets = [line for line in r.out.splitlines() if line.startswith("  • ")]
    assert [b[4:] for b in bullets] == [s["text"] for s in summary]  # short ones: one line each

    err = usage_error(nd, capsys, "article", "--summary", CHESS)
    assert "put --summary after the ARTICLE" in err
    assert "not allowed with" in usage_error(nd, capsys, "article", CHESS, "--summary", "--text")
    assert "between 1 and 10" in usage_error(nd, capsys, "article", CHESS, "--summary", "11")
    assert "no such" in nd("article", "no such article", "--summary").one_error_line().lower()
