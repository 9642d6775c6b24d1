"""README's examples, run against the bundled samples: where README shows what a command prints,
the command prints exactly that, byte for byte (issue 19's acceptance test).

An example is a fenced block whose first line is ``$ newsdesk …``; the lines after it are the
output. The samples are indexed once, with the real bundled model and the default settings, and
the commands run from the project folder, as after ``make run``. A ``--generate`` example needs
a language model: the fake OpenAI-compatible endpoint answers with the written text README
shows (the part that is the model's), and everything newsdesk prints around it -- sources,
evidence -- must match. Error lines README quotes for a bad config are checked the same way.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.model

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str]]:
    """(command line, output shown) for every README block that shows a `newsdesk` run."""
    found = []
    for m in _BLOCK.finditer(README.read_text(encoding="utf-8")):
        first, _, rest = m.group(1).partition("\n")
        if first.startswith("$ newsdesk "):
            found.append((first[2:], rest))
    return found


def written_part(output: str) -> str:
    """The model's text in a ``--generate`` example: up to the first blank line, unwrapped."""
    return " ".join(output.split("\n\n", 1)[0].split())


def test_readme_has_examples_with_output() -> None:
    shown = examples()
    assert len(shown) >= 2
    assert any("--generate" in cmd for cmd, _ in shown)
    assert all(out.strip() for _cmd, out in shown)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The samples indexed once, with the default settings (the real model)."""
    from index.cli import main

    d = tmp_path_factory.mktemp("readme") / "data"
    assert main(["--data-dir", str(d), "-q", "index", str(ROOT / "samples")], io.StringIO()) == 0
    yield d


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`newsdesk ARGV` in process, from the project folder, as printed to a pipe."""
    from index import cli
    from index.cli import render

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(render, "_term_width", lambda: 100)  # as on a pipe, whatever runs pytest
    out = io.StringIO()
    code = cli.main(argv, out=out)
    return code, out.getvalue()


@pytest.mark.parametrize(("command", "shown"), examples(), ids=[c for c, _ in examples()])
def test_readme_example_prints_what_readme_shows(
    command: str, shown: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = shlex.split(command)
    assert words[0] == "newsdesk"
    argv = ["--data-dir", str(data_dir), *words[1:]]
    if "--generate" not in words:
        code, out = run(argv, monkeypatch)
        assert code == 0
        assert out == shown
        return
    with FakeOpenAI() as llm:
        llm.reply = written_part(shown)
        cfg = tmp_path / "llm.toml"
        cfg.write_text(f'[llm]\nbase_url = "{llm.base_url}"\nmodel = "m"\n', encoding="utf-8")
        code, out = run(["--config", str(cfg), *argv], monkeypatch)
    assert code == 0
    assert out == shown


@pytest.mark.parametrize(
    ("config", "shown"),
    [
        ("[retrieval]\nk = 0\n", "retrieval.k must be an integer between 1 and 50 (got 0)"),
        ("[retrieval]\nkk = 5\n", "unknown key 'retrieval.kk' (did you mean \"retrieval.k\"?)"),
    ],
)
def test_readme_config_errors_are_printed_as_shown(
    config: str,
    shown: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from index.cli import main

    readme = README.read_text(encoding="utf-8")
    assert f"`{shown}`" in readme or f"config.toml: {shown}`" in readme
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["--data-dir", str(tmp_path / "d"), "stats"], out=io.StringIO()) == 1
    assert capsys.readouterr().err == f"newsdesk: error: config.toml: {shown}\n"


def test_readme_check_line_is_what_check_prints(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command table's `check` row shows its output with N and M for the counts."""
    import json

    readme = README.read_text(encoding="utf-8")
    assert "`index OK: N articles, M passages`" in readme
    code, out = run(["--data-dir", str(data_dir), "stats", "--json"], monkeypatch)
    stats = json.loads(out)
    passages = stats.get("passages", stats.get("chunks"))  # "chunks" in older JSON
    code, out = run(["--data-dir", str(data_dir), "check"], monkeypatch)
    assert code == 0
    assert out == f"index OK: {stats['articles']} articles, {passages} passages\n"
