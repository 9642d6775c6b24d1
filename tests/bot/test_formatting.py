"""bot/formatting.py: Discord limits, escaping and mention safety, property-tested."""

from __future__ import annotations

import re

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import formatting as fmt
from bot import formatting_admin as fmt_admin
from index.models import Answer, Article, Hit, IndexReport, Quote, Stats

SAFE_URL = "https://news.example.com/story"
HOSTILE = [
    "@everyone",
    "@here",
    "@EVERYONE",
    "<@123>",
    "<@!123456789012345678>",
    "<@&987654321098765432>",
    "<#555>",
    "</ask:123>",
    "[click me](https://evil.example/x)",
    "[a](<https://evil.example/y>)",
    "**bold**",
    "__under__",
    "~~strike~~",
    "||spoiler||",
    "`code`",
    "```py\nprint(1)\n```",
    "> quoted",
    "# Heading",
    "-# subtext",
    "- item",
    "\\",
    "\\[",
    "\n",
    "\n\n",
    "\t",
    "…",
    ". ",
    "! ",
    "😀",
    "\u200b",
    "\u202e",
    "\x00",
    "\ud800",
    "https://evil.example/@everyone",
    "word",
    " ",
]

hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)), max_size=40).map(
    "".join
)
long_text = st.builds(lambda part, n: part * n, hostile_text, st.integers(1, 60))
any_text = st.one_of(hostile_text, long_text)
maybe_url = st.one_of(
    st.none(),
    st.just(SAFE_URL),
    st.builds(lambda s: SAFE_URL + "/" + s, st.text(max_size=40)),
)


