"""index/written/client.py and generate.py against the loopback fake OpenAI-compatible server."""

from __future__ import annotations

import itertools
import logging
import time
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch

import pytest

from index.config import LLMSettings, Settings
from index.errors import ConfigError
from index.models import Hit
from index.pipeline import Pipeline
from index.written import client as llm
from index.written.generate import (
    PROMPT_VERSION,
    GeneratedAnswer,
    build_messages,
    format_passages,
    load_prompt,
)
from tests.conftest import ROOT
from tests.fakes.http import closed_port
from tests.fakes.openai import ChatRequest, FakeOpenAI

BREAD_Q = "Who won the national bread prize?"
KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def llm_settings(server: FakeOpenAI, **kw: object) -> LLMSettings:
    s = LLMSettings(base_url=server.base_url, model="fake", timeout=5.0)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


MESSAGES = [{"role": "user", "content": "hi"}]


# -- the client ---------------------------------------------------------------------------------


async def test_plain_completion(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = "Hello [1]."
    done = await llm.chat(llm_settings(fake_llm, max_tokens=99, temperature=0.5), MESSAGES)
    assert done == llm.Completion("Hello [1].", "stop", "fake-llm-1")
    (req,) = fake_llm.requests
    assert req.body == {
        "model": "fake",
        "messages": MESSAGES,
        "max_tokens": 99,
        "temperature": 0.5,
        "stream": False,
    }
    assert "authorization" not in req.headers


async def test_streamed_completion_reports_the_growing_text(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = "A small bakery in Lyon won the prize [1]."
    seen: list[str] = []
    done = await llm.chat(llm_settings(fake_llm), MESSAGES, stream=True, on_text=seen.append)
    assert done.text == fake_llm.reply and done.finish_reason == "stop"
    assert fake_llm.requests[0].stream
    assert len(seen) > 3 and seen[-1] == done.text
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(seen))


async def test_a_server_that_ignores_stream_is_understood(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply, fake_llm.ignore_stream = "One piece [1].", True
    seen: list[str] = []
    done = await llm.chat(llm_settings(fake_llm), MESSAGES, stream=True, on_text=seen.append)
    assert done.text == "One piece [1]." and seen == ["One piece [1]."]


@pytest.mark.parametrize("stream", [False, True])
async def test_http_error_names_status_and_message(fake_llm: FakeOpenAI, stream: bool) -> None:
    fake_llm.mode = "error"
    with pytest.raises(llm.LLMError, match=r"answered HTTP 500: the model crashed"):
        await llm.chat(llm_settings(fake_llm), MESSAGES, stream=stream)


async def test_wrong_base_url_hints_at_v1(fake_llm: FakeOpenAI) -> None:
    s = llm_settings(fake_llm, base_url=fake_llm.server.base_url)  # without /v1
    with pytest.raises(llm.LLMError, match=r"HTTP 404.*should end in /v1"):
        await llm.chat(s, MESSAGES)


@pytest.mark.parametrize("stream", [False, True])
async def test_garbage_is_an_error(fake_llm: FakeOpenAI, stream: bool) -> None:
    fake_llm.mode = "garbage"
    with pytest.raises(llm.LLMError, match="not JSON"):
        await llm.chat(llm_settings(fake_llm), MESSAGES, stream=stream)


async def test_a_stream_cut_short_is_an_error(fake_llm: FakeOpenAI) -> None:
    fake_llm.mode, fake_llm.reply = "cut", "This answer will never be finished [1]."
    with pytest.raises(llm.LLMError, match="ended before the answer was complete"):
        await llm.chat(llm_settings(fake_llm), MESSAGES, stream=True)


@pytest.mark.parametrize(("mode", "stream"), [("hang", False), ("hang", True), ("stall", True)])
async def test_a_hanging_endpoint_times_out(fake_llm: FakeOpenAI, mode: str, stream: bool) -> None:
    fake_llm.mode, fake_llm.reply = mode, "Slow pieces that never all come [1]."
    t0 = time.monotonic()
    with pytest.raises(llm.LLMError, match=r"did not answer within llm.timeout \(0.5 s\)"):
        await llm.chat(llm_settings(fake_llm, timeout=0.5), MESSAGES, stream=stream)
    assert time.monotonic() - t0 < 10  # bounded by llm.timeout, not by the server's 120 s hang


async def test_endpoint_down() -> None:
    s = LLMSettings(base_url=f"http://127.0.0.1:{closed_port()}/v1", model="m", timeout=5)
    with pytest.raises(llm.LLMError, match="could not be reached"):
        await llm.chat(s, MESSAGES)


async def test_api_key_is_sent_but_never_logged_or_shown(
    fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NEWSDESK_TEST_KEY", KEY)
    s = llm_settings(fake_llm, api_key_env="NEWSDESK_TEST_KEY")
    fake_llm.reply = "ok [1]."
    caplog.set_level(logging.DEBUG)
    await llm.chat(s, MESSAGES)
    assert fake_llm.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    # a server that echoes the key back in its error
    fake_llm.mode = "error"
    fake_llm.error_message = lambda req: f"invalid key {req.headers['authorization']}"
    with pytest.raises(llm.LLMError) as err:
        await llm.chat(s, MESSAGES)
    assert KEY not in str(err.value) and "[redacted]" in str(err.value)
    assert KEY not in caplog.text


async def test_missing_key_variable_is_a_warning(
    fake_llm: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.reply = "ok [1]."
    await llm.chat(llm_settings(fake_llm, api_key_env="NEWSDESK_UNSET_KEY"), MESSAGES)
    assert "$NEWSDESK_UNSET_KEY (llm.api_key_env) is not set" in caplog.text
    assert "authorization" not in fake_llm.requests[-1].headers


def test_display_url_drops_credentials() -> None:
    assert llm.display_url("https://user:pw@api.example.com:8443/v1/x?k=1") == (
        "https://api.example.com:8443/v1/x"
    )


# -- the prompt ---------------------------------------------------------------------------------


def hit(n: int, title: str, text: str) -> Hit:
    return Hit(n, f"a{n}", title, f"/x/{n}.txt", None, text, 0, len(text), 1.0)


def test_prompt_file_is_versioned_and_shipped_as_package_data() -> None:
    prompt = load_prompt()
    assert prompt.version == PROMPT_VERSION == "answer-v1"
    assert "[1]" in prompt.system and "NOT IN THE ARTICLES" in prompt.system
    assert "{passages}" in prompt.user and "{question}" in prompt.user
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["index.written"]
    assert any(fnmatch("prompts/answer-v1.txt", p) for p in patterns)
    assert (ROOT / "index" / "written" / "prompts" / "answer-v1.txt").is_file()


def test_messages_number_the_passages_with_titles() -> None:
    hits = [
        hit(7, "Bakery  wins", "A bakery won.\n\nIt is in {question} Lyon."),
        hit(9, "Chess", "x"),
    ]
    system, user = build_messages("Who {passages} won?", hits)
    assert system["role"] == "system" and user["role"] == "user"
    assert (
        "[1] Bakery wins\nA bakery won.\nIt is in {question} Lyon.\n\n[2] Chess\nx"
        in (user["content"])
    )
    # braces in the question or the passages are never filled in
    assert user["content"].endswith("Question: Who {passages} won?")
    assert format_passages([]) == ""


# -- generate(): verification and fallback ------------------------------------------------------


@pytest.fixture
def gen_pipeline(bot_pipeline: Pipeline, fake_llm: FakeOpenAI) -> Pipeline:
    s: Settings = bot_pipeline.settings
    s.llm.base_url, s.llm.model, s.llm.timeout = fake_llm.base_url, "fake", 2.0
    return bot_pipeline


def faithful(req: ChatRequest) -> str:
    n = req.passage_with("Lyon")
    return (
        f'A small bakery in Lyon won: its baker, Paul Martin, "uses a sourdough starter that is '
        f'forty years old" [{n}]. He will hire two apprentices [{n}].'
    )


async def test_faithful_answer(gen_pipeline: Pipeline, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = faithful
    gen = await gen_pipeline.agenerate(BREAD_Q)
    assert not gen.fell_back and gen.reason is None and gen.removed == []
    assert gen.text is not None and '"uses a sourdough starter that is forty years old"' in gen.text
    (c,) = gen.citations
    assert c.hit.title == "Bakery wins bread prize" and c.hit is gen.answer.passages[c.n - 1]
    assert gen.answer.quote is not None and "Lyon" in gen.answer.quote.text  # the evidence
    assert gen.model == "fake-llm-1" and gen.prompt == "answer-v1"
    data = gen.to_json()
    assert data["answer"]["text"] == gen.answer.quote.text
    assert data["generated"]["citations"][0]["title"] == "Bakery wins bread prize"


async def test_streamed_updates_only_ever_show_verified_text(
    gen_pipeline: Pipeline, fake_llm: FakeOpenAI
) -> None:
    def reply(req: ChatRequest) -> str:
        n = req.passage_with("Lyon")
        return (
            f'The baker "uses a sourdough starter" [{n}]. He said "bread is life" [{n}]. '
            f"He will hire two apprentices [{n}]. Then [9]."
        )

    fake_llm.reply = reply
    updates: list[GeneratedAnswer] = []
    gen = await gen_pipeline.agenerate(BREAD_Q, stream=True, on_update=updates.append)
    assert updates[0].text == "" and not updates[0].final
    assert updates[0].answer.quote is not None  # the evidence is known before any text
    assert len(updates) >= 2
    for u in updates:
        assert "bread is life" not in (u.text or "") and "[9]" not in (u.text or "")
    assert gen.final and not gen.fell_back
    assert gen.text is not None and "bread is life" not in gen.text and "[9]" not in gen.text
    assert [r.kind for r in gen.removed] == ["quote", "sentence", "citation", "sentence"]


async def test_answer_cut_at_max_tokens_loses_its_last_sentence(
    gen_pipeline: Pipeline, fake_llm: FakeOpenAI
) -> None:
    fake_llm.reply = lambda req: f"A bakery in Lyon won [{req.passage_with('Lyon')}]. The baker"
    fake_llm.finish_reason = "length"
    gen = await gen_pipeline.agenerate(BREAD_Q)
    assert gen.text is not None and gen.text.endswith("won [1].")


async def test_no_call_when_the_engine_abstains(
    gen_pipeline: Pipeline, fake_llm: FakeOpenAI
) -> None:
    gen_pipeline.settings.answer.min_confidence = 1.0  # abstain on everything
    gen = await gen_pipeline.agenerate(BREAD_Q)
    assert gen.fell_back and gen.answer.abstained and fake_llm.requests == []


async def test_generate_needs_llm_settings(bot_pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match=r"\[llm\] section"):
        await bot_pipeline.agenerate(BREAD_Q)


@pytest.mark.parametrize("mode", ["error", "garbage", "hang", "fabricated", "bad-citation"])
async def test_every_failure_falls_back_to_the_extractive_answer(
    gen_pipeline: Pipeline,
    fake_llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.INFO, logger="index")
    gen_pipeline.settings.llm.timeout = 0.5
    if mode in ("fabricated", "bad-citation"):
        cite = "[9]" if mode == "bad-citation" else "[1]"
        fake_llm.reply = f'The baker said "we bake with love" {cite}.'
    else:
        fake_llm.mode = mode
    plain = gen_pipeline.ask(BREAD_Q)
    gen = await gen_pipeline.agenerate(BREAD_Q, stream=mode == "garbage")
    assert gen.fell_back and gen.text is None and gen.citations == []
    assert gen.answer.quote == plain.quote  # exactly the extractive answer
    assert gen.reason and gen.reason in caplog.text  # a note in the log
