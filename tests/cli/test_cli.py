"""The `newsdesk` CLI in-process, with the hash embedder: output, exit codes, bad input."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from index.cli import main
from tests.conftest import ARTICLES, HASH_CONFIG, Nd
from tests.fakes.http import LoopbackServer, closed_port


@pytest.fixture
def nd(nd: Nd, tmp_path: Path) -> Nd:
    """conftest's runner with loopback fetching allowed and a short time-out."""
    allow = tmp_path / "allow.toml"
    allow.write_text(HASH_CONFIG + '[fetch]\ntimeout = 1.5\nallow_hosts = ["127.0.0.1:*"]\n')
    return functools.partial(nd, config=allow)


def index_state(tmp_path: Path) -> bytes | None:
    db = tmp_path / "data" / "newsdesk.db"
    return db.read_bytes() if db.exists() else None


def test_index_ask_json_and_stats(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = nd("index", str(corpus_dir))
    assert r.code == 0 and "3 added" in r.out
    r = nd("ask", "--json", "Which move did the opponent resign on?")
    assert r.code == 0
    o = json.loads(r.out)
    assert o["question"] == "Which move did the opponent resign on?"
    assert "move 61" in o["answer"]["text"]
    assert o["answer"]["title"] == "Chess champion keeps her title"
    assert set(o["answer"]) >= {"text", "article", "title", "source"}
    for p in o["passages"]:
        assert set(p) >= {"text", "article", "title", "source", "score", "chunk_id"}
    r = nd("ask", "Which move did the opponent resign on?")
    assert r.code == 0 and "move 61" in r.out and "Chess champion keeps her title" in r.out
    r = nd("stats", "--json")
    s = json.loads(r.out)
    assert s["articles"] == 3 and s["passages"] >= 3 and s["model"] == "hash-embedder"
    assert s["bytes_on_disk"] > 0


def test_reindex_same_folder_reports_unchanged(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("index", str(corpus_dir))
    assert r.code == 0 and "0 added, 0 updated, 3 unchanged" in r.out
    # the same article twice in one call is one article
    one = str(corpus_dir / "volcano.txt")
    r = nd("index", "--json", one, one)
    assert json.loads(r.out)["unchanged"] == 1


def test_batch_mode_one_object_per_line(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd(
        "ask", "--json", "--k", "2", stdin="Where is the bakery?\n\n" + "x" * 10_000 + "\nchess?\n"
    )
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 4
    assert rows[0]["question"] == "Where is the bakery?" and len(rows[0]["passages"]) <= 2
    assert "error" in rows[1] and "empty" in rows[1]["error"]
    assert "error" in rows[2] and "too long" in rows[2]["error"]
    assert rows[3]["question"] == "chess?" and "error" not in rows[3]


def test_a_corrected_misspelling_is_shown_as_searched(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    typed, meant = "Which move did the oponent resign on?", "Which move did the opponent resign on?"
    r = nd("ask", typed)
    assert r.code == 0 and f"Searched for: “{meant}”" in r.out and "move 61" in r.out
    o = json.loads(nd("ask", "--json", typed).out)
    assert o["question"] == typed and o["searched_as"] == meant and "move 61" in o["answer"]["text"]
    assert "searched_as" not in json.loads(nd("ask", "--json", meant).out)  # nothing corrected
    rows = [
        json.loads(x) for x in nd("ask", "--json", stdin=f"{typed}\n{meant}\n").out.split("\n") if x
    ]
    assert [row.get("searched_as") for row in rows] == [meant, None]
    assert "Searched for" not in nd("ask", meant).out


def test_remove_and_articles(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("remove", "Bakery wins bread prize")
    assert r.code == 0 and "Removed: Bakery wins bread prize" in r.out
    r = nd("articles", "--json")
    assert sorted(a["title"] for a in json.loads(r.out)) == [
        "Chess champion keeps her title",
        "Volcano erupts on remote island",
    ]
    r = nd("remove", "no such article")
    assert r.code == 1 and "no article matches" in r.err


def test_article_card(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("article", "--json", "Chess champion keeps her title")
    card = json.loads(r.out)
    assert card["url"] == "https://news.example.com/chess"
    assert card["published"].startswith("2024-03-05")
    assert card["opening"].startswith("The world chess champion")


@pytest.mark.parametrize("question", ["", "   ", "x" * 10_000])
def test_bad_questions(nd, corpus_dir: Path, question: str) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("ask", question)
    assert r.code == 1
    assert r.err.startswith("newsdesk: error: the question is")
    assert len(r.err.strip().splitlines()) == 1


def test_ask_before_indexing(nd) -> None:  # type: ignore[no-untyped-def]
    r = nd("ask", "anything?")
    assert r.code == 1 and "run `newsdesk index" in r.err


def _bad_file(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"bad-{kind}.txt"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "blank":
        p.write_bytes(b"  \n\n \t\n")
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 8)
    return p


@pytest.mark.parametrize("kind", ["empty", "blank", "binary"])
def test_bad_files_leave_index_unchanged(nd, corpus_dir: Path, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    before = nd("stats", "--json").out
    r = nd("index", str(_bad_file(tmp_path, kind)), str(corpus_dir / "volcano.txt"))
    assert r.code == 1
    assert "bad-" in r.err and "nothing was indexed" in r.err
    assert nd("stats", "--json").out == before


def test_missing_path(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = nd("index", str(tmp_path / "nope"))
    assert r.code == 1 and "no such file or folder" in r.err
    assert index_state(tmp_path) is None


def test_urls_and_feeds(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = ARTICLES["bakery.html"]
    with LoopbackServer() as srv:
        srv.route("/story", body=page, content_type="text/html; charset=utf-8")
        srv.route("/missing", status=404, body="not here", content_type="text/html")
        srv.route("/slow", body=page, content_type="text/html", delay=4)
        srv.route("/doc.pdf", body=b"%PDF-1.4 ...", content_type="application/pdf")
        srv.route(
            "/empty.xml",
            body='<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
            "<link>http://x/</link><description>d</description></channel></rss>",
            content_type="application/rss+xml",
        )
        r = nd("index", srv.url("/story"))
        assert r.code == 0 and "1 added" in r.out, r.err
        assert nd("ask", "--json", "Who is the baker?").code == 0
        before = nd("stats", "--json").out
        for path, msg in [
            ("/missing", "404"),
            ("/slow", "timed out"),
            ("/doc.pdf", "content type"),
            ("/empty.xml", "no entries"),
        ]:
            r = nd("index", srv.url(path))
            assert r.code == 1, path
            assert msg in r.err, (path, r.err)
            assert len([ln for ln in r.err.splitlines() if "error" in ln]) == 1
        assert nd("stats", "--json").out == before
    r = nd("index", f"http://127.0.0.1:{closed_port()}/x")
    assert r.code == 1 and "connect" in r.err


def test_loopback_url_refused_by_default(tmp_path: Path, nd, hash_config: Path) -> None:  # type: ignore[no-untyped-def]
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        r = nd("index", srv.url("/story"), config=hash_config)
    assert r.code == 1 and "refused" in r.err and "allow_hosts" in r.err


def test_bad_config_is_named(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[retrieval]\nk = -1\n")
    r = nd("stats", config=cfg)
    assert r.code == 1 and "retrieval.k" in r.err


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "newsdesk ask" in out and "NEWSDESK_DATA_DIR" in out


def test_chat_reads_piped_lines(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("chat", stdin="Which move did the opponent resign on?\n\nquit\nnever asked\n")
    assert r.code == 0
    assert "move 61" in r.out and "never asked" not in r.out


def test_chat_help_and_thanks_never_quote(nd, corpus_dir: Path) -> None:  # type: ignore[no-untyped-def]
    nd("index", str(corpus_dir))
    r = nd("chat", stdin="help\nthanks\n42\n")
    assert r.code == 0
    assert "Ask me a question about the indexed articles" in r.out
    assert "welcome" in r.out and "doesn't look like a question" in r.out
    assert "“" not in r.out.replace("“What did Ma", "").replace("“When did", "")
    j = nd("ask", "--json", "thanks")
    o = json.loads(j.out)
    assert o["answer"] is None and o["smalltalk"] == "thanks" and o["passages"] == []


def test_crash_log_is_private_unpredictable_and_follows_no_symlink(
    nd: Nd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local user who plants a symlink at the old crash log name (or any name) gets nothing:
    the log is a new 0600 file with an unpredictable name, created with O_EXCL."""
    import os
    import stat
    import tempfile

    from index import cli

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp / f"newsdesk-crash-{os.getpid()}.log").symlink_to(victim)

    def boom(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "stats", boom)
    r = nd("stats")
    assert r.code == 1 and "unexpected error: RuntimeError: a bug" in r.err
    assert victim.read_text() == "precious\n"
    logs = [p for p in tmp.iterdir() if not p.is_symlink()]
    assert len(logs) == 1 and str(logs[0]) in r.err
    assert logs[0].name != f"newsdesk-crash-{os.getpid()}.log"
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert "RuntimeError: a bug" in logs[0].read_text()


OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # writes "rm -rf ~" to the clipboard
ESCAPES = [OSC52, "\x1b[2J", "\x1b[31m", "\x9b2J", "\x9d0;pwned\x9c", "\x1bP1$r\x1b\\", "\x08"]


def _hostile_corpus(tmp_path: Path) -> Path:
    d = tmp_path / "hostile"
    d.mkdir()
    title = "Evil " + "".join(ESCAPES) + "title"
    (d / "evil.md").write_text(
        f"---\ntitle: {title}\nurl: https://example.com/evil\n---\n"
        f"The lighthouse keeper {OSC52}counted ninety ships\x1b[8m hidden\x1b[0m\r in the "
        f"storm.\x9b1;31m Red.\x07 Bell.\n\nShe \u202eredro\u202c wrote it all down.\n",
        encoding="utf-8",
    )
    return d


def _no_controls(text: str, sequences: bool = True) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, (bad, text)
    assert "\u202e" not in text
    if sequences:  # text output drops the whole sequence, not just its ESC
        assert "52;c;" not in text and "[2J" not in text and "[31m" not in text


def test_terminal_escapes_in_article_data_never_reach_the_terminal(nd: Nd, tmp_path: Path) -> None:
    """A page or feed whose title and text carry terminal escape sequences (an OSC 52
    clipboard write, screen clears, colours, 8-bit CSI/OSC, carriage returns): every text
    output of the CLI strips them, JSON output escapes them."""
    d = _hostile_corpus(tmp_path)
    r = nd("index", str(d))
    assert r.code == 0, r.err
    _no_controls(r.out + r.err)
    q = "How many ships did the lighthouse keeper count?"
    runs = [
        nd("ask", q),
        nd("ask", stdin=q + "\n"),
        nd("search", "lighthouse ships"),
        nd("articles"),
        nd("article", str(d / "evil.md")),
        nd("chat", stdin=q + "\n"),
        nd("subscribe", str(d)),
        nd("subscriptions"),
        nd("sync"),
    ]
    for r in runs:
        assert r.code == 0, r.err
        _no_controls(r.out + r.err)
    assert "ninety ships" in runs[0].out and "Evil title" in runs[0].out
    assert "Evil title" in runs[3].out
    for args in (
        ("ask", "--json", q),
        ("articles", "--json"),
        ("article", "--json", str(d / "evil.md")),
    ):
        r = nd(*args)
        _no_controls(r.out, sequences=False)
        json.loads(r.out)
        assert "\\u001b]52;c;" in r.out  # the data itself is kept, escaped
        assert "\\u009b2J" in r.out or args[0] == "ask"  # C1 too (the title)


def _symlink_loops(folder: Path) -> None:
    """``a.txt -> a.txt``, ``b.md -> c.md -> b.md``, a folder loop and a loop in a subfolder."""
    (folder / "a.txt").symlink_to("a.txt")
    (folder / "b.md").symlink_to("c.md")
    (folder / "c.md").symlink_to("b.md")
    (folder / "loopdir").symlink_to("loopdir")
    sub = folder / "sub"
    sub.mkdir(exist_ok=True)
    (sub / "d.html").symlink_to("../sub/d.html")


def test_symlink_loops_in_a_folder_are_skipped_with_a_note(nd: Nd, corpus_dir: Path) -> None:
    """A symlink loop never aborts indexing a folder (Python 3.11's Path.resolve() raises
    RuntimeError on one): the loops are skipped with a note, the other files are indexed."""
    _symlink_loops(corpus_dir)
    r = nd("index", str(corpus_dir))
    assert r.code == 0, r.err
    assert "3 added" in r.out
    notes = [line for line in r.err.splitlines() if "symlink loop" in line]
    assert len(notes) == 4, r.err
    assert all(line.startswith("newsdesk: skipped ") for line in notes)
    # named directly: one line, no traceback
    for name in ("a.txt", "b.md"):
        r = nd("index", str(corpus_dir / name))
        assert r.code == 1 and r.err.startswith("newsdesk: error: ") and "symlink loop" in r.err
        r = nd("remove", str(corpus_dir / name))
        assert "no article matches" in r.one_error_line()
    r = nd("subscribe", str(corpus_dir / "loopdir"))
    assert "symlink loop" in r.one_error_line()


def test_run_hands_its_options_to_python_m_bot() -> None:
    """`newsdesk run` execs `python -m bot` (the engine never imports the bot): the options of
    the command line go with it, before or after `run`; nothing else does."""
    import sys

    from index.cli.commands_tools import bot_command
    from index.cli.parser import build_parser

    head = [sys.executable, "-P", "-m", "bot"]
    args = build_parser().parse_args(["run"])
    assert bot_command(args) == head
    args = build_parser().parse_args(["--config", "c.toml", "-vv", "run", "--check", "-q"])
    assert bot_command(args) == [*head, "--config", "c.toml", "-v", "-v", "--quiet", "--check"]
    args = build_parser().parse_args(["run", "--data-dir", "d"])
    assert bot_command(args) == [*head, "--data-dir", "d"]


def test_every_command_of_the_parser_runs_a_command_function() -> None:
    """COMMANDS imports each command's module only when it runs: every name must resolve."""
    import argparse
    import inspect

    from index import cli
    from index.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)
    for name, command in cli.COMMANDS.items():
        assert isinstance(command, cli.LazyCommand), name
        assert inspect.isfunction(command.load()), name


def test_run_puts_this_checkout_first_for_the_bot_but_never_site_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`python -P -m bot` must run the bot beside this `index`: a checkout goes first on
    PYTHONPATH; site-packages is on the path anyway and must not precede the stdlib."""
    import os
    import site

    import index
    from index.cli.commands_tools import bot_env

    root = str(Path(index.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", root]))
    assert bot_env()["PYTHONPATH"] == os.pathsep.join([root, "/elsewhere"])
    monkeypatch.setattr(site, "getsitepackages", lambda: [root])
    assert bot_env()["PYTHONPATH"] == os.pathsep.join(["/elsewhere", root])  # as it was