def utf16(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def embed_texts(e: discord.Embed) -> list[str]:
    out = [e.title or "", e.description or "", e.footer.text or "", e.author.name or ""]
    for f in e.fields:
        out += [f.name or "", f.value or ""]
    return out


def assert_embed_limits(e: discord.Embed) -> None:
    d = e.to_dict()
    assert utf16(d.get("title", "")) <= 256
    assert utf16(d.get("description", "")) <= 4096
    fields = d.get("fields", [])
    assert len(fields) <= 25
    for f in fields:
        assert 1 <= utf16(f["name"]) <= 256 and f["name"].strip()
        assert 1 <= utf16(f["value"]) <= 1024 and f["value"].strip()
    assert utf16(d.get("footer", {}).get("text", "")) <= 2048
    assert utf16(d.get("author", {}).get("name", "")) <= 256
    total = sum(utf16(t) for t in embed_texts(e))
    assert total <= 6000
    assert len(e) <= 6000  # discord.py's own count


def unescaped_link_targets(s: str) -> list[str]:
    """Targets of masked links ``[label](url)``: an unescaped ``[``, the label up to the first
    unescaped ``]`` (backslash pairs skipped), then ``(``."""
    targets = []
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == "[":
            j = i + 1
            while j < len(s) and s[j] != "]":
                j += 2 if s[j] == "\\" else 1
            m = re.compile(r"\]\(<?([^)\s>]*)").match(s, j)
            if m:
                targets.append(m.group(1))
        i += 1
    return targets


def assert_safe(
    s: str, allowed_links: frozenset[str] | set[str] = frozenset(), *, markdown: bool = True
) -> None:
    """No pings, no mention syntax, no control tricks; with markdown, no foreign masked links."""
    low = s.lower()
    assert "@everyone" not in low and "@here" not in low, s
    assert not re.search(r"<[@#/]", s), s  # user/role/channel/command mention syntax
    assert "\x00" not in s and "\u202e" not in s
    if markdown:
        for target in unescaped_link_targets(s):
            assert target in allowed_links, (target, s)


def assert_no_previews(s: str) -> None:
    """In a plain message every link is wrapped in <…>, so Discord shows no preview."""
    rest = re.sub(r"<https?://[^\s<>]*>", "", s)
    # a link needs something after the scheme ("http://" alone is not linkified)
    assert not re.search(r"https?://[^\s<>]*[^\s<>.,:;\"'’”)\]]", rest), s


def hit(title: str, text: str, url: str | None, i: int = 0, source: str = "") -> Hit:
    return Hit(
        chunk_id=i,
        article_id=f"a{i}",
        title=title,
        source=source or f"/srv/private/articles/file{i}.txt",
        url=url,
        text=text,
        start=0,
        end=len(text),
        score=1.0 / (i + 1),
    )


# -- primitives ------------------------------------------------------------------------------------


@given(any_text)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_escape_neutralises_everything(text: str) -> None:
    out = fmt.escape(fmt.clean(text))
    assert_safe(out)


@given(any_text, st.integers(0, 3000))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_fit_respects_limit_and_is_safe(text: str, limit: int) -> None:
    out = fmt.fit(text, limit)
    assert utf16(out) <= limit
    assert_safe(out)
    plain = fmt.fit(text, limit, content=True)
    assert utf16(plain) <= limit
    assert_safe(plain)
    assert_no_previews(plain)


@given(st.text(max_size=3000), st.integers(1, 2500))
def test_shorten_is_a_prefix_plus_ellipsis(text: str, limit: int) -> None:
    out = fmt.shorten(text, limit)
    assert utf16(out) <= limit
    if utf16(text) <= limit:
        assert out == text
    else:
        assert out.endswith("…")
        assert text.startswith(out[:-1].rstrip(" "))


def test_shorten_prefers_sentence_then_word_boundaries() -> None:
    text = "The first sentence is here. The second one is quite a bit longer than the first."
    assert fmt.shorten(text, 50) == "The first sentence is here. …"
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    assert fmt.shorten(words, 20) == "alpha beta gamma…"
    assert fmt.shorten("x" * 50, 10) == "x" * 9 + "…"


def test_escape_examples() -> None:
    out = fmt.escape("Hi @everyone and @here, <@123> <@&456> <#789> see [x](https://evil.example)")
    assert "@\u200beveryone" in out and "@\u200bhere" in out
    assert "<\u200b@123>" in out and "<\u200b@&456>" in out and "<\u200b#789>" in out
    assert "\\[x\\](https://evil.example)" in out or "\\[x](https://evil.example)" in out
    assert fmt.escape("**bold** _i_ `c` ||s||") == "\\*\\*bold\\*\\* \\_i\\_ \\`c\\` \\|\\|s\\|\\|"


@pytest.mark.parametrize(
    ("text", "wrapped"),
    [
        ("see https://x.com/a.", "see <https://x.com/a>."),
        ("(see https://x.com/a)", "(see <https://x.com/a>)"),
        (
            "https://en.wikipedia.org/wiki/Python_(programming_language).",
            "<https://en.wikipedia.org/wiki/Python_(programming_language)>.",
        ),
        ("https://a.b/c?d=e&f=g, then", "<https://a.b/c?d=e&f=g>, then"),
        ("<https://a/https://b>", "<https://a/https://b>"),  # already wrapped
        ("<https://cut-off", "<<https://cut-off>"),  # an unclosed "<" does not count
        ("http://", "http:/\u200b/"),  # nothing linkable: broken, not wrapped
    ],
)
def test_wrap_urls(text: str, wrapped: str) -> None:
    assert fmt.wrap_urls(text) == wrapped


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/a_b?x=1&y=(2)", True),
        ("http://example.com/a b", True),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("/srv/articles/x.txt", False),
        ("https://", False),
        (None, False),
        ("https://example.com/" + "x" * 1000, False),
    ],
)
def test_safe_url(url: str | None, ok: bool) -> None:
    out = fmt.safe_url(url)
    assert (out is not None) == ok
    if out:
        assert not re.search(r"[\s()<>\[\]@]", out)


# -- answer embeds ---------------------------------------------------------------------------------


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    n = draw(st.integers(0, 6))
    hits = [hit(draw(any_text), draw(any_text), draw(maybe_url), i) for i in range(n)]
    question = draw(st.one_of(any_text, st.just("q" * 10_000), st.just("@everyone " * 1000)))
    elapsed = draw(st.floats(0, 1e7, allow_nan=False))
    if draw(st.booleans()) and hits:
        h = hits[0]
        quote = Quote(
            text=draw(any_text),
            article_id=h.article_id,
            title=draw(any_text),
            source=draw(st.sampled_from(["/srv/x/a.txt", "C:\\docs\\b.md", "", SAFE_URL])),
            url=draw(maybe_url),
            start=0,
            end=5,
            score=0.9,
            chunk_id=h.chunk_id,
        )
        ans = Answer(question, quote, hits, elapsed_ms=elapsed, confidence=0.9)
    else:
        suggestions = draw(st.lists(any_text, max_size=5))
        ans = Answer(question, None, hits, elapsed_ms=elapsed, suggestions=suggestions)
    # the question as searched, misspellings corrected: typed by a stranger too
    ans.searched_as = draw(st.one_of(st.none(), any_text, st.just("@everyone " * 1000)))
    return ans


