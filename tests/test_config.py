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
    root = Path(__file__).resolve().parent.parent
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
