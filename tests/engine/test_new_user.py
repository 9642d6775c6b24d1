"""What a new user trips over (issue 19, part A): each test follows a README promise from a
fresh clone -- the samples, titles of plain text files, look-ups by URL or id prefix, removing
several articles, the summary lines, feed counts, messages, and the Milvus ``uri`` rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.errors import ArticleNotFoundError
from index.ingest.extract import from_text
from index.pipeline import Pipeline
from tests.conftest import ROOT, Nd, milvus_available

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


# -- 3. look-ups by URL (front matter, canonical link) and by id prefix ---------------------------

CANONICAL = (
    "<html><head><title>Bakery wins bread prize</title>"
    '<link rel="canonical" href="https://bakery.example/prize"></head><body><article>'
    "<h1>Bakery wins bread prize</h1><p>A small bakery in Lyon won the national bread prize on "
    "Sunday. The baker uses a sourdough starter that is forty years old.</p>"
    "<p>The prize comes with a contract to supply the palace for a year.</p>"
    "</article></body></html>"
)


@pytest.mark.backends
def test_articles_are_found_by_url_id_prefix_and_title(
    pipeline: Pipeline, corpus_dir: Path
) -> None:
    (corpus_dir / "bakery.html").write_text(CANONICAL, encoding="utf-8")
    (corpus_dir / "chess-copy.md").write_text(
        "---\ntitle: Chess again\nurl: https://news.example.com/chess\n---\nAnother text.\n",
        encoding="utf-8",
    )
    pipeline.add([str(corpus_dir)])
    rows = {Path(r.source).name: r for r in pipeline.list_articles()}
    bakery, volcano = rows["bakery.html"], rows["volcano.txt"]
    assert bakery.url == "https://bakery.example/prize"
    assert pipeline.get_article("https://bakery.example/prize").id == bakery.id
    assert pipeline.get_article(volcano.id[:6]).id == volcano.id
    assert pipeline.get_article(volcano.id[:4].upper()).id == volcano.id
    # two articles from the same URL: both named, with their ids
    with pytest.raises(ArticleNotFoundError) as e:
        pipeline.get_article("https://news.example.com/chess")
    msg = str(e.value)
    assert msg.startswith('several articles match "https://news.example.com/chess"')
    assert rows["chess.md"].id in msg and rows["chess-copy.md"].id in msg
    assert "Chess again" in msg
    with pytest.raises(ArticleNotFoundError, match="no article matches"):
        pipeline.get_article(volcano.id[:3])  # too short for a prefix


def test_cli_article_and_remove_by_front_matter_url(nd: Nd, corpus_dir: Path) -> None:
    assert nd("index", "-q", str(corpus_dir)).code == 0
    r = nd("article", "https://news.example.com/chess")
    assert r.code == 0 and "source    https://news.example.com/chess" in r.out
    r = nd("remove", "https://news.example.com/chess")
    assert r.code == 0 and r.out.startswith("Removed: Chess champion keeps her title")
    assert len(json.loads(nd("articles", "--json").out)) == 2


# -- 4. remove is all or nothing ----------------------------------------------------------------


def test_remove_resolves_every_name_first_then_removes_all_or_nothing(
    nd: Nd, corpus_dir: Path
) -> None:
    assert nd("index", "-q", str(corpus_dir)).code == 0
    r = nd("remove", str(corpus_dir / "volcano.txt"), "no such article", "nor this")
    line = r.one_error_line()
    assert 'no article matches "no such article"' in line
    assert 'no article matches "nor this"' in line
    assert line.endswith("nothing was removed")
    assert len(json.loads(nd("articles", "--json").out)) == 3  # the volcano is still there
    r = nd("remove", str(corpus_dir / "volcano.txt"), "Chess champion keeps her title")
    assert r.code == 0 and r.out.count("Removed: ") == 2
    assert [a["title"] for a in json.loads(nd("articles", "--json").out)] == [
        "Bakery wins bread prize"
    ]


@pytest.mark.backends
def test_remove_many_is_one_write_and_all_or_nothing(pipeline: Pipeline, corpus_dir: Path) -> None:
    pipeline.add([str(corpus_dir)])
    volcano = str(corpus_dir / "volcano.txt")
    with pytest.raises(ArticleNotFoundError, match="nothing was removed"):
        pipeline.remove_many([volcano, "missing"])
    assert pipeline.stats().articles == 3
    removed = pipeline.remove_many([volcano, volcano, "Bakery wins bread prize"])
    assert sorted(a.title for a in removed) == [
        "Bakery wins bread prize",
        "Volcano erupts on remote island",
    ]
    assert [a.title for a in pipeline.list_articles()] == ["Chess champion keeps her title"]


# -- 5. the summary after progress bars starts at the left margin -------------------------------


def _on_a_terminal(args: list[str], cwd: Path, columns: int = 80) -> bytes:
    """What `newsdesk ARGS` writes to a terminal (a pseudo-terminal ``columns`` wide)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "index.cli", *args],
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
        cwd=cwd,
        env=env,
    )
    os.close(child_fd)
    out = b""
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(main_fd)
    assert proc.wait(timeout=120) == 0, out[-2000:]
    return out


