"""Hostile input, property-tested: files, documents and questions never crash or corrupt.

Complements tests/ingest/test_sources.py (extraction of small inputs) and
tests/bot/test_formatting.py (Discord escaping of arbitrary text): here whole files go
through ``read_file``, hostile documents through indexing (then ``Pipeline.check()``),
hostile questions through ``Pipeline.ask`` and the CLI (never a traceback, never a change
to the index), a 50 MB file meets ``fetch.max_file_bytes``, and a hostile article title
reaches Discord escaped.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.config import FetchSettings
from index.errors import InvalidQuestionError, SourceError
from index.ingest.extract import decode_detected, normalise_newlines
from index.ingest.files import read_file
from index.models import Answer, Document
from index.pipeline import Pipeline
from index.storage.local import GEN_DIR
from tests.bot.test_formatting import assert_embed_limits, assert_safe
from tests.conftest import DiscordWorld, Nd
from tests.fakes.corpus import open_pipeline, write_corpus

StartBot = Callable[..., AbstractAsyncContextManager[Any]]

# -- building blocks -------------------------------------------------------------------------------

TRICKY = [
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",  # zero-width joiner (emoji sequences)
    "\u2060",
    "\ufeff",  # BOM / zero-width no-break space
    "\u202e",  # right-to-left override
    "\u202d",
    "\u2066",
    "\u2069",
    "\u200f",  # right-to-left mark
    "שלום עולם",
    "مرحبا بالعالم",
    "😀",
    "👩‍👩‍👧‍👦",
    "🏳️‍🌈",
    "e\u0301",  # combining accent
    "\u0000",
    "\r\n",
    "\r",
    "\n\n",
    "\t",
    "\x0b",
    "\x1b[31m",  # a terminal escape
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@&98765>",
    "<#555>",
    "**bold**",
    "`code`",
    "```\nblock\n```",
    "[link](https://evil.example/x)",
    "||spoiler||",
    "> quote",
    "# heading",
    ". ",
    "? ",
    "…",
    "Mr. ",
    "word ",
]
tricky_text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=20)), max_size=60).map(
    "".join
)
huge_line = st.builds(
    lambda part, n: part * n, st.sampled_from(["x", "ab ", "é", "😀"]), st.integers(10_000, 200_000)
)
nested_html = st.builds(
    lambda tags, text, close: (
        "".join(f"<{t}>" for t in tags)
        + text
        + ("".join(f"</{t}>" for t in reversed(tags)) if close else "")
    ),
    st.lists(
        st.sampled_from(["div", "p", "b", "table", "tr", "td", "ul", "li", "span", "x"]),
        max_size=3000,
    ),
    tricky_text,
    st.booleans(),
)
malformed_html = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<div",
            "<<>>",
            "<!--",
            "-->",
            "<script>",
            "</script>",
            "<![CDATA[",
            "]]>",
            "&amp",
            "&#xD800;",
            "&#0;",
            "<title>",
            "</title>",
            "<meta charset='klingon'>",
            "<br/>",
            "<style>",
            "</style>",
            "<a href='javascript:alert(1)'>",
            "text words here. ",
        ]
    ),
    max_size=200,
).map("".join)


def file_contents() -> st.SearchStrategy[bytes]:
    as_bytes = st.one_of(
        st.binary(max_size=5000),
        tricky_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
        huge_line.map(str.encode),
        st.builds(lambda a, b: (a + "\n\n" + b).encode(), tricky_text, huge_line),
    )
    return as_bytes


def html_contents() -> st.SearchStrategy[bytes]:
    return st.one_of(
        nested_html.map(str.encode),
        malformed_html.map(str.encode),
        st.binary(max_size=3000),
        st.builds(
            lambda t, b: (
                f"<html><head><title>{t}</title></head><body><p>{b}</p></body></html>".encode(
                    "utf-8", "surrogatepass"
                )
            ),
            tricky_text,
            tricky_text,
        ),
    )


# -- files -----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=file_contents(), suffix=st.sampled_from([".txt", ".md"]))
def test_text_files_raise_only_source_errors_and_stay_verbatim(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"hostile{suffix}"
        path.write_bytes(data)
        try:
            doc = read_file(path, FetchSettings())
        except SourceError as e:
            assert e.reason and "\n" not in e.reason
            return
    assert doc.title.strip() and doc.text.strip()
    if suffix == ".txt":  # plain text is kept verbatim: a slice of the decoded file
        raw, _encoding = decode_detected(data, "x")
        assert doc.text in normalise_newlines(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=html_contents())
def test_html_files_raise_only_source_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hostile.html"
        path.write_bytes(data)
        try:
            doc = read_file(path, FetchSettings())
        except SourceError as e:
            assert e.reason and "\n" not in e.reason
            return
    assert doc.title.strip() and doc.text.strip()


# -- documents through the whole write path --------------------------------------------------------


def _source(title: str, body: str) -> str:
    digest = hashlib.sha1((title + body).encode("utf-8", "surrogatepass")).hexdigest()
    return f"/hostile/{digest}.txt"


hostile_doc = st.builds(
    lambda title, body, tail: Document(
        source=_source(title, body),
        title=title,
        text=body + " The lighthouse keeper counted nine ships. " + tail,
    ),
    tricky_text,
    st.one_of(tricky_text, huge_line.map(lambda s: s[:30_000])),
    tricky_text,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(hostile_doc, min_size=1, max_size=4))
def test_hostile_documents_index_consistently(docs: list[Document]) -> None:
    with tempfile.TemporaryDirectory() as d, open_pipeline(Path(d) / "data") as p:
        report = p.add_documents(docs)
        # the same text twice is one article (duplicates are reported, not indexed)
        assert report.added + len(report.duplicates) == len({doc.article_id for doc in docs})
        assert p.check() == []
        duplicates = {d.split(": same text as ")[0] for d in report.duplicates}
        for doc in docs:
            if doc.source in duplicates:
                continue
            art = p.get_article(doc.source)
            assert "\x00" not in art.text + art.title and art.title.strip()
        ans = p.ask("How many ships did the lighthouse keeper count?")
        for h in ans.passages:  # offsets stay true, whatever the characters
            assert p.get_article(h.article_id).text[h.start : h.end] == h.text
        if ans.quote is not None:
            art = p.get_article(ans.quote.article_id)
            assert art.text[ans.quote.start : ans.quote.end] == ans.quote.text


# -- a 50 MB file ----------------------------------------------------------------------------------


def sparse_file(path: Path, size: int, head: bytes = b"Big\n\nIt is big.\n") -> Path:
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)  # sparse: instant, takes no disk space
    return path


def fingerprint(data: Path) -> tuple[int, dict[str, str], list[int], dict[str, int]]:
    """What a write would change: generation, article hashes, passage ids, generation files."""
    with open_pipeline(data) as p:
        gen, hashes, ids = p.store.generation(), p.store.hashes(), p.store.chunk_ids()
    files = {
        str(f.relative_to(data)): f.stat().st_mtime_ns
        for f in (data / GEN_DIR).rglob("*")
        if f.is_file()
    }
    return gen, hashes, ids, files


def test_a_50_mb_file_is_refused_by_size(nd: Nd, tmp_path: Path, corpus_dir: Path) -> None:
    big = sparse_file(tmp_path / "big.txt", 50 * 1024 * 1024)
    assert nd("index", str(corpus_dir)).code == 0
    before = fingerprint(tmp_path / "data")
    r = nd("index", str(big))
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert lines[0] == f"newsdesk: error: {big}: file is larger than 20 MB (fetch.max_file_bytes)"
    assert lines[-1] == "newsdesk: nothing was indexed"
    assert fingerprint(tmp_path / "data") == before
    # inside a folder it is skipped with a note and the rest is indexed
    sparse_file(corpus_dir / "huge.md", 50 * 1024 * 1024)
    r = nd("index", str(corpus_dir))
    assert r.code == 0 and "3 unchanged" in r.out
    assert "huge.md: file is larger than 20 MB (fetch.max_file_bytes)" in r.err


# -- questions -------------------------------------------------------------------------------------

hostile_question = st.one_of(
    tricky_text,
    st.text(max_size=300),
    st.builds(lambda s, n: s * n, st.sampled_from(TRICKY), st.integers(1, 3000)),
    st.just("x" * 10_000),
    st.just("@everyone " * 1000),
    st.just("`" * 10_000),
    st.just("<@123> " * 1400),
)


@pytest.fixture(scope="module")
def asked_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("hostile-questions")
    corpus = write_corpus(root / "corpus", range(12))
    with open_pipeline(root / "data") as p:
        p.add([str(corpus)])
        yield p


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=hostile_question)
def test_hostile_questions_through_pipeline_ask(asked_pipeline: Pipeline, question: str) -> None:
    p = asked_pipeline
    before = fingerprint(p.data_dir)
    try:
        ans = p.ask(question)
    except InvalidQuestionError as e:
        assert "question" in str(e) and "\n" not in str(e)
    else:
        assert isinstance(ans, Answer)
        if ans.quote is not None:
            art = p.get_article(ans.quote.article_id)
            assert art.text[ans.quote.start : ans.quote.end] == ans.quote.text
    try:
        p.search(question)
    except InvalidQuestionError:
        pass
    assert fingerprint(p.data_dir) == before


CLI_QUESTIONS = [
    "**Who** opened the _exhibition_ in `Town3`?",
    "```\nWho opened the exhibition?\n```",
    "<@123456789012345678> who opened the exhibition in Town3?",
    "@everyone @here who opened it?",
    "Who opened it? \u202eedisni\u202c \u200b\u200b 😀👩‍👩‍👧‍👦",
    "שלום? مرحبا?",
    "\x1b[31mred\x1b[0m?",
    "x" * 10_000,
    "?" * 3_999,
]


def test_hostile_questions_through_the_cli(nd: Nd, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", range(6))
    assert nd("index", str(corpus)).code == 0
    before = fingerprint(tmp_path / "data")
    for q in CLI_QUESTIONS:
        r = nd("ask", "--json", q)
        if r.code == 0:
            assert json.loads(r.out)["question"]
        else:  # with --json, the error is a JSON object, as in batch mode
            error = json.loads(r.out)
            assert r.code == 1 and set(error) == {"question", "error"}
            assert error["question"] == q and error["error"].startswith("the question is")
        assert nd("ask", q).code == r.code
    # batch mode: one JSON object per input line, in order, errors in place
    lines = [q.replace("\n", " ") for q in CLI_QUESTIONS] + ["", "\u200b", "\x00"]
    r = nd("ask", "--json", stdin="\n".join(lines) + "\n")
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["question"] for row in rows] == lines
    assert any("error" in row for row in rows) and any("answer" in row for row in rows)
    assert fingerprint(tmp_path / "data") == before


# -- Discord: a hostile title reaches the channel escaped ------------------------------------------

EVIL_TITLE = "**@everyone** <@123456789012345678> [click](https://evil.example/x) ||`spoiler`||"


async def test_hostile_title_and_text_render_escaped_in_discord(
    discord_world: DiscordWorld, start_bot: StartBot, bot_pipeline: Pipeline
) -> None:
    fake, ch = discord_world.fake, discord_world.channel
    bot_pipeline.add_documents(
        [
            Document(
                "https://news.example.com/evil",
                EVIL_TITLE,
                "@here the lighthouse keeper counted **nine** ships <@&42> at dawn. "
                "Then he went home.",
                url="https://news.example.com/evil",
            )
        ]
    )
    async with start_bot():
        await fake.send_message(
            ch,
            discord_world.user,
            "How many ships did the lighthouse keeper count?",
            mention_bot=True,
        )
        await fake.wait_for(lambda: fake.messages[ch], timeout=5)
        (reply,) = fake.messages[ch]
        assert reply["mentions"] == [] and not reply["mention_everyone"]
        assert reply["mention_roles"] == []
        embed = reply["embeds"][0]
        description = embed["description"]
        assert "lighthouse keeper" in description
        for text in [embed.get("title", ""), description]:
            assert_safe(text, {"https://news.example.com/evil"})
        assert "\\[click\\](https://evil.example/x)" in description  # escaped: not a link
        import discord

        assert_embed_limits(discord.Embed.from_dict(embed))
        # the title as an /article autocomplete choice: Discord shows choice names as plain
        # text (no Markdown, no pings), so they only have to fit in 100 characters
        choices = await fake.autocomplete(
            "article",
            {"query": "click"},
            "query",
            user_id=discord_world.user,
            guild_id=discord_world.guild,
            channel_id=ch,
        )
        assert any("everyone" in c["name"] for c in choices)
        assert all(1 <= len(c["name"]) <= 100 for c in choices)
    assert fake.errors == [] and fake.unexpected == []
