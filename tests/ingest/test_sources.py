"""index.ingest.sources and .extract: files, folders, web pages and feeds into Documents."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.config import FetchSettings
from index.errors import SourceError
from index.ingest.extract import (
    decode_file,
    decode_http,
    from_html,
    from_markdown,
    from_text,
    normalise_date,
    normalise_newlines,
)
from index.ingest.files import iter_folder, title_from_name
from index.ingest.sources import Collected, collect
from tests.fakes.http import LoopbackServer, closed_port, repeat

ALLOW = FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=2)
SUPPORTED = ".txt, .md, .markdown, .html, .htm, .pdf, .docx"

ARTICLE_HTML = """<!doctype html>
<html><head><title>{title} | The Daily Site</title>
<meta name="date" content="2024-03-05"></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact us</a></nav>
<article>
<h1>{title}</h1>
<p>{first} The decision followed months of debate in the council chamber and a public
consultation that drew more than four thousand responses from residents.</p>
<p>Engineers expect construction to begin next spring. The project will be paid for by a
mix of regional funds and a loan from the national infrastructure bank.</p>
</article>
<footer>Copyright 2024 The Daily Site. All rights reserved.</footer>
</body></html>"""


def article(title: str, first: str) -> str:
    return ARTICLE_HTML.format(title=title, first=first)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_bytes(data.encode("utf-8"))
    return path


def run(*inputs: str | Path, fetch: FetchSettings = ALLOW) -> Collected:
    return collect([str(i) for i in inputs], fetch)


def reasons(errors: list[SourceError]) -> list[str]:
    return [e.reason for e in errors]


@pytest.fixture
def srv() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


# --------------------------------------------------------------------------- extract: text


def test_from_text_title_and_verbatim_body() -> None:
    raw = (
        "\ufeffCouncil approves bridge\r\n\r\n\r\n"
        "First line  with  spaces.\r\n\tIndented\r\n\r\nLast.  \r\n\r\n"
    )
    title, text = from_text(raw, "Fallback")
    assert title == "Council approves bridge"
    assert text == "First line  with  spaces.\n\tIndented\n\nLast."


def test_from_text_without_title_line() -> None:
    raw = "A first line\nimmediately followed by text.\n"
    assert from_text(raw, "Fallback") == ("Fallback", "A first line\nimmediately followed by text.")


def test_from_text_long_first_line_is_not_a_title() -> None:
    long = "word " * 60
    title, text = from_text(f"{long}\n\nbody", "Fallback")
    assert title == "Fallback"
    assert text.startswith("word word")


def test_from_text_single_line() -> None:
    assert from_text("\n\n  Only line  \n\n", "Fb") == ("Fb", "  Only line")


@pytest.mark.parametrize("raw", ["", "   ", "\n\n\t\n", "\ufeff \r\n"])
def test_from_text_empty(raw: str) -> None:
    with pytest.raises(SourceError, match="no text"):
        from_text(raw, "Fb", source="x.txt")


def test_normalise_newlines_only_touches_line_endings() -> None:
    assert normalise_newlines("\ufeffa\r\nb\rc\u200bd\ufeff") == "a\nb\nc\u200bd\ufeff"


# --------------------------------------------------------------------------- extract: markdown


def test_markdown_front_matter() -> None:
    raw = (
        "---\ntitle: Chess champion keeps her title\nurl: https://news.example.com/chess\n"
        "date: 2024-03-05\n---\n\nThe champion won in **Madrid**.\n\n## Details\n\nMove 61.\n"
    )
    title, text, url, date = from_markdown(raw, "Fb")
    assert title == "Chess champion keeps her title"
    assert url == "https://news.example.com/chess"
    assert date == "2024-03-05"
    assert text == "The champion won in Madrid.\n\nDetails\n\nMove 61."  # as a reader sees it


def test_markdown_front_matter_alternative_keys_and_bad_yaml() -> None:
    raw = (
        "---\ntitle: [unclosed\nlink: 'https://e.example/x'\n"
        "published: Tue, 02 Jan 2024 10:00:00 GMT\n---\nBody."
    )
    title, text, url, date = from_markdown(raw, "Fb")
    assert (title, text, url, date) == (
        "[unclosed",
        "Body.",
        "https://e.example/x",
        "2024-01-02T10:00:00+00:00",
    )


def test_markdown_heading_is_title() -> None:
    raw = "\n# Library reopens #\n\nThe library reopened on Monday.\n\n# Second heading\n"
    title, text, url, date = from_markdown(raw, "Fb")
    assert title == "Library reopens"
    assert text == "The library reopened on Monday.\n\nSecond heading"
    assert url is None and date is None


def test_markdown_without_title_uses_fallback() -> None:
    title, text, _url, _date = from_markdown("Just *text*.\n", "Fb")
    assert (title, text) == ("Fb", "Just text.")


def test_markdown_front_matter_title_drops_repeated_heading() -> None:
    raw = "---\ntitle: Same\n---\n# Same\n\nBody."
    assert from_markdown(raw, "Fb")[:2] == ("Same", "Body.")


def test_markdown_non_http_url_ignored() -> None:
    raw = "---\ntitle: T\nurl: javascript:alert(1)\n---\nBody."
    assert from_markdown(raw, "Fb")[2] is None


def test_markdown_thematic_breaks_are_not_front_matter() -> None:
    raw = "---\nA paragraph between rules.\n---\nMore."
    assert from_markdown(raw, "Fb")[:2] == ("Fb", "A paragraph between rules.\nMore.")


def test_markdown_only_front_matter_is_empty() -> None:
    with pytest.raises(SourceError, match="no text"):
        from_markdown("---\ntitle: Nothing\n---\n\n", "Fb")


# --------------------------------------------------------------------------- extract: HTML


def test_from_html_article() -> None:
    html = article("Bridge vote passes", "The council voted 7 to 2 on Tuesday.")
    title, text, url, date = from_html(html, "https://news.example.com/bridge", "Fb")
    assert title == "Bridge vote passes"
    assert text.startswith("The council voted 7 to 2 on Tuesday.")
    assert "\n\nEngineers expect construction" in text  # paragraphs separated by a blank line
    assert "Home" not in text and "Copyright" not in text
    assert url == "https://news.example.com/bridge"
    assert date == "2024-03-05"


def test_from_html_tiny_page_falls_back_to_lxml() -> None:
    title, text, url, _date = from_html("<p>Hello there</p><p>General Kenobi</p>", None, "Fb")
    assert (title, text, url) == ("Fb", "Hello there\n\nGeneral Kenobi", None)


def test_from_html_bytes_with_meta_charset() -> None:
    html = "<html><head><meta charset='windows-1252'><title>Caf\xe9</title></head><body>" + (
        "<p>Caf\xe9 cr\xe8me is served daily at the corner of the market square.</p>"
    )
    title, text, _url, _date = from_html(html.encode("cp1252"), None, "Fb")
    assert title == "Café"
    assert "Café crème" in text


@pytest.mark.parametrize(
    "html",
    ["", "   ", "<html></html>", "<script>var x = 1;</script>", "<html><body>  </body></html>"],
)
def test_from_html_without_text(html: str) -> None:
    with pytest.raises(SourceError) as err:
        from_html(html, None, "Fb", source="page.html")
    assert err.value.source == "page.html"
    assert "text" in err.value.reason


def test_from_html_deeply_nested() -> None:
    html = "<div>" * 1000 + "<p>deep text</p>" + "</div>" * 1000
    assert from_html(html, None, "Fb")[1] == "deep text"
    # past the parser's nesting limit the text is lost, but nothing else than SourceError
    for depth in (5000, 100_000):
        with pytest.raises(SourceError, match="no text"):
            from_html("<div><b>" * depth + "x", None, "Fb")


nested_html = st.recursive(
    st.text(max_size=30),
    lambda children: st.builds(
        lambda tag, inner, tail: f"<{tag}>{''.join(inner)}</{tag}>{tail}",
        st.sampled_from(["p", "div", "b", "table", "td", "li", "script", "h1", "x-y", "a"]),
        st.lists(children, max_size=4),
        st.text(max_size=10),
    ),
    max_leaves=30,
)


@settings(max_examples=40, deadline=None)
@given(doc=st.one_of(st.text(max_size=200), st.binary(max_size=200), nested_html))
def test_from_html_raises_only_source_error(doc: str | bytes) -> None:
    try:
        title, text, _url, _date = from_html(doc, None, "Fb")
    except SourceError:
        return
    assert title and text.strip()


@settings(max_examples=100, deadline=None)
@given(raw=st.text(max_size=300))
def test_from_text_raises_only_source_error_and_keeps_text(raw: str) -> None:
    try:
        title, text = from_text(raw, "Fb")
    except SourceError:
        assert not raw.replace("\ufeff", "", 1).strip()
        return
    assert title and text.strip()
    assert text in normalise_newlines(raw)  # verbatim: a slice of the input


@settings(max_examples=100, deadline=None)
@given(raw=st.text(max_size=300))
def test_from_markdown_raises_only_source_error(raw: str) -> None:
    try:
        _title, text, _url, _date = from_markdown(raw, "Fb")
    except SourceError:
        return
    assert text.strip() and text == text.strip("\n")  # plain text (markup removed), trimmed


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_decode_file_raises_only_source_error(data: bytes) -> None:
    try:
        decode_file(data, "x.txt")
    except SourceError as e:
        assert e.reason in ("looks like a binary file",) or e.reason.startswith("not UTF-8 text")


def test_decode_http() -> None:
    assert decode_http("café".encode("latin-1"), "iso-8859-1") == "café"
    assert decode_http(b"caf\xe9", None) == "caf\ufffd"
    assert decode_http(b"\xef\xbb\xbfx\r\ny", "iso-8859-1") == "x\ny"  # BOM wins
    assert decode_http(b"caf\xc3\xa9", "no-such-charset") == "café"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-03-05T10:20:30Z", "2024-03-05T10:20:30+00:00"),
        ("2024-03-05T10:20:30+02:00", "2024-03-05T10:20:30+02:00"),
        ("Tue, 02 Jan 2024 10:00:00 +0100", "2024-01-02T10:00:00+01:00"),
        ("March 5, 2024", "2024-03-05"),
        (dt.date(2024, 3, 5), "2024-03-05"),
        (time.struct_time((2024, 1, 2, 3, 4, 5, 1, 2, 0)), "2024-01-02T03:04:05+00:00"),
        ("yesterday", None),
        ("2024", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_normalise_date(value: object, expected: str | None) -> None:
    assert normalise_date(value) == expected


# --------------------------------------------------------------------------- files


def test_title_from_name() -> None:
    assert title_from_name("my-first_post") == "My first post"
    assert title_from_name("NASA--report__2024") == "NASA report 2024"


def test_txt_file(tmp_path: Path) -> None:
    f = write(tmp_path / "notes" / "volcano-news.txt", "Volcano erupts\r\n\r\nAsh  rose.\r\n")
    res = run(f)
    assert res.errors == [] and res.warnings == []
    (doc,) = res.documents
    assert doc.source == str(f.resolve())
    assert os.path.isabs(doc.source)
    assert (doc.title, doc.text, doc.url, doc.published) == (
        "Volcano erupts",
        "Ash  rose.",
        None,
        None,
    )


def test_txt_file_title_fallback_from_name(tmp_path: Path) -> None:
    f = write(tmp_path / "city_council-minutes.txt", "No title here\njust text.")
    (doc,) = run(f).documents
    assert doc.title == "City council minutes"
    assert doc.text == "No title here\njust text."


def test_md_file_with_front_matter(tmp_path: Path) -> None:
    f = write(
        tmp_path / "chess.md",
        "---\ntitle: Chess champion\nurl: https://news.example.com/chess\ndate: 2024-03-05\n---\n"
        "She won.\n",
    )
    (doc,) = run(f).documents
    assert (doc.title, doc.text, doc.url, doc.published) == (
        "Chess champion",
        "She won.",
        "https://news.example.com/chess",
        "2024-03-05",
    )


def test_html_file(tmp_path: Path) -> None:
    html = article("Bakery wins prize", "A small bakery in Lyon won the prize.").replace(
        "</head>", '<link rel="canonical" href="https://bakery.example/prize"></head>'
    )
    f = write(tmp_path / "bakery.html", html)
    (doc,) = run(f).documents
    assert doc.title == "Bakery wins prize"
    assert doc.text.startswith("A small bakery in Lyon won the prize.")
    assert doc.url == "https://bakery.example/prize"
    assert doc.published == "2024-03-05"


def test_relative_path_and_duplicates_collected_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = write(tmp_path / "a" / "one.txt", "One\n\nText one.")
    monkeypatch.chdir(tmp_path)
    res = run("a/one.txt", f, "a/../a/one.txt", tmp_path / "a")
    assert [d.source for d in res.documents] == [str(f.resolve())]
    assert res.errors == [] and res.warnings == []


def test_folder_recursive_sorted_and_skipping(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "B\n\nText b.")
    write(tmp_path / "a.md", "# A\n\nText a.")
    write(tmp_path / "sub" / "c.html", article("C page", "Text c."))
    write(tmp_path / "sub" / "deeper" / "d.markdown", "Text d.")
    write(tmp_path / "sub" / "e.HTM", "<p>Text e.</p>")
    write(tmp_path / ".hidden.txt", "Hidden\n\nno.")
    write(tmp_path / ".git" / "x.txt", "Hidden dir\n\nno.")
    write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\0\0")
    write(tmp_path / "notes.odt", b"PK\x03\x04")
    expected = ["a.md", "b.txt", "sub/c.html", "sub/deeper/d.markdown", "sub/e.HTM"]
    found = [p.relative_to(tmp_path).as_posix() for p in iter_folder(tmp_path)]
    assert found == expected
    res = run(tmp_path)
    assert res.errors == [] and res.warnings == []
    assert [d.title for d in res.documents] == ["A", "B", "C page", "D", "E"]
    assert res.documents[2].text.startswith("Text c.")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "file is empty"),
        ("blank.txt", b"  \n\t\n\r\n", "no text"),
        ("blank.md", b"\n\n", "no text"),
        ("blank.html", b"<html><body> </body></html>", "no text"),
        ("binary.txt", b"GIF89a\x00\x01\x02\x03 some text", "looks like a binary file"),
        ("controls.md", bytes(range(1, 32)) * 4, "looks like a binary file"),
        ("broken.pdf", b"%PDF-1.4 then nothing of a PDF", "not a readable PDF"),
        ("broken.docx", b"PK\x03\x04 then nothing of a zip", "not a readable DOCX file"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    bad = write(tmp_path / "in" / name, data)
    good = write(tmp_path / "in" / "zz-good.txt", "Good\n\nGood text.")
    # named explicitly: an error
    res = run(bad)
    assert res.documents == [] and res.warnings == []
    (err,) = res.errors
    assert err.source == str(bad.resolve())
    assert err.reason.startswith(reason)
    # inside a folder: a warning, the rest is collected
    res = run(tmp_path / "in")
    assert res.errors == []
    assert [d.source for d in res.documents] == [str(good.resolve())]
    (warn,) = res.warnings
    assert warn.source == str(bad.resolve()) and warn.reason.startswith(reason)


def test_oversize_file(tmp_path: Path) -> None:
    big = write(tmp_path / "big.txt", "Big\n\n" + "x" * 1_100_000)
    res = run(big, fetch=FetchSettings(max_file_bytes=1_000_000))
    assert reasons(res.errors) == ["file is larger than 1 MB (fetch.max_file_bytes)"]
    write(tmp_path / "ok.txt", "Ok\n\nfine")
    res = run(tmp_path, fetch=FetchSettings(max_file_bytes=1_000_000))
    assert reasons(res.warnings) == ["file is larger than 1 MB (fetch.max_file_bytes)"]
    assert [d.title for d in res.documents] == ["Ok"]


def test_missing_path(tmp_path: Path) -> None:
    res = run(tmp_path / "nope.txt", tmp_path / "nodir")
    assert reasons(res.errors) == ["no such file or folder"] * 2
    assert res.errors[0].source == str(tmp_path / "nope.txt")


@pytest.mark.parametrize("name", ["report.odt", "data.csv", "README"])
def test_unsupported_extension_named_explicitly(tmp_path: Path, name: str) -> None:
    f = write(tmp_path / name, "Some text")
    (err,) = run(f).errors
    assert err.reason.startswith("unsupported file")
    assert err.reason.endswith(f"(supported: {SUPPORTED})")


def test_folder_without_supported_files(tmp_path: Path) -> None:
    write(tmp_path / "a.odt", b"PK")
    (err,) = run(tmp_path).errors
    assert err.reason == f"no supported files in folder ({SUPPORTED})"


def test_folder_where_every_file_fails(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"")
    write(tmp_path / "b.txt", b"\0\0\0")
    res = run(tmp_path)
    assert reasons(res.errors) == ["none of the 2 files could be read"]
    assert reasons(res.warnings) == ["file is empty", "looks like a binary file"]


def test_other_url_schemes_rejected() -> None:
    res = run("ftp://example.com/a.txt", "file:///etc/passwd")
    assert [e.reason.split(" (")[0] for e in res.errors] == ["not an http(s) URL"] * 2


def test_progress_reports(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "A\n\nText.")
    seen: list[str] = []
    collect([str(f)], ALLOW, progress=seen.append)
    assert seen == [f"reading {f}"]


# --------------------------------------------------------------------------- URLs


def test_url_article(srv: LoopbackServer) -> None:
    srv.route("/news/bridge-vote", article("Bridge vote passes", "The council voted 7 to 2."))
    seen: list[str] = []
    res = collect([srv.url("/news/bridge-vote#comments")], ALLOW, progress=seen.append)
    assert res.errors == [] and res.warnings == []
    (doc,) = res.documents
    assert doc.source == srv.url("/news/bridge-vote")
    assert doc.url == srv.url("/news/bridge-vote")
    assert doc.title == "Bridge vote passes"
    assert doc.text.startswith("The council voted 7 to 2.")
    assert "Engineers expect construction to begin next spring." in doc.text
    assert "Copyright" not in doc.text
    assert doc.published == "2024-03-05"
    assert seen == [f"fetching {srv.url('/news/bridge-vote')}"]


def test_url_after_redirect_keeps_source_as_given(srv: LoopbackServer) -> None:
    srv.route("/new", article("Moved", "This story moved."))
    srv.redirect("/old", "/new")
    (doc,) = run(srv.url("/old")).documents
    assert doc.source == srv.url("/old")
    assert doc.url == srv.url("/new")


def test_url_plain_text_and_markdown(srv: LoopbackServer) -> None:
    srv.route("/notes/town-hall.txt", "Town hall\n\nMeeting at 6.", content_type="text/plain")
    srv.route(
        "/post.md",
        "---\ntitle: Post\ndate: 2024-01-02\n---\nBody *md*.",
        content_type="text/markdown; charset=utf-8",
    )
    srv.route("/raw", "first line\nsecond", content_type="text/plain; charset=utf-8")
    res = run(srv.url("/notes/town-hall.txt"), srv.url("/post.md"), srv.url("/raw"))
    assert res.errors == []
    assert [(d.title, d.text, d.published) for d in res.documents] == [
        ("Town hall", "Meeting at 6.", None),
        ("Post", "Body md.", "2024-01-02"),
        ("Raw", "first line\nsecond", None),
    ]


def rss_feed(base: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local news</title><link>{base}/</link>
<description>News</description>
<item><title>Bridge vote</title><link>{base}/a1</link>
  <pubDate>Tue, 02 Jan 2024 10:00:00 +0100</pubDate></item>
<item><title>Gone</title><link>{base}/missing</link></item>
<item><title>Library</title><link>{base}/a2#top</link>
  <pubDate>Wed, 03 Jan 2024 09:30:00 GMT</pubDate></item>
</channel></rss>"""


