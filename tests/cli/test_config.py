from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

from index.config import load_settings
from index.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings()
    assert s.retrieval.k == 5
    assert s.data_dir == tmp_path / "xdg" / "newsdesk"
    assert s.config_path is None


def test_example_config_loads_as_is() -> None:
    root = Path(__file__).resolve().parent.parent.parent
    s = load_settings(root / "config.example.toml")
    assert s.embedding.model == "all-MiniLM-L6-v2"
    assert s.discord.channel_ids == []


def test_unknown_key_is_named_with_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, "[retrieval]\nkk = 3\n")
    with pytest.raises(
        ConfigError, match=r"unknown key 'retrieval.kk' \(did you mean \"retrieval.k\"\?\)"
    ):
        load_settings(p)


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'retrival'"):
        load_settings(write(tmp_path, "[retrival]\nk = 3\n"))


def test_bad_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retrieval.k must be an integer \(got 'ten'\)"):
        load_settings(write(tmp_path, '[retrieval]\nk = "ten"\n'))


def test_bad_range_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retrieval\.k must be an integer between 1 and 50"):
        load_settings(write(tmp_path, "[retrieval]\nk = 0\n"))


def test_bad_choice_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r'retrieval\.mode must be one of "hybrid", "dense", "bm25"'
    ):
        load_settings(write(tmp_path, '[retrieval]\nmode = "magic"\n'))


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[retrieval\n"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, 'data_dir = "rel"\n')
    assert load_settings(p).data_dir == (tmp_path / "rel").resolve()
    monkeypatch.setenv("NEWSDESK_DATA_DIR", str(tmp_path / "env"))
    assert load_settings(p).data_dir == tmp_path / "env"
    assert load_settings(p, data_dir=tmp_path / "flag").data_dir == tmp_path / "flag"


def test_config_from_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text("[retrieval]\nk = 7\n")
    assert load_settings().retrieval.k == 7
    other = tmp_path / "other.toml"
    other.write_text("[retrieval]\nk = 9\n")
    monkeypatch.setenv("NEWSDESK_CONFIG", str(other))
    assert load_settings().retrieval.k == 9


def test_token_in_config_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = "MTA" + "x" * 21 + ".Gabcde." + "y" * 27
    p = write(tmp_path, f'[discord]\nchannel_ids = []\n# token = "{token}"\n')
    with caplog.at_level(logging.WARNING):
        load_settings(p)
    assert "DISCORD_TOKEN" in caplog.text
    assert token not in caplog.text


SECRETS = [
    "MTA" + "x" * 21 + ".Gabcde." + "y" * 27,  # Discord token shape
    "sk-proj-" + "Ab3" * 12,  # OpenAI key
    "ghp_" + "aB1" * 12,  # GitHub token: a valid environment variable name
    "root:Milvus-S3cret-passw0rd",  # Milvus "user:password"
    "q8Ld2Zx7Kp0Vn4Rt6Wy1Hs9J",  # 24 random characters: also a valid variable name
]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize(
    "table, key",
    [("store", "token_env"), ("llm", "api_key_env")],
)
def test_a_secret_in_an_env_key_is_refused_and_never_echoed(
    tmp_path: Path, secret: str, table: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A token pasted into ``store.token_env`` / ``llm.api_key_env`` (instead of the name of
    the variable holding it) is refused, naming the key and never the value."""
    p = write(tmp_path, f'[{table}]\n{key} = "{secret}"\n')
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as err:
        load_settings(p)
    assert f"{table}.{key}" in str(err.value)
    assert "name of an environment variable" in str(err.value)
    assert secret not in str(err.value)
    assert secret[:12] not in str(err.value)
    assert secret not in caplog.text


@pytest.mark.parametrize(
    "text, key",
    [
        ("[store]\ntoken_env = 12345\n", "store.token_env"),  # wrong type
        ('[store]\nuri = "http://root:S3cretPassw0rd@milvus:19530/x"\n', "store.uri"),
        ('[embedding]\nmodel = ["sk-' + "Ab3" * 12 + '"]\n', "embedding.model"),
        ('[llm]\nbase_url = "ghp_' + "aB1" * 12 + '"\n', "llm.base_url"),
    ],
)
def test_a_bad_value_that_looks_like_a_secret_is_not_echoed(
    tmp_path: Path, text: str, key: str
) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    msg = str(err.value)
    assert key in msg
    assert "not shown" in msg
    for secret in ("12345", "S3cretPassw0rd", "Ab3Ab3", "aB1aB1"):
        assert secret not in msg


def test_ordinary_env_names_and_values_still_load_and_echo(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[store]\ntoken_env = "MY_MILVUS_TOKEN_2"\n'))
    assert s.store.token_env == "MY_MILVUS_TOKEN_2"
    with pytest.raises(ConfigError, match=r"got 'ten'"):
        load_settings(write(tmp_path, '[retrieval]\nk = "ten"\n'))


def test_bench_settings_toml_round_trips_with_unset_values(tmp_path: Path) -> None:
    """bench hands its settings to the processes it starts as TOML: an unset value (TOML has
    no null) is left out, not written as a string the loader refuses."""
    from index.tools.bench_parts import settings_toml

    s = load_settings(data_dir=tmp_path / "d")
    assert s.answer.min_confidence is None
    cfg = tmp_path / "bench.toml"
    cfg.write_text(settings_toml(s), encoding="utf-8")
    again = load_settings(cfg, data_dir=tmp_path / "d")
    assert again.answer == s.answer and again.retrieval == s.retrieval


EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_example_is_written_from_the_field_descriptions() -> None:
    """config.example.toml is the output of index.config.example: the field descriptions in
    index/config/ are the one source of the documentation, so the two cannot drift. After
    changing a key or its ``doc(...)``: python -m index.config.example > config.example.toml"""
    from index.config.example import render

    assert EXAMPLE.read_text(encoding="utf-8") == render(), (
        "config.example.toml is stale: run `python -m index.config.example > config.example.toml`"
    )


def _uncommented_example() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The example with every commented-out key and section switched on, read as TOML, and
    the keys each ``[[table]]`` example shows (read from the text, not from the models)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head, _, tables = text.partition("#\n# [[")
    key = re.compile(r"^# ([a-z][a-z_]* = .*|\[[a-z]+\])$")
    lines = [m.group(1) if (m := key.match(line)) else line for line in head.splitlines()]
    shown: dict[str, list[str]] = {}
    for block in ("[[" + tables).split("#\n# [["):
        name, *rows = block.strip().splitlines()
        shown[name.strip("[] ")] = [row.removeprefix("# ").split(" = ")[0] for row in rows]
    return tomllib.loads("\n".join(lines)), shown


def test_example_documents_exactly_the_model_fields(tmp_path: Path) -> None:
    """Every key of every model is in the example with its default (a key without a literal
    default with an example value), and the example has no key the models lack."""
    from index.config import FeedSubscription, FolderSubscription, ScopeSettings, Settings

    data, tables = _uncommented_example()
    defaults = Settings()
    sections = {
        f.name: getattr(defaults, f.name)
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(getattr(defaults, f.name))
    }
    top = {f.name for f in dataclasses.fields(Settings)} - set(sections) - {"config_path"}
    assert set(data) == top - {"feeds", "folders", "scopes"} | set(sections)
    assert data["log_level"] == defaults.log_level and "data_dir" in data
    for name, section in sections.items():
        assert set(data[name]) == {f.name for f in dataclasses.fields(section)}, name
        for key, value in data[name].items():
            if (name, key) != ("answer", "min_confidence"):  # unset by default: an example
                assert value == getattr(section, key), f"{name}.{key}"
    assert tables == {
        "feeds": [f.name for f in dataclasses.fields(FeedSubscription)],
        "folders": [f.name for f in dataclasses.fields(FolderSubscription)],
        "scopes": [f.name for f in dataclasses.fields(ScopeSettings)],
    }
    assert load_settings(_write_data(data, tmp_path)).answer.min_confidence == 0.5


def _write_data(data: dict[str, Any], folder: Path) -> Path:
    from index.config.example import toml_value

    path = folder / "all.toml"
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += [f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_key_has_a_description() -> None:
    from index.config import Settings
    from index.config.example import _doc

    def walk(cls: type, prefix: str) -> list[str]:
        hints = typing.get_type_hints(cls, include_extras=True)
        missing = []
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                missing += walk(tp, f"{f.name}.")
            elif f.name != "config_path" and not _doc(tp)[0]:
                missing.append(prefix + f.name)
        return missing

    assert walk(Settings, "") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[discord]\nguild_ids = [1, "x"]\n', "discord.guild_ids[1] must be an integer (got 'x')"),
        ("[discord]\nguild_ids = 5\n", "discord.guild_ids must be a list of integers (got 5)"),
        (
            "[answer]\nmin_confidence = 2\n",
            "answer.min_confidence must be between 0 and 1 (got 2.0)",
        ),
        ('[answer]\nmin_confidence = "x"\n', "answer.min_confidence must be a number (got 'x')"),
        ("retrieval = 3\n", "[retrieval] must be a table"),
        ('data_dir = ""\n', "data_dir must be a path (got '')"),
        ("[retrieval]\nk = 2.0\n", "retrieval.k must be an integer (got 2.0)"),
        ("[discord]\nanswer_dms = 1\n", "discord.answer_dms must be true or false (got 1)"),
        ("[fetch]\nmax_file_bytes = 5\n", "fetch.max_file_bytes must be >= 1024 (got 5)"),
        ("[retrieval]\ndense_weight = -1\n", "retrieval.dense_weight must be >= 0 (got -1.0)"),
        (
            "[llm]\ntimeout = 0\n",
            "llm.timeout must be a number of seconds > 0 and <= 600 (got 0.0)",
        ),
        ('[store]\ncollection_prefix = "9lives"\n', "store.collection_prefix must be letters, "),
        ("[chunking]\nmax_tokens = 10\n", "chunking.max_tokens must be 0 (the model's limit) or"),
        ('log_level = "loud"\n', "log_level must be one of CRITICAL, DEBUG, ERROR, INFO, WARNING"),
        ('config_path = "x"\n', "unknown key 'config_path'"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    """The type, limit and rule errors read as before the move to declared models."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_settings_built_in_code_are_not_validated(tmp_path: Path) -> None:
    """Only a loaded file is checked: code and tests copy settings with dataclasses.replace and
    may go under a file's minimum on purpose (a tiny ANN threshold for a small test)."""
    from index.config import FetchSettings, RetrievalSettings

    r = dataclasses.replace(RetrievalSettings(), ann_threshold=40)
    assert dataclasses.replace(r, ivf_nprobe=3).ann_threshold == 40
    assert FetchSettings(timeout=0.6).timeout == 0.6
    with pytest.raises(ConfigError, match=r"retrieval\.ann_threshold must be an integer >= 1000"):
        load_settings(write(tmp_path, "[retrieval]\nann_threshold = 40\n"))


def test_float_keys_take_integers_and_values_keep_their_types(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "[fetch]\ntimeout = 3\n[[folders]]\npath = 'a'\n"))
    assert s.fetch.timeout == 3.0 and isinstance(s.fetch.timeout, float)
    assert s.folders[0].path == tmp_path / "a" and isinstance(s.folders[0].interval, float)


def test_msgspec_is_imported_only_when_a_config_file_is_read(tmp_path: Path) -> None:
    """Start-up: ``import index.config`` and settings from defaults and the environment do not
    import the validator; the first config file read does (see index/config/fields.py)."""
    config = write(tmp_path, "[retrieval]\nk = 7\n")
    code = (
        "import sys\n"
        "from index.config import load_settings\n"
        f"load_settings(data_dir={str(tmp_path)!r})\n"
        "assert 'msgspec' not in sys.modules, 'imported without a config file'\n"
        f"assert load_settings({str(config)!r}).retrieval.k == 7\n"
        "assert 'msgspec' in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "NEWSDESK_CONFIG": ""}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