def _column_before(output: bytes, text: str, columns: int = 80) -> int:
    """The cursor's column where ``text`` starts, replaying a terminal's cursor moves: CR
    returns, a character in the last column wraps, escape sequences do not move it sideways
    (tqdm uses only CR and cursor-up)."""
    import re

    head = output.decode("utf-8", "replace").split(text, 1)[0]
    col = 0
    for token in re.findall(r"\x1b\[[0-?]*[ -/]*[@-~]|.", head, re.S):
        if token == "\r":
            col = 0
        elif token.startswith("\x1b") or token == "\n":
            continue
        else:
            col = 1 if col >= columns else col + 1
    return col


@pytest.mark.parametrize("command", ["index", "reindex"])
def test_summary_after_progress_bars_starts_at_the_margin(
    command: str, hash_config: Path, tmp_path: Path
) -> None:
    base = ["--config", str(hash_config), "--data-dir", str(tmp_path / "data")]
    first = _on_a_terminal([*base, "index", str(SAMPLES)], tmp_path)
    if command == "index":
        assert _column_before(first, "Indexed: ") == 0, first[-600:]
    else:
        out = _on_a_terminal([*base, "reindex"], tmp_path)
        assert _column_before(out, "Re-indexed ") == 0, out[-600:]


# -- 6. a feed entry read from the feed's text is added, not also skipped ------------------------


def test_feed_entry_from_feed_text_is_added_not_skipped(nd: Nd, tmp_path: Path) -> None:
    from tests.conftest import ARTICLES, HASH_CONFIG
    from tests.fakes.http import LoopbackServer

    allow = tmp_path / "allow.toml"
    allow.write_text(HASH_CONFIG + '[fetch]\nallow_hosts = ["127.0.0.1:*"]\n', encoding="utf-8")
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        srv.route("/gone", status=404, body="not here", content_type="text/html")
        srv.route(
            "/feed.xml",
            body=f"""<rss version="2.0"><channel><title>F</title>
            <item><title>Bakery</title><link>{srv.url("/story")}</link></item>
            <item><title>Park opens</title><link>{srv.url("/gone")}</link>
            <description>The park opens in May with a new lake.</description></item>
            </channel></rss>""",
            content_type="application/rss+xml",
        )
        r = nd("index", srv.url("/feed.xml"), config=allow)
        assert r.code == 0, r.err
        assert r.out.startswith("Indexed: 2 added, 0 updated, 0 unchanged (")
        assert "skipped" not in r.out + r.err
        assert r.err.strip() == (
            f"newsdesk: note: {srv.url('/gone')}: HTTP 404 Not Found; "
            "used the text from the feed instead"
        )
        nd("remove", srv.url("/gone"), config=allow)
        r = nd("index", "--json", srv.url("/feed.xml"), config=allow)
        report = json.loads(r.out)
        assert (report["added"], report["unchanged"], report["skipped"]) == (1, 1, [])
        assert report["notes"] == [
            f"{srv.url('/gone')}: HTTP 404 Not Found; used the text from the feed instead"
        ]


