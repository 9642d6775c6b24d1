"""Shared fixtures: a deterministic fake embedder, tiny corpora, isolated settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.config import Settings, load_settings
from index.embedder import HashEmbedder
from index.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SQUAD = SHARED / "eval" / "squad-dev"
MA_ARTICLE = CORPUS / "alibaba-jack-ma-silicon-valley.txt"
if not MA_ARTICLE.exists():  # fall back to the bundled copy
    MA_ARTICLE = ROOT / "samples" / "alibaba-jack-ma-silicon-valley.txt"
    CORPUS = MA_ARTICLE.parent

ARTICLES = {
    "volcano.txt": (
        "Volcano erupts on remote island\n\n"
        "A volcano on the island of Tern erupted on Tuesday. Ash rose twelve kilometres into "
        "the sky. Flights across the region were cancelled.\n\n"
        "Scientists at the Tern Observatory said the eruption was the largest since 1982. "
        "Dr. Ana Ruiz said lava reached the sea within hours."
    ),
    "chess.md": (
        "---\ntitle: Chess champion keeps her title\nurl: https://news.example.com/chess\n"
        "date: 2024-03-05\n---\n"
        "The world chess champion defended her title in Madrid. She won the final game with "
        "the black pieces after six hours.\n\n"
        "Her opponent resigned on move 61. The prize fund was two million euros."
    ),
    "bakery.html": (
        "<html><head><title>Bakery wins bread prize</title></head><body><article>"
        "<h1>Bakery wins bread prize</h1>"
        "<p>A small bakery in Lyon won the national bread prize on Sunday. The baker, Paul "
        "Martin, uses a sourdough starter that is forty years old.</p>"
        "<p>The prize comes with a contract to supply the presidential palace for a year. "
        "Martin said he would hire two apprentices with the money.</p>"
        "</article></body></html>"
    ),
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config, data dir or token."""
    for var in ("NEWSDESK_CONFIG", "NEWSDESK_DATA_DIR", "DISCORD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def pipeline(settings: Settings, fake_embedder: HashEmbedder) -> Iterator[Pipeline]:
    p = Pipeline(settings, fake_embedder)
    yield p
    p.close()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for name, text in ARTICLES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def hash_config(tmp_path: Path) -> Path:
    """A config file selecting the deterministic hash embedder (CLI tests without a model)."""
    p = tmp_path / "hash.toml"
    p.write_text('[embedding]\nmodel = "hash"\n', encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from index.config import EmbeddingSettings
    from index.embedder import SentenceTransformerEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEmbedder(EmbeddingSettings())
