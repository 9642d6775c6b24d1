"""`newsdesk ask --generate` against the loopback fake OpenAI-compatible server."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from index.cli import main
from index.config import LLMSettings, load_settings
from tests.conftest import HASH_CONFIG, ROOT, Nd, Run
from tests.fakes.http import closed_port
from tests.fakes.openai import ChatRequest, FakeOpenAI

BREAD_Q = "Who won the national bread prize?"
STARTER = "uses a sourdough starter that is forty years old"


def js(r: Run) -> Any:
    assert r.code == 0, (r.code, r.err)
    return json.loads(r.out)


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


Gnd = Callable[..., Run]


@pytest.fixture
def gnd(nd: Nd, tmp_path: Path, corpus_dir: Path, fake_llm: FakeOpenAI) -> Gnd:
    """conftest's ``nd`` with the conftest corpus indexed and ``[llm]`` pointing at the fake;
    ``llm=`` replaces the ``[llm]`` section (``""``: none)."""
    configs: dict[str, Path] = {}

    def config(llm: str) -> Path:
        if llm not in configs:
            configs[llm] = p = tmp_path / f"llm-{len(configs)}.toml"
            p.write_text(HASH_CONFIG + llm, encoding="utf-8")
        return configs[llm]

    default = f'[llm]\nbase_url = "{fake_llm.base_url}"\nmodel = "fake"\ntimeout = 1.0\n'

    def run(*args: str, stdin: str | None = None, llm: str | None = None) -> Run:
        return nd(*args, stdin=stdin, config=config(default if llm is None else llm))

    assert run("index", "-q", str(corpus_dir)).code == 0
    return run


def faithful(req: ChatRequest) -> str:
    n = req.passage_with("Lyon")
    return f'A bakery in Lyon won; its baker, Paul Martin, "{STARTER}" [{n}].'


def test_written_answer_with_sources_and_evidence(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = faithful
    r = gnd("ask", "--generate", BREAD_Q)
    assert r.code == 0 and r.err == ""
    text, _, rest = r.out.partition("\n\n")
    assert STARTER in text and "[1]" in text
    assert "[1] Bakery wins bread prize (" in rest
    evidence = rest.split("Evidence:", 1)[1]
    assert "> “A small bakery in Lyon won the national bread prize" in evidence
    assert "— Bakery wins bread prize" in evidence
    assert "removed" not in r.out
    assert not fake_llm.requests[0].stream


def test_written_answer_json(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = faithful
    plain = js(gnd("ask", "--json", BREAD_Q))
    o = js(gnd("ask", "--generate", "--json", BREAD_Q))
    assert "generated" not in plain  # the ask --json contract without --generate is unchanged
    assert {k: v for k, v in o.items() if k not in ("generated", "elapsed_ms")} == {
        k: v for k, v in plain.items() if k != "elapsed_ms"
    }
    g = o["generated"]
    assert STARTER in g["text"] and g["fell_back"] is False and g["reason"] is None
    assert g["removed"] == [] and g["model"] == "fake-llm-1" and g["prompt"] == "answer-v1"
    (c,) = g["citations"]
    assert c["n"] == 1 and c["title"] == "Bakery wins bread prize"
    assert c["chunk_id"] == o["passages"][0]["chunk_id"]


def test_fabricated_quote_is_removed(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    def reply(req: ChatRequest) -> str:
        n = req.passage_with("Lyon")
        return f'{faithful(req)} Martin said "bread is my whole life" [{n}].'

    fake_llm.reply = reply
    o = js(gnd("ask", "--generate", "--json", BREAD_Q))
    g = o["generated"]
    assert STARTER in g["text"] and "bread is my whole life" not in g["text"]
    assert not g["fell_back"]
    assert g["removed"][0] == {
        "kind": "quote",
        "text": "bread is my whole life",
        "reason": "not found verbatim in [1]",
    }
    r = gnd("ask", "--generate", BREAD_Q)
    assert "bread is my whole life" not in r.out
    assert "(removed: 1 unverifiable quote; see --json)" in r.out


def test_citation_to_a_missing_passage_is_removed(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = lambda req: f"{faithful(req)} The palace paid for it [7]."
    g = js(gnd("ask", "--generate", "--json", BREAD_Q))["generated"]
    assert "[7]" not in g["text"] and "palace" not in g["text"] and STARTER in g["text"]
    assert [r["kind"] for r in g["removed"]] == ["citation", "sentence"]
    assert [c["n"] for c in g["citations"]] == [1]


@pytest.mark.parametrize(
    "mode", ["error", "hang", "garbage", "down", "only-fabricated", "only-bad-citation", "refusal"]
)
def test_failures_give_the_extractive_answer(gnd: Gnd, fake_llm: FakeOpenAI, mode: str) -> None:
    llm = None
    if mode == "down":
        llm = f'[llm]\nbase_url = "http://127.0.0.1:{closed_port()}/v1"\nmodel = "m"\n'
    elif mode == "only-fabricated":
        fake_llm.reply = 'Martin said "bread is my whole life" [1].'
    elif mode == "only-bad-citation":
        fake_llm.reply = "A bakery in Lyon won [4]."
    elif mode == "refusal":
        fake_llm.reply = "NOT IN THE ARTICLES"
    else:
        fake_llm.mode = mode
    plain = gnd("ask", BREAD_Q)
    r = gnd("ask", "--generate", BREAD_Q, llm=llm)
    assert r.code == 0
    assert r.out == plain.out  # exactly what `ask` prints
    if mode in ("error", "hang", "garbage", "down"):  # endpoint trouble: a note in the log
        assert r.err.startswith("WARNING index.written.generate: no written answer: ")
        assert "answering with the extracted quote" in r.err and r.err.count("\n") == 1
    o = js(gnd("ask", "--generate", "--json", BREAD_Q, llm=llm))
    assert o["answer"]["text"] == js(gnd("ask", "--json", BREAD_Q))["answer"]["text"]
    assert o["generated"]["fell_back"] is True and o["generated"]["text"] is None
    assert o["generated"]["reason"]


def test_batch_generate_one_object_per_line(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = faithful
    r = gnd("ask", "--generate", "--json", stdin=f"{BREAD_Q}\n\n{BREAD_Q}\n")
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 3 and r.code == 0
    assert STARTER in rows[0]["generated"]["text"]
    assert "error" in rows[1] and rows[1]["question"] == ""
    assert rows[2]["generated"]["citations"]


def test_chat_generate(gnd: Gnd, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = faithful
    r = gnd("chat", "--generate", stdin=f"{BREAD_Q}\nquit\n")
    assert r.code == 0 and STARTER in r.out and "Evidence:" in r.out


def test_generate_without_llm_config_is_one_clear_error(gnd: Gnd) -> None:
    r = gnd("ask", "--generate", BREAD_Q, llm="")
    assert r.out == "" and r.one_error_line() == (
        "newsdesk: error: written answers are off: set base_url and model in the [llm] section "
        "of the config (see README, “Written answers”)"
    )


@pytest.mark.parametrize(
    ("llm", "message"),
    [
        ('base_url = "localhost:8080"', 'llm.base_url must be an http(s) URL such as "http://'),
        ('base_url = "http://localhost:8080/v1"', "llm.model must be set when llm.base_url is"),
        ("max_tokens = 0", "llm.max_tokens must be an integer between 16 and 32768 (got 0)"),
        ("timeout = -1", "llm.timeout must be a number of seconds > 0 and <= 600 (got -1.0)"),
        ('temperature = "hot"', "llm.temperature must be a number (got 'hot')"),
        ('api_key = "sk-1"', "unknown key 'llm.api_key' (did you mean \"llm.api_key_env\"?)"),
    ],
)
def test_bad_llm_config_names_the_key(gnd: Gnd, llm: str, message: str) -> None:
    r = gnd("ask", "--generate", BREAD_Q, llm=f"[llm]\n{llm}\n")
    assert message in r.one_error_line()


def test_a_key_pasted_into_api_key_env_is_refused_without_echoing_it(gnd: Gnd) -> None:
    secret = "sk-proj-AbC123xyz-SECRET"
    r = gnd("ask", BREAD_Q, llm=f'[llm]\napi_key_env = "{secret}"\n')
    line = r.one_error_line()
    assert "llm.api_key_env must be the name of an environment variable" in line
    assert secret not in r.err


def test_help_explains_generate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    out = capsys.readouterr().out
    assert "--generate" in out and "verbatim" in out and "llm.timeout" in out


def test_config_example_documents_every_llm_key(tmp_path: Path) -> None:
    """The commented [llm] section of config.example.toml, uncommented, is valid and complete."""
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    # the section: from "# [llm]" to the first line that is not a comment
    after = example[example.index("# [llm]") :].split("\n")
    section = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), after))
    lines = [m.group(1) for m in re.finditer(r"(?m)^# ((?:\[llm\]|[a-z][a-z_]* = ).*)$", section)]
    keys = [line.split(" = ")[0] for line in lines[1:]]
    assert lines[0] == "[llm]"
    assert keys == [f.name for f in dataclasses.fields(LLMSettings)]
    config = tmp_path / "example.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(config)
    assert settings.llm == LLMSettings() and not settings.llm.enabled
