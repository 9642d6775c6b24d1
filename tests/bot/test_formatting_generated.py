"""bot/formatting.generated_embed: a written answer within Discord's limits, and safe."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import formatting as fmt
from index.models import Answer, Quote
from index.written.generate import Citation, GeneratedAnswer
from tests.bot.test_formatting import (
    SAFE_URL,
    any_text,
    assert_embed_limits,
    assert_safe,
    hit,
    maybe_url,
)


def quote(text: str, title: str, url: str | None) -> Quote:
    return Quote(text, "a0", title, "/srv/private/articles/file0.txt", url, 0, len(text), 1.0, 0)


def generated(
    text: str | None,
    *,
    titles: list[str] | None = None,
    url: str | None = SAFE_URL,
    final: bool = True,
    model: str = "llama3.2",
    quote_text: str = "A small bakery in Lyon won the national bread prize.",
) -> GeneratedAnswer:
    titles = titles or ["Bakery wins bread prize"]
    hits = [hit(t, f"passage {i}", url, i) for i, t in enumerate(titles)]
    answer = Answer("Who won?", quote(quote_text, titles[0], url), hits, elapsed_ms=1234)
    return GeneratedAnswer(
        answer,
        text=text,
        citations=[Citation(i + 1, h) for i, h in enumerate(hits)],
        model=model,
        elapsed_ms=2345,
        final=final,
    )


def test_written_answer_sources_and_evidence() -> None:
    e = fmt.generated_embed(
        generated('The Lyon bakery won; its baker "uses a starter" [1].')
    ).to_dict()
    assert e["title"] == "Who won?"
    text, evidence = e["description"].split("\n\n**Evidence**\n")
    assert text == 'The Lyon bakery won; its baker "uses a starter" \\[1\\].'
    assert evidence == (
        "> “A small bakery in Lyon won the national bread prize.”\n"
        f"— [Bakery wins bread prize]({SAFE_URL})"
    )
    assert e["fields"] == [
        {
            "name": "Sources",
            "value": f"\\[1\\] [Bakery wins bread prize]({SAFE_URL})",
            "inline": False,
        }
    ]
    assert e["footer"]["text"] == (
        "Written by llama3.2 from the passages; quotes checked against the articles · 2.3 s"
    )


def test_streaming_states() -> None:
    empty = fmt.generated_embed(generated("", final=False)).to_dict()
    assert empty["description"].startswith(
        "*✍️ Writing an answer from the passages…*\n\n**Evidence**"
    )
    assert empty["footer"]["text"] == "Writing with llama3.2…"
    partial = fmt.generated_embed(generated("The Lyon bakery won [1].", final=False)).to_dict()
    assert partial["description"].startswith("The Lyon bakery won \\[1\\]. ▌\n\n**Evidence**")


def test_a_fallback_is_exactly_the_extractive_embed() -> None:
    gen = generated("ignored")
    gen.fell_back, gen.text = True, None
    assert fmt.generated_embed(gen).to_dict() == fmt.answer_embed(gen.answer).to_dict()
    assert (
        fmt.generated_embed(generated("")).to_dict()
        == fmt.answer_embed(generated("").answer).to_dict()
    )


def test_paragraphs_and_list_lines_are_kept() -> None:
    e = fmt.generated_embed(generated("- one [1].\n- two [1].\n\nIn short [1].")).to_dict()
    assert e["description"].startswith("\\- one \\[1\\].\n\\- two \\[1\\].\n\nIn short \\[1\\].")


@given(
    any_text,
    st.lists(any_text, min_size=1, max_size=12),
    maybe_url,
    st.booleans(),
    any_text,
    any_text,
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_embed_fits_every_limit_and_is_safe(
    text: str, titles: list[str], url: str | None, final: bool, model: str, quote_text: str
) -> None:
    gen = generated(text, titles=titles, url=url, final=final, model=model, quote_text=quote_text)
    embed = fmt.generated_embed(gen)
    assert_embed_limits(embed)
    d = embed.to_dict()
    links = {fmt.safe_url(url)} if url else set()
    assert_safe(d.get("title", ""), set(), markdown=True)
    assert_safe(d.get("description", ""), {u for u in links if u})
    for f in d.get("fields", []):
        assert_safe(f["value"], {u for u in links if u})
    assert_safe(d["footer"]["text"], markdown=False)