@given(answers())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_answer_embed_limits_and_safety(answer: Answer) -> None:
    e = fmt.answer_embed(answer)
    assert_embed_limits(e)
    ours = {fmt.safe_url(h.link) or "" for h in answer.passages}
    if answer.quote is not None:
        ours.add(fmt.safe_url(answer.quote.link) or "")
    for text in embed_texts(e):
        assert_safe(text, ours)  # the only masked links are ours, to the articles' own URLs
    assert e.footer.text
    if answer.searched_as:
        assert e.footer.text.startswith("Searched for “") and " · Answered in " in e.footer.text
    else:
        assert e.footer.text.startswith("Answered in ")
    if answer.quote is None:
        assert (e.description or "").startswith(fmt.NOT_FOUND)
        assert not e.fields
    else:
        assert (e.description or "").startswith("> “")
        assert len(e.fields) <= 3


def test_answer_embed_layout() -> None:
    text = "Ma said he was “very interested” in such a partnership."
    hits = [
        hit("Alibaba & Apple", text, "https://news.example.com/ma", 0),
        hit("Second article", "Another passage. With two sentences.", None, 1),
        hit("Third article", "Third passage text.", SAFE_URL, 2),
        hit("Fourth article", "Fourth passage text.", None, 3),
        hit("Fifth article", "Fifth passage text.", None, 4),
    ]
    quote = Quote(text, "a0", "Alibaba & Apple", "https://news.example.com/ma", None, 0, 5, 0.9, 0)
    e = fmt.answer_embed(Answer("What did Ma say?", quote, hits, elapsed_ms=41.6))
    assert e.title == "What did Ma say?"
    assert e.description == (
        "> “Ma said he was “very interested” in such a partnership.”\n"
        "— [Alibaba & Apple](https://news.example.com/ma)"
    )
    assert [f.name for f in e.fields] == ["Second article", "Third article", "Fourth article"]
    assert e.fields[1].value == f"Third passage text.\n[source]({SAFE_URL})"
    assert e.footer.text == "Answered in 42 ms"
    # no URL: named by its file name, never by its full path
    q2 = Quote(text, "a1", "Notes", "/srv/private/notes/ma.txt", None, 0, 5, 0.9, 9)
    e2 = fmt.answer_embed(Answer("q", q2, [], elapsed_ms=2500))
    assert e2.description is not None and e2.description.endswith("— **Notes** (ma.txt)")
    assert "/srv/private" not in e2.description
    assert e2.footer.text == "Answered in 2.5 s"
    # misspelt words were corrected: the footer says what was searched
    typo = Answer("When did Apolo land on the mooon?", quote, hits, elapsed_ms=41.6)
    typo.searched_as = "When did Apollo land on the moon?"
    e3 = fmt.answer_embed(typo)
    assert e3.title == "When did Apolo land on the mooon?"
    assert e3.footer.text == "Searched for “When did Apollo land on the moon?” · Answered in 42 ms"


def test_not_found_embed_suggests_closest_articles() -> None:
    hits = [
        hit("Volcano", "Lava.", "https://news.example.com/v", 0),
        hit("Chess", "Move.", None, 1),
    ]
    e = fmt.answer_embed(
        Answer("Capital of Mongolia?", None, hits, suggestions=["Volcano", "Chess"])
    )
    assert e.description == (
        "I couldn't find that in the indexed articles.\n\nClosest articles:\n"
        "• [Volcano](https://news.example.com/v)\n• **Chess** (file1.txt)"
    )
    assert not e.fields


# -- other messages --------------------------------------------------------------------------------


@given(any_text, st.lists(st.tuples(any_text, any_text, maybe_url), max_size=7))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_search_message_limits(query: str, rows: list[tuple[str, str, str | None]]) -> None:
    hits = [hit(t, x, u, i) for i, (t, x, u) in enumerate(rows)]
    out = fmt.search_message(query, hits)
    assert 1 <= utf16(out) <= 2000
    assert_safe(out)
    assert_no_previews(out)


def test_search_message_format() -> None:
    hits = [
        hit("Chess", "The champion won. In six hours.", "https://news.example.com/chess", 0),
        hit("Bakery", "A bakery won.", None, 1, source="/data/corpus/bakery.html"),
    ]
    assert fmt.search_message("who won", hits) == (
        "**Top passages for** “who won”\n"
        "**1. Chess** — The champion won. In six hours. <https://news.example.com/chess>\n"
        "**2. Bakery** — A bakery won. (bakery.html)"
    )