# -- 7. messages --------------------------------------------------------------------------------


def test_subscribe_a_file_says_it_is_a_file(nd: Nd, corpus_dir: Path) -> None:
    line = nd("subscribe", str(corpus_dir / "volcano.txt")).one_error_line()
    assert "is a file: subscribe to a folder or a feed" in line
    assert "no such folder" not in line


def test_config_names_a_list_of_strings(tmp_path: Path) -> None:
    from index.config import load_settings
    from index.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[fetch]\nallow_hosts = "example.org"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(bad, tmp_path / "data")
    assert "a list of strings" in str(e.value), e.value
    bad.write_text("[discord]\nguild_ids = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(bad, tmp_path / "data")
    assert "a list of integers" in str(e.value), e.value


def test_empty_search_names_the_query(nd: Nd, corpus_dir: Path) -> None:
    nd("index", "-q", str(corpus_dir))
    line = nd("search", "  ").one_error_line()
    assert "the query is empty" in line and "question" not in line
    assert "the question is empty" in nd("ask", " ").one_error_line()


def test_counts_are_singular_for_one(nd: Nd, corpus_dir: Path) -> None:
    nd("index", "-q", str(corpus_dir / "volcano.txt"))
    r = nd("articles")
    assert r.out.rstrip().endswith("(1 passage)"), r.out
    assert nd("check").out == "index OK: 1 article, 1 passage\n"
    assert nd("reindex", "-q").out.startswith("Re-indexed 1 article (1 passage, ")


def test_unknown_model_path_fails_without_a_fallback_note(nd: Nd, tmp_path: Path) -> None:
    cfg = tmp_path / "model.toml"
    cfg.write_text(f'[embedding]\nmodel = "{tmp_path / "no-model"}"\n', encoding="utf-8")
    f = tmp_path / "a.txt"
    f.write_text("A title\n\nSome text here.\n", encoding="utf-8")
    line = nd("index", str(f), config=cfg).one_error_line()
    assert "no sentence-transformers model folder" in line
    assert "torch" not in line


def test_passages_show_no_meaningless_score(nd: Nd, corpus_dir: Path) -> None:
    nd("index", "-q", str(corpus_dir))
    for r in (nd("search", "volcano ash"), nd("ask", "Who won the bread prize in Lyon?")):
        assert r.code == 0
        assert "Top passages:" in r.out or " 1. " in r.out
        assert "[1.000]" not in r.out and "[0." not in r.out, r.out
    # the scores stay in --json
    hits = json.loads(nd("search", "--json", "volcano ash").out)
    assert all(isinstance(h["score"], float) for h in hits["passages"])


# -- 8. one rule for a relative Milvus Lite path; an empty store where an index was expected ------


@pytest.mark.skipif(not milvus_available(), reason="pip install -e '.[milvus]'")
def test_relative_milvus_path_is_inside_the_data_dir_for_migrate_and_config(
    nd: Nd, tmp_path: Path, corpus_dir: Path, hash_config: Path
) -> None:
    assert nd("index", "-q", str(corpus_dir)).code == 0
    r = nd("migrate", "-q", "--to", "milvus", "--uri", "moved.db")
    assert r.code == 0, r.err
    data = tmp_path / "data"
    assert f'uri = "{data / "moved.db"}"' in r.out
    # the config names the file as it was given on the command line: the same store
    cfg = tmp_path / "milvus.toml"
    cfg.write_text(
        hash_config.read_text() + '[store]\nbackend = "milvus"\nuri = "moved.db"\n',
        encoding="utf-8",
    )
    r = nd("stats", "--json", config=cfg)
    assert r.code == 0, r.err
    assert json.loads(r.out)["articles"] == 3


@pytest.mark.skipif(not milvus_available(), reason="pip install -e '.[milvus]'")
def test_an_empty_milvus_store_beside_a_faiss_index_is_an_error(
    nd: Nd, tmp_path: Path, corpus_dir: Path, hash_config: Path
) -> None:
    assert nd("index", "-q", str(corpus_dir)).code == 0
    cfg = tmp_path / "milvus.toml"
    cfg.write_text(
        hash_config.read_text() + '[store]\nbackend = "milvus"\nuri = "elsewhere.db"\n',
        encoding="utf-8",
    )
    for args in (["ask", "Who won the bread prize?"], ["stats"], ["articles"]):
        line = nd(*args, config=cfg).one_error_line()
        assert "holds no newsdesk index" in line, line
        assert "FAISS index of 3 articles" in line and "newsdesk migrate --to milvus" in line
    line = nd("index", str(corpus_dir / "volcano.txt"), config=cfg).one_error_line()
    assert "holds no newsdesk index" in line


def test_one_passage_embedded_is_singular(nd: Nd, tmp_path: Path) -> None:
    f = tmp_path / "short.txt"
    f.write_text("Short note\n\nThe ferry leaves at noon.\n", encoding="utf-8")
    r = nd("index", str(f))
    assert r.out.startswith("Indexed: 1 added, 0 updated, 0 unchanged (1 passage embedded, ")


# -- 16. README and --help: no ../shared, the eval question file, languages ---------------------

README = ROOT / "README.md"


def _all_help() -> dict[str, str]:
    """`newsdesk --help` and every `newsdesk COMMAND --help`, as printed."""
    import argparse

    from index.cli.parser import build_parser

    parser = build_parser()
    out = {"newsdesk": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub.format_help()
    return out


def test_readme_and_help_never_point_at_the_shared_folder() -> None:
    texts = {"README.md": README.read_text(encoding="utf-8"), **_all_help()}
    assert len(texts) > 15
    for name, text in texts.items():
        assert "../shared" not in text and "shared/eval" not in text, name


def test_eval_question_file_is_documented_with_a_working_example(nd: Nd, tmp_path: Path) -> None:
    from index.cli.parser import EVAL_QA_EXAMPLE
    from index.tools.evaluate import load_qa

    assert len(EVAL_QA_EXAMPLE) == 3
    readme = README.read_text(encoding="utf-8")
    assert "```\n" + "\n".join(EVAL_QA_EXAMPLE) + "\n```" in readme
    help_text = _all_help()["eval"]
    assert all(f"  {line}\n" in help_text for line in EVAL_QA_EXAMPLE)
    qa_file = tmp_path / "questions.jsonl"
    qa_file.write_text("\n".join(EVAL_QA_EXAMPLE) + "\n", encoding="utf-8")
    for qa in load_qa(qa_file):  # each gold answer is in the article it names
        text = (SAMPLES / f"{qa.article}.txt").read_text(encoding="utf-8")
        assert any(a in text for a in qa.answers), qa
    r = nd("eval", "-q", "--json", "--corpus", str(SAMPLES), "--qa", str(qa_file))
    assert r.code == 0, r.err
    assert json.loads(r.out)["questions"] == 3


def test_readme_says_the_model_is_english_only() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "**English only.**" in readme
    assert "other languages" in readme and "nothing is translated" in readme


def test_file_sources_are_shown_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As README's examples show them (`samples/…`): the path a person would type."""
    from index.cli.render import shown_path as _shown_path

    f = tmp_path / "corpus" / "volcano.txt"
    monkeypatch.chdir(tmp_path)
    assert _shown_path(str(f)) == "corpus/volcano.txt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _shown_path(str(f)) == str(f)  # outside the working directory: as stored
    assert _shown_path("https://example.com/a") == "https://example.com/a"
