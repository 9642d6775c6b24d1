"""Issue 19, part B: the everyday features a new user expects (each section names its item)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.cli.parser import build_parser
from tests.conftest import ARTICLES, Nd
from tests.fakes.http import LoopbackServer

# --------------------------------------------------------------------------- 9: --allow-host


def test_refusal_names_allow_host_option_and_env(nd: Nd) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        r = nd("index", srv.url("/story"))
        assert srv.requests == []
    assert r.code == 1
    line = r.err.splitlines()[0]
    assert f"--allow-host 127.0.0.1:{srv.port}" in line
    assert "NEWSDESK_ALLOW_HOSTS" in line and "fetch.allow_hosts" in line


def test_allow_host_option_indexes_a_local_server(nd: Nd) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        r = nd("index", "--allow-host", f"127.0.0.1:{srv.port}", srv.url("/story"))
        assert r.code == 0, r.err
        assert "1 added" in r.out
        # only the port named: another port of the same host is still refused
        r = nd("index", "--allow-host", "127.0.0.1", srv.url("/story"))
        assert r.code == 1 and "not on port" in r.err


def test_allow_hosts_environment_variable(nd: Nd, monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        monkeypatch.setenv("NEWSDESK_ALLOW_HOSTS", "intranet.example.org, 127.0.0.1:*")
        r = nd("index", srv.url("/story"))
    assert r.code == 0, r.err
    monkeypatch.setenv("NEWSDESK_ALLOW_HOSTS", "http://bad/")
    line = nd("stats").one_error_line()
    assert "NEWSDESK_ALLOW_HOSTS" in line and "'http://bad/'" in line


def test_allow_host_option_is_checked_and_in_help(
    nd: Nd, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["index", "--allow-host", "a b", "x"])
    assert e.value.code == 2
    assert "--allow-host" in capsys.readouterr().err
    index_help = build_parser()._subparsers._group_actions[0].choices["index"].format_help()  # type: ignore[union-attr]
    assert "--allow-host" in index_help and "NEWSDESK_ALLOW_HOSTS" in index_help


# --------------------------------------------------------------------------- 10: --text, --full


def test_article_text_prints_the_whole_stored_text(nd: Nd, corpus_dir: Path) -> None:
    nd("index", str(corpus_dir))
    r = nd("article", "--text", "Volcano erupts on remote island")
    assert r.code == 0
    body = ARTICLES["volcano.txt"].split("\n\n", 1)[1]
    assert r.out == body + "\n"
    r = nd("article", "--json", "--text", "Volcano erupts on remote island")
    data = json.loads(r.out)
    assert data["text"] == body
    # every quote's offsets point into exactly this text
    ans = json.loads(nd("ask", "--json", "When did the eruption reach the sea?").out)["answer"]
    assert data["text"][ans["start"] : ans["end"]] == ans["text"]
    # without --text: the opening only, no "text" in JSON
    assert "text" not in json.loads(nd("article", "--json", data["id"]).out)


def test_search_full_shows_whole_passages(nd: Nd, tmp_path: Path) -> None:
    folder = tmp_path / "long"
    folder.mkdir()
    tail = "The committee finally agreed on the harbour budget after midnight."
    words = " ".join(f"Sentence number {i} talks about the harbour plans." for i in range(12))
    (folder / "harbour.txt").write_text(f"Harbour plans\n\n{words} {tail}\n", encoding="utf-8")
    nd("index", str(folder))
    short = nd("search", "harbour budget").out
    full = nd("search", "--full", "harbour budget").out
    assert "…" in short and "after midnight" not in short
    assert "after midnight" in full and "…" not in full
    hits = json.loads(nd("search", "--json", "harbour budget").out)["passages"]
    assert any(tail in h["text"] for h in hits)


# --------------------------------------------------------------------------- 15: one JSON shape


def test_single_question_errors_are_json_objects_with_json(nd: Nd, corpus_dir: Path) -> None:
    r = nd("ask", "--json", "Anything indexed?")  # nothing indexed yet
    assert r.code == 1 and json.loads(r.out)["question"] == "Anything indexed?"
    assert "error" in json.loads(r.out)
    nd("index", str(corpus_dir))
    for cmd in ("ask", "search"):
        r = nd(cmd, "--json", "   ")
        assert r.code == 1, cmd
        data = json.loads(r.out)
        assert set(data) == {"question", "error"} and data["question"] == "   "
        assert "empty" in data["error"]
    # without --json: one line on stderr, as before
    assert "empty" in nd("ask", "   ").one_error_line()


def test_passages_not_chunks_in_every_json(nd: Nd, corpus_dir: Path) -> None:
    report = json.loads(nd("index", "--json", str(corpus_dir)).out)
    assert report["passages_embedded"] >= 3 and "chunks_embedded" not in report
    stats = json.loads(nd("stats", "--json").out)
    assert stats["passages"] >= 3 and "chunks" not in stats
    rows = json.loads(nd("articles", "--json").out)
    assert all(r["passages"] >= 1 and "chunk_count" not in r for r in rows)
    found = json.loads(nd("search", "--json", "--k", "2", "chess champion").out)
    assert found["question"] == "chess champion" and len(found["passages"]) == 2
    again = json.loads(nd("reindex", "--json").out)
    assert again["updated"] == 3 and again["passages_embedded"] == stats["passages"]
    for payload in (report, stats, rows, found, again):
        assert not [k for k in _keys(payload) if "chunk" in k and k != "chunk_id"]


def _keys(value: object) -> list[str]:
    """Every key of a JSON value, at any depth."""
    if isinstance(value, dict):
        return [k for k, v in value.items() for k in (k, *_keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_published_is_iso_8601_whoever_built_the_document(
    nd: Nd,
    settings,
    fake_embedder,  # type: ignore[no-untyped-def]
) -> None:
    from index.models import Document
    from index.pipeline import Pipeline

    with Pipeline(settings, fake_embedder) as pipe:
        pipe.add_documents(
            [
                Document(
                    "/x/a.txt",
                    "Tide tables",
                    "High tide came at noon on the pier.",
                    None,
                    "Tue, 5 Mar 2024 10:00:00 GMT",
                ),
                Document(
                    "/x/b.txt",
                    "Moon report",
                    "The moon was full over the pier.",
                    None,
                    "sometime last spring",
                ),
            ]
        )
        rows = {r.title: r.published for r in pipe.list_articles()}
    assert rows == {"Tide tables": "2024-03-05T10:00:00+00:00", "Moon report": None}


def test_remove_and_subscriptions_json(nd: Nd, corpus_dir: Path, tmp_path: Path) -> None:
    nd("index", str(corpus_dir))
    r = nd("remove", "--json", "Bakery wins bread prize", "Chess champion keeps her title")
    removed = json.loads(r.out)["removed"]
    assert [a["title"] for a in removed] == [
        "Bakery wins bread prize",
        "Chess champion keeps her title",
    ]
    r = nd("subscribe", "--json", str(corpus_dir), "--channel", "1234567890123456789")
    data = json.loads(r.out)
    assert data["subscribed"]["channel"] == "1234567890123456789"
    assert data["sync"]["passages_embedded"] >= 0
    r = nd("unsubscribe", "--json", str(corpus_dir))
    assert json.loads(r.out)["unsubscribed"]["target"] == str(corpus_dir)


# --------------------------------------------------------------------------- 13: Markdown as text

MARKDOWN = """---
title: Harbour news
---
# Harbour news

