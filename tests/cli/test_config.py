from __future__ import annotations

import logging
from pathlib import Path

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
    from index.tools.bench import settings_toml

    s = load_settings(data_dir=tmp_path / "d")
    assert s.answer.min_confidence is None
    cfg = tmp_path / "bench.toml"
    cfg.write_text(settings_toml(s), encoding="utf-8")
    again = load_settings(cfg, data_dir=tmp_path / "d")
    assert again.answer == s.answer and again.retrieval == s.retrieval
