"""Shared fixtures: a deterministic fake embedder, tiny corpora, isolated settings."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.pipeline import Pipeline
from tests.fakes.config import HASH_CONFIG, HASH_MIN_CONFIDENCE, HASH_RERANKER

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


# -- vector-store backends (index/storage/base.py) ------------------------------------------------
# Engine tests marked ``backends`` (a module's ``pytestmark``) run once per backend: FAISS files
# and Milvus Lite in the test's temp dir. ``pytest --backend milvus`` runs every test that uses
# the ``settings`` fixture on one backend instead; tests of FAISS itself (index types, its files)
# are marked ``faiss_only``.
BACKENDS = ("faiss", "milvus")


def milvus_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("pymilvus", "milvus_lite"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="run every test on this [store] backend (default: faiss; tests marked "
        "'backends' run on both)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    forced = metafunc.config.getoption("--backend")
    if metafunc.definition.get_closest_marker("faiss_only"):
        metafunc.parametrize("backend", ["faiss"], indirect=True)
    elif forced:
        metafunc.parametrize("backend", [forced], indirect=True)
    elif metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--backend``, run only the tests whose settings depend on the backend."""
    if not config.getoption("--backend"):
        return
    keep, drop = [], []
    for item in items:
        uses = "backend" in getattr(item, "fixturenames", ())
        (keep if uses and not item.get_closest_marker("faiss_only") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The ``[store] backend`` of this test's settings."""
    name = str(getattr(request, "param", "faiss"))
    if name == "milvus" and not milvus_available():
        pytest.skip('Milvus packages not installed: pip install -e ".[milvus]"')
    return name


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config, data dir or token."""
    for var in ("NEWSDESK_CONFIG", "NEWSDESK_DATA_DIR", "NEWSDESK_ALLOW_HOSTS", "DISCORD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _session_log_level() -> int:
    """The root logger's level when the session starts (before any module-scoped fixture)."""
    return logging.getLogger().level


@pytest.fixture(autouse=True)
def _root_log_level(_session_log_level: int) -> Iterator[None]:
    """A test (or a module-scoped fixture) that runs the CLI in process (``main([..., "-q"])``)
    sets the root logger's level; put back the session's, so that a later test's ``caplog``
    sees warnings whatever the order of the tests."""
    yield
    logging.getLogger().setLevel(_session_log_level)


@pytest.fixture
def settings(tmp_path: Path, backend: str) -> Settings:
    s = load_settings(data_dir=tmp_path / "data")
    # answer.min_confidence is calibrated for the real model; the hash embedder scores lower
    s.answer.min_confidence = HASH_MIN_CONFIDENCE
    s.answer.reranker = HASH_RERANKER
    s.store.backend = backend  # type: ignore[assignment]
    return s


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
    p.write_text(HASH_CONFIG, encoding="utf-8")
    return p


class Run:
    """One in-process `newsdesk` run: exit code, stdout, stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def one_error_line(self) -> str:
        """The run failed with exactly one line on stderr, without a traceback."""
        assert self.code == 1, (self.code, self.out, self.err)
        assert "Traceback" not in self.err + self.out
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("newsdesk: error: "), lines
        return lines[0]


Nd = Callable[..., Run]


@pytest.fixture
def nd(
    hash_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Nd]:
    """`nd("ask", "...")` runs `newsdesk` in process with the hash embedder and a data dir in
    tmp_path (``config=`` another config file, ``stdin=`` text); never a traceback."""
    from index.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*args: str, stdin: str | None = None, config: Path = hash_config) -> Run:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out = io.StringIO()
        argv = ["--config", str(config), "--data-dir", str(tmp_path / "data"), *args]
        code = main(argv, out=out)
        r = Run(code, out.getvalue(), capsys.readouterr().err)
        assert "Traceback" not in r.out + r.err
        return r

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from index.config import EmbeddingSettings
    from index.embedding.sbert import SentenceTransformerEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEmbedder(EmbeddingSettings())


# -- Discord bot tests (tests/bot/): the real NewsdeskBot against tests/fakes/discord/ -------------


@dataclasses.dataclass
class DiscordWorld:
    """A guild with a text channel, a member and an admin, on a started FakeDiscord."""

    fake: Any  # tests.fakes.discord.FakeDiscord
    guild: int
    channel: int
    user: int
    admin: int


def _fakediscord() -> Any:
    from tests.fakes import discord as fakediscord

    return fakediscord


@pytest.fixture
async def discord_fake() -> AsyncIterator[Any]:
    fake = _fakediscord().FakeDiscord(heartbeat_interval_ms=200)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def discord_world(discord_fake: Any) -> DiscordWorld:
    guild = discord_fake.add_guild("Newsroom")
    channel = discord_fake.add_channel(guild, "general")
    user = discord_fake.add_user("alice")
    admin = discord_fake.add_user("boss")
    discord_fake.add_member(guild, user)
    discord_fake.add_member(guild, admin, admin=True)
    return DiscordWorld(discord_fake, guild, channel, user, admin)


@pytest.fixture
def bot_settings(settings: Settings) -> Settings:
    """Bot settings for tests: a generous cooldown (tests that need one set it)."""
    settings.discord.cooldown_rate = 1000
    settings.discord.cooldown_seconds = 1.0
    return settings


@pytest.fixture
def bot_pipeline(pipeline: Pipeline, corpus_dir: Path) -> Pipeline:
    """The fake-embedder pipeline with the three small conftest articles indexed."""
    pipeline.add([str(corpus_dir)])
    return pipeline


@pytest.fixture
def start_bot(
    discord_world: DiscordWorld, bot_settings: Settings, bot_pipeline: Pipeline
) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with start_bot() as bot:`` runs bot.client.NewsdeskBot against the fake.

    The world's guild is an admin server (``discord.admin_guild_ids``) unless a test names
    its own admin servers, users or roles (tests of the default set them to empty themselves).
    """
    d = bot_settings.discord
    if not (d.admin_guild_ids or d.admin_user_ids or d.admin_role_ids or d.guild_ids):
        d.admin_guild_ids = [discord_world.guild]

    @contextlib.asynccontextmanager
    async def start(
        settings: Settings | None = None, pipeline: Pipeline | None = None
    ) -> AsyncIterator[Any]:
        from bot.client import NewsdeskBot

        bot = NewsdeskBot(settings or bot_settings, pipeline or bot_pipeline)
        async with _fakediscord().run_bot(discord_world.fake, bot):
            yield bot

    return start


class GatedEmbedder:
    """A HashEmbedder whose queries can be held (``query_gate``) or slowed, and whose indexing
    embeds one text at a time with ``index_delay`` seconds each, reporting progress per text."""

    def __init__(self, inner: HashEmbedder | None = None) -> None:
        import threading

        self.inner = inner or HashEmbedder()
        self.name = self.inner.name
        self.dimension = self.inner.dimension
        self.max_seq_length = self.inner.max_seq_length
        self.query_gate = threading.Event()
        self.query_gate.set()  # open
        self.query_entered = threading.Event()
        self.query_delay = 0.0
        self.index_delay = 0.0
        self.queries = 0

    def count_tokens(self, texts: Any) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed(self, texts: Any, *, progress: Any = None) -> Any:
        import time

        import numpy as np

        if progress is None or not self.index_delay:
            return self.inner.embed(texts, progress=progress)
        parts = []
        for t in texts:
            time.sleep(self.index_delay)
            parts.append(self.inner.embed([t]))
            progress(1)
        return np.vstack(parts) if parts else self.inner.embed([])

    def embed_passages(self, texts: Any, spans: Any, *, progress: Any = None) -> Any:
        vecs = self.embed(texts, progress=progress)
        return vecs, self.inner.embed_passages(texts, spans)[1]

    def embed_query(self, text: str) -> Any:
        import time

        self.queries += 1
        self.query_entered.set()
        if not self.query_gate.wait(15):
            raise TimeoutError("query gate never opened")
        if self.query_delay:
            time.sleep(self.query_delay)
        return self.inner.embed_query(text)


@pytest.fixture
def gated_embedder() -> GatedEmbedder:
    return GatedEmbedder()


@pytest.fixture
def gated_pipeline(
    settings: Settings, gated_embedder: GatedEmbedder, corpus_dir: Path
) -> Iterator[Pipeline]:
    """Like ``bot_pipeline`` (the conftest corpus indexed), with a :class:`GatedEmbedder`."""
    p = Pipeline(settings, gated_embedder)  # type: ignore[arg-type]
    p.add([str(corpus_dir)])
    yield p
    p.close()