def atom_feed(base: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom news</title><id>urn:feed</id>
<updated>2024-02-01T00:00:00Z</updated>
<entry><title>Library (atom)</title><link href="{base}/a2"/><id>urn:2</id>
  <updated>2024-02-01T08:00:00Z</updated></entry>
<entry><title>Park</title><link rel="alternate" href="{base}/a3"/><id>urn:3</id>
  <published>2024-02-03T08:00:00+01:00</published><updated>2024-02-04T00:00:00Z</updated></entry>
<entry><title>Dead</title><link href="{base}/missing"/><id>urn:4</id>
  <updated>2024-02-01T08:00:00Z</updated></entry>
</feed>"""


def serve_articles(srv: LoopbackServer) -> None:
    srv.route("/a1", article("Bridge vote passes", "The council voted 7 to 2."))
    srv.route("/a2", article("Library reopens", "The library reopened on Monday."))
    srv.route("/a3", article("Park gets new trees", "Two hundred trees were planted."))


def test_rss_feed(srv: LoopbackServer) -> None:
    serve_articles(srv)
    srv.route("/feed.xml", rss_feed(srv.base_url), content_type="application/rss+xml")
    res = run(srv.url("/feed.xml"))
    assert res.errors == []
    assert [(d.source, d.title, d.published) for d in res.documents] == [
        (srv.url("/a1"), "Bridge vote passes", "2024-01-02T10:00:00+01:00"),
        (srv.url("/a2"), "Library reopens", "2024-01-03T09:30:00+00:00"),
    ]
    assert res.documents[0].text.startswith("The council voted 7 to 2.")
    assert res.documents[1].url == srv.url("/a2")
    (warn,) = res.warnings
    assert (warn.source, warn.reason) == (srv.url("/missing"), "HTTP 404 Not Found")


def test_atom_feed_served_as_xml(srv: LoopbackServer) -> None:
    serve_articles(srv)
    srv.route("/atom", atom_feed(srv.base_url), content_type="text/xml")
    res = run(srv.url("/atom"))
    assert res.errors == []
    assert [(d.title, d.published) for d in res.documents] == [
        ("Library reopens", "2024-02-01T08:00:00+00:00"),
        ("Park gets new trees", "2024-02-03T08:00:00+01:00"),
    ]
    assert reasons(res.warnings) == ["HTTP 404 Not Found"]


def test_feed_served_as_html_is_detected(srv: LoopbackServer) -> None:
    serve_articles(srv)
    srv.route("/feed", rss_feed(srv.base_url), content_type="text/html")
    assert len(run(srv.url("/feed")).documents) == 2


def test_feed_entry_title_used_when_page_has_none(srv: LoopbackServer) -> None:
    srv.route("/plain", "just some words in a text file", content_type="text/plain")
    srv.route(
        "/f",
        f"""<rss version="2.0"><channel><title>F</title>
        <item><title>Entry title</title><link>{srv.base_url}/plain</link></item>
        </channel></rss>""",
        content_type="application/rss+xml",
    )
    (doc,) = run(srv.url("/f")).documents
    assert (doc.title, doc.text) == ("Entry title", "just some words in a text file")


def test_feed_entry_falls_back_to_feed_text(srv: LoopbackServer) -> None:
    srv.route(
        "/f",
        f"""<rss version="2.0"><channel><title>F</title>
        <item><title>Summarised</title><link>{srv.base_url}/gone</link>
        <description>&lt;p&gt;The summary says the park opens in May.&lt;/p&gt;</description>
        <pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate></item>
        </channel></rss>""",
        content_type="application/rss+xml",
    )
    res = run(srv.url("/f"))
    assert res.errors == []
    (doc,) = res.documents
    assert (doc.source, doc.title, doc.text, doc.published) == (
        srv.url("/gone"),
        "Summarised",
        "The summary says the park opens in May.",
        "2024-01-02T10:00:00+00:00",
    )
    assert res.warnings == []  # indexed from the feed's text: a note, not skipped
    (note,) = res.notes
    assert note.reason == "HTTP 404 Not Found; used the text from the feed instead"


def test_feed_with_no_entries(srv: LoopbackServer) -> None:
    srv.route(
        "/empty.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Nothing</title></channel></rss>',
        content_type="application/rss+xml",
    )
    res = run(srv.url("/empty.xml"))
    assert res.documents == []
    assert reasons(res.errors) == ["feed has no entries"]


def test_feed_where_every_entry_fails(srv: LoopbackServer) -> None:
    srv.route(
        "/f",
        f"""<rss version="2.0"><channel><title>F</title>
        <item><title>A</title><link>{srv.base_url}/x</link></item>
        <item><title>B</title><link>http://10.0.0.1/y</link></item>
        </channel></rss>""",
        content_type="application/rss+xml",
    )
    res = run(srv.url("/f"))
    assert reasons(res.errors) == ["none of the 2 feed entries could be read"]
    assert res.warnings[0].reason == "HTTP 404 Not Found"
    assert res.warnings[1].reason.startswith("refused: 10.0.0.1 is a private address")


def test_feed_entries_already_collected_are_not_fetched_twice(srv: LoopbackServer) -> None:
    serve_articles(srv)
    srv.route("/feed.xml", rss_feed(srv.base_url), content_type="application/rss+xml")
    res = run(srv.url("/a1"), srv.url("/feed.xml"), srv.url("/feed.xml#again"))
    assert [d.source for d in res.documents] == [srv.url("/a1"), srv.url("/a2")]
    assert len(srv.requests_to("/a1")) == 1
    assert len(srv.requests_to("/feed.xml")) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        ("nope", "text/html", 404, "HTTP 404 Not Found"),
        (b"%PDF-1.4", "application/pdf", 200, "unsupported content type application/pdf"),
        (b"{}", "application/json", 200, "unsupported content type application/json"),
        (b"\0\1\2\3" * 100, "text/plain", 200, "looks like a binary file"),
        ("<data/>", "application/xml", 200, "XML document that is not an RSS or Atom feed"),
        (b"", "text/html", 200, "no text (the page is empty)"),
        (
            repeat(b"<p>" * 100_000, 5),
            "text/html",
            200,
            "response is larger than 1 MB (fetch.max_bytes)",
        ),
    ],
    ids=["404", "pdf", "json", "binary", "xml", "empty", "oversize"],
)
def test_url_errors(
    srv: LoopbackServer, body: bytes | str, content_type: str, status: int, reason: str
) -> None:
    srv.route("/x", body, content_type=content_type, status=status)
    res = run(srv.url("/x"), fetch=FetchSettings(allow_hosts=["127.0.0.1:*"], max_bytes=1_000_000))
    assert res.documents == [] and res.warnings == []
    (err,) = res.errors
    assert (err.source, err.reason) == (srv.url("/x"), reason)


def test_url_timeout_and_refused(srv: LoopbackServer) -> None:
    srv.route("/slow", article("Slow", "Slow."), delay=2)
    port = closed_port()
    res = run(
        srv.url("/slow"),
        f"http://127.0.0.1:{port}/",
        fetch=FetchSettings(allow_hosts=["127.0.0.1:*"], timeout=0.3),
    )
    assert res.documents == []
    assert res.errors[0].reason == "timed out after 0.3s"
    assert res.errors[1].reason.startswith("cannot connect")


def test_loopback_refused_without_allowlist(srv: LoopbackServer) -> None:
    srv.route("/a", article("A", "Text."))
    res = run(srv.url("/a"), fetch=FetchSettings(timeout=2))
    (err,) = res.errors
    assert err.reason == (
        "refused: 127.0.0.1 is a loopback address (to allow it: `newsdesk index --allow-host "
        f"127.0.0.1:{srv.port}`, NEWSDESK_ALLOW_HOSTS or fetch.allow_hosts)"
    )
    assert srv.requests == []


def test_mixed_inputs_keep_going(tmp_path: Path, srv: LoopbackServer) -> None:
    srv.route("/a", article("Web story", "From the web."))
    f = write(tmp_path / "local.txt", "Local\n\nFrom disk.")
    res = run(tmp_path / "missing.txt", f, srv.url("/a"), srv.url("/404"))
    assert [d.title for d in res.documents] == ["Local", "Web story"]
    assert reasons(res.errors) == ["no such file or folder", "HTTP 404 Not Found"]