@given(any_text, any_text, maybe_url, st.one_of(st.none(), any_text), st.integers(0, 10**6))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_article_embed_limits(
    title: str, text: str, url: str | None, published: str | None, chunks: int
) -> None:
    a = Article("abc123", title, "/srv/a.txt", text, url, published, "h", "now", chunks)
    e = fmt.article_embed(a)
    assert_embed_limits(e)
    for t in embed_texts(e):
        assert_safe(t, {fmt.safe_url(url) or ""})


def test_article_card() -> None:
    text = "First paragraph, the opening.\nStill the first.\n\nSecond paragraph."
    a = Article("abc", "Bakery", "/srv/b.html", text, None, "2024-03-05T10:00:00", "h", "t", 4)
    e = fmt.article_embed(a)
    assert e.title == "Bakery"
    assert e.description == "First paragraph, the opening. Still the first."
    assert [(f.name, f.value) for f in e.fields] == [
        ("Source", "b.html"),
        ("Published", "2024-03-05"),
        ("Passages", "4"),
    ]


@given(any_text)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_thread_and_choice_names(text: str) -> None:
    name = fmt.thread_name(text)
    assert 1 <= len(name) <= 100 and "\n" not in name and name.strip()
    assert_safe(name, markdown=False)  # thread names are plain text: no Markdown to escape
    choice = fmt.choice_name(text, "2024-01-01")
    assert 1 <= len(choice) <= 100 and choice.strip()


@given(any_text, any_text, st.integers(0, 10**7), st.integers(0, 10**7))
@settings(max_examples=100, deadline=None)
def test_progress_and_error_messages(action: str, stage: str, done: int, total: int) -> None:
    out = fmt_admin.progress_message(action, stage, done, total, 12.3)
    assert utf16(out) <= 2000
    assert_safe(out)
    assert_no_previews(out)
    err = fmt.error_message(stage * 50)
    assert 1 <= utf16(err) <= 2000
    assert_safe(err)
    assert_no_previews(err)


def test_progress_message_example() -> None:
    assert fmt_admin.progress_message("Re-indexing", "embedding", 120, 480, 3.2) == (
        "⏳ Re-indexing… embedding passages 120/480 (25%) · 3 s"
    )


@given(st.lists(any_text, max_size=30), st.lists(any_text, max_size=5), any_text)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_add_report_message(titles: list[str], skipped: list[str], source: str) -> None:
    r = IndexReport(added=len(titles), titles=titles, skipped=skipped, seconds=1.0)
    out = fmt_admin.add_report_message(source, r)
    assert 1 <= utf16(out) <= 2000
    assert_safe(out)
    assert_no_previews(out)


def test_stats_embed() -> None:
    s = Stats(3, 7, "all-MiniLM-L6-v2", 384, "flat", 123456, "/srv/data", 1, None)
    e = fmt_admin.stats_embed(s)
    assert_embed_limits(e)
    values = {f.name: f.value for f in e.fields}
    assert values["Articles"] == "3" and values["Passages"] == "7"
    assert values["On disk"] == "120.6 KB" and values["Last indexed"] == "never"
    assert all("/srv/data" not in t for t in embed_texts(e))  # no server paths in Discord


def test_help_message_names_the_bot_safely() -> None:
    assert "“@newsdesk-test What did Ma say" in fmt.help_message("newsdesk-test")
    assert "@everyone" not in fmt.help_message("@everyone **bot**")


def test_cooldown_message() -> None:
    assert fmt.cooldown_message(4.2) == "You're asking quickly — please wait 5 s and ask again."


def test_error_messages_keep_commands_and_config_keys_as_code() -> None:
    """Issue 18: `newsdesk reindex` showed as \\`newsdesk reindex\\` (literal backticks)."""
    assert fmt.error_message("nothing is indexed yet: run `newsdesk index PATH_OR_URL` first") == (
        "nothing is indexed yet: run `newsdesk index PATH_OR_URL` first"
    )
    text = fmt.error_message("add this server's id to `discord.admin_guild_ids` in the config")
    assert "`discord.admin_guild_ids`" in text and "\\`" not in text
    # around the code spans, untrusted text is escaped as before; a span that could hold a
    # mention or a link is not a code span
    assert fmt.error_message("No article “**x**” (`a_b`)") == "No article “\\*\\*x\\*\\*” (`a_b`)"
    assert_safe(fmt.error_message("`<@123>` and `@everyone` and `https://x.example/a`"))
    assert_no_previews(fmt.error_message("see `https://x.example/a` now"))