The **new ferry** to *Tern Island* leaves at [seven o'clock](https://ferries.example/t) daily.
Tickets cost __twelve euros__ and the `crossing` takes _forty minutes_.

| Route | Departure |
|-------|----------:|
| Tern  | 07:00     |

> The harbour master said the **pier** was rebuilt in 2019.
"""


def test_markdown_is_indexed_as_plain_text(nd: Nd, tmp_path: Path) -> None:
    folder = tmp_path / "md"
    folder.mkdir()
    (folder / "harbour.md").write_text(MARKDOWN, encoding="utf-8")
    assert nd("index", str(folder)).code == 0
    text = nd("article", "--text", "Harbour news").out
    assert text == (
        "The new ferry to Tern Island leaves at seven o'clock daily.\n"
        "Tickets cost twelve euros and the crossing takes forty minutes.\n\n"
        "Route · Departure\nTern · 07:00\n\n"
        "The harbour master said the pier was rebuilt in 2019.\n"
    )
    ans = json.loads(nd("ask", "--json", "When does the ferry to Tern Island leave?").out)
    quote = ans["answer"]
    assert quote["text"] == "The new ferry to Tern Island leaves at seven o'clock daily."
    stored = json.loads(nd("article", "--json", "--text", "Harbour news").out)["text"]
    assert stored[quote["start"] : quote["end"]] == quote["text"]
    for p in ans["passages"]:
        assert stored[p["start"] : p["end"]] == p["text"]
        for markup in ("**", "__", "](", "|", "---", "`"):
            assert markup not in p["text"]


def test_markdown_to_text_keeps_every_word() -> None:
    from index.ingest.markdown import markdown_to_text

    src = (
        "Snake_case_name and 2*3*4 stay; \\*escaped\\* too; `a **b**` is code.\n"
        "![a chart](c.png) <https://a.example/c> [ref][1] &amp; <b>bold</b>\n\n"
        "* one\n+ two\n\n```\nx = **y**\n```\n\n[1]: https://example.com\n"
    )
    assert markdown_to_text(src) == (
        "Snake_case_name and 2*3*4 stay; *escaped* too; a **b** is code.\n"
        "a chart https://a.example/c ref & bold\n\n- one\n- two\n\nx = **y**"
    )


# --------------------------------------------------------------------------- 11: duplicates, prune


def test_same_text_under_two_paths_is_one_article(nd: Nd, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    text = "A quiet harbour town voted to ban cars from its old centre on Sunday.\n"
    (a / "harbour-vote.txt").write_text(text, encoding="utf-8")
    (a / "copy-of-harbour-vote.txt").write_text(text, encoding="utf-8")  # another title
    r = nd("index", str(a))
    assert r.code == 0 and "1 added" in r.out and "1 duplicate" in r.out
    assert "duplicate, not indexed again" in r.err
    (b / "again.txt").write_text(text, encoding="utf-8")
    report = json.loads(nd("index", "--json", str(b)).out)
    assert report["added"] == 0 and len(report["duplicates"]) == 1
    assert "same text as" in report["duplicates"][0]
    assert len(json.loads(nd("articles", "--json").out)) == 1


def test_url_with_tracking_noise_is_one_article(nd: Nd) -> None:
    with LoopbackServer() as srv:
        srv.route("/story", body=ARTICLES["bakery.html"], content_type="text/html")
        base, allow = srv.url("/story"), f"--allow-host=127.0.0.1:{srv.port}"
        assert nd("index", allow, base).code == 0
        r = nd("index", allow, "--json", f"{base}?utm_source=rss&utm_medium=feed#comments")
        assert json.loads(r.out)["unchanged"] == 1
        assert [q.path for q in srv.requests] == ["/story", "/story"]
    rows = json.loads(nd("articles", "--json").out)
    assert [row["source"] for row in rows] == [base]


def test_prune_removes_articles_whose_files_are_gone(nd: Nd, corpus_dir: Path) -> None:
    elsewhere = corpus_dir.parent / "elsewhere.txt"
    elsewhere.write_text("Elsewhere\n\nA lighthouse keeper retired after forty years.\n")
    nd("index", str(corpus_dir), str(elsewhere))
    (corpus_dir / "chess.md").unlink()
    r = nd("index", str(corpus_dir))  # without --prune: kept
    assert len(json.loads(nd("articles", "--json").out)) == 4
    r = nd("index", "--prune", str(corpus_dir))
    assert r.code == 0 and "1 removed" in r.out
    titles = sorted(a["title"] for a in json.loads(nd("articles", "--json").out))
    assert titles == ["Bakery wins bread prize", "Elsewhere", "Volcano erupts on remote island"]
    r = nd("index", "--prune", str(elsewhere))
    assert r.code == 1 and "--prune needs a folder" in r.err


@pytest.mark.backends
def test_duplicates_on_every_backend(pipeline) -> None:  # type: ignore[no-untyped-def]
    from index.models import Document

    text = "The ferry to Tern Island was cancelled because of the storm."
    r = pipeline.add_documents(
        [Document("/x/a.txt", "Ferry", text), Document("/x/b.txt", "Ferry copy", text)]
    )
    assert (r.added, len(r.duplicates)) == (1, 1)
    r = pipeline.add_documents([Document("https://news.example/ferry", "Ferry", text)])
    assert (r.added, len(r.duplicates)) == (0, 1)  # same title and text as a stored article
    assert [a.source for a in pipeline.list_articles()] == ["/x/a.txt"]


# ------------------------------------------------------------------- 12: PDF, DOCX, charsets


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal text PDF (Helvetica, one text line per entry), written by hand: no PDF
    writer is needed to test reading."""
    objects: list[bytes] = []
    kids = []
    font = 3 + 2 * len(pages)
    for i, lines in enumerate(pages):
        page, content = 3 + 2 * i, 4 + 2 * i
        kids.append(f"{page} 0 R")
        ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
        for line in lines:
            ops.append(
                "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            )
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.insert(0, f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode())
    objects.insert(0, b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = None
    if title:
        objects.append(f"<< /Title ({title}) /CreationDate (D:20240305100000Z) >>".encode())
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "")
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_files_are_indexed(nd: Nd, tmp_path: Path) -> None:
    folder = tmp_path / "pdf"
    folder.mkdir()
    (folder / "lighthouse-report.pdf").write_bytes(
        make_pdf(
            [
                ["The lighthouse on Tern Island was repainted in May."],
                ["The keeper counted forty ships in the storm."],
            ],
            title="Lighthouse report",
        )
    )
    r = nd("index", "--json", str(folder))
    assert r.code == 0, r.err
    assert json.loads(r.out)["added"] == 1
    art = json.loads(nd("article", "--json", "--text", "Lighthouse report").out)
    assert art["published"] == "2024-03-05T10:00:00+00:00"
    assert art["text"] == (
        "The lighthouse on Tern Island was repainted in May.\n\n"
        "The keeper counted forty ships in the storm."
    )
    ans = json.loads(nd("ask", "--json", "How many ships did the keeper count?").out)
    assert ans["answer"]["text"] == "The keeper counted forty ships in the storm."


def test_docx_files_are_indexed(nd: Nd, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Harbour budget agreed", style="Title")
    document.add_paragraph("The council agreed the harbour budget after midnight.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Item", "Cost"), ("Pier", "2 million euros")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Work on the pier starts in June.")
    folder = tmp_path / "docx"
    folder.mkdir()
    document.save(str(folder / "council.docx"))
    assert nd("index", str(folder)).code == 0
    text = nd("article", "--text", "Harbour budget agreed").out
    assert text == (
        "The council agreed the harbour budget after midnight.\n\n"
        "Item · Cost\nPier · 2 million euros\n\n"
        "Work on the pier starts in June.\n"
    )


def test_non_utf8_text_is_decoded_and_its_encoding_reported(nd: Nd, tmp_path: Path) -> None:
    folder = tmp_path / "legacy"
    folder.mkdir()
    french = (
        "Le café du port\n\n"
        "Le café du village a rouvert ses portes à Noël. Les habitants, déjà nombreux dès "
        "l'aube, ont salué la façade rénovée. Les élèves de l'école voisine ont chanté devant "
        "la fenêtre où l'on servait autrefois le chocolat chaud.\n"
    )
    russian = (
        "Новый мост\n\n"
        "В субботу в городе открылся новый мост через реку. Жители собрались на набережной, "
        "чтобы посмотреть на церемонию. Мэр сказал, что строительство заняло три года.\n"
    )
    (folder / "cafe.txt").write_bytes(french.encode("cp1252"))
    (folder / "bridge.txt").write_bytes(russian.encode("koi8-r"))
    (folder / "utf16.txt").write_bytes("Tides\n\nHigh tide is at noon.".encode("utf-16"))
    r = nd("index", "--json", str(folder))
    assert r.code == 0, r.err
    encodings = {Path(k).name: v for k, v in json.loads(r.out)["encodings"].items()}
    assert encodings == {"cafe.txt": "cp1252", "bridge.txt": "koi8-r", "utf16.txt": "utf-16"}
    assert nd("article", "--text", "Le café du port").out == french.split("\n\n", 1)[1]
    assert nd("article", "--text", "Новый мост").out == russian.split("\n\n", 1)[1]


# --------------------------------------------------------------------------- 14: chat

RESIGN_Q = "Which move did the opponent resign on?"


def test_chat_prints_the_card_of_ask_and_shows_sources(nd: Nd, corpus_dir: Path) -> None:
    nd("index", str(corpus_dir))
    card = nd("ask", RESIGN_Q).out
    r = nd("chat", stdin=f"{RESIGN_Q}\n:sources 1\n:sources\n:sources 9\nhelp\n")
    assert r.code == 0
    assert r.out.startswith(card), r.out  # the same answer card, passages included
    rest = r.out[len(card) :]
    ask = json.loads(nd("ask", "--json", RESIGN_Q).out)
    top = ask["passages"][0]
    # :sources 1 shows the first passage whole (its text, not a 160-character start)
    assert f"[1] {top['title']}" in rest
    assert " ".join(top["text"].split()) in " ".join(rest.split())
    assert f" 2. {ask['passages'][1]['title']}" in rest  # :sources lists them
    assert f"from 1 to {len(ask['passages'])}" in rest  # :sources 9: out of range
    assert ":sources N" in rest and "Ask me a question" in rest  # help


def _pty_chat(tmp_path: Path, config: Path, keys: list[bytes]) -> str:
    """Run `newsdesk chat` on a pseudo-terminal, send each key sequence once the prompt is
    shown, and return everything it printed."""
    import os
    import pty
    import select
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "TERM": "xterm",
    }
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "index.cli", "--config", str(config)]
    argv += ["--data-dir", str(tmp_path / "data"), "chat"]
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""

    def read_until_prompt(count: int) -> None:
        nonlocal seen
        while seen.count(b"? ") < count:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, seen.decode(errors="replace")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk

    try:
        for n, key in enumerate(keys, 1):
            read_until_prompt(n)
            os.write(master, key)
        proc.wait(timeout=120)
        read_until_prompt(10**6)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return seen.decode(errors="replace")


def test_chat_has_line_editing_and_history(nd: Nd, corpus_dir: Path, tmp_path: Path) -> None:
    nd("index", str(corpus_dir))
    config = tmp_path / "hash.toml"
    left = b"\x1b[D"
    up = b"\x1b[A"
    # "Which move ... resign n?" with the cursor moved back to insert the missing "o"
    typed = RESIGN_Q.replace("on?", "n?").encode()
    out = _pty_chat(tmp_path, config, [typed + left * 2 + b"o\r", up + b"\r", b"quit\r"])
    assert out.count("move 61") >= 2, out  # the edited question, then recalled with Up
    assert "^[[" not in out
    history = (tmp_path / "xdg-state" / "newsdesk" / "chat_history").read_text()
    assert RESIGN_Q in history
    # the next session recalls the last question of this one
    out = _pty_chat(tmp_path, config, [up + b"\r", b"quit\r"])
    assert "move 61" in out
