"""Shared by the reliability tests: a generated corpus and a whole-index consistency snapshot."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.config import Settings, load_settings
from index.embedding.hashing import HashEmbedder
from index.pipeline import Pipeline
from index.storage.faiss_index import VectorIndex
from index.storage.lexical import LexicalIndex
from index.storage.local import GEN_DIR
from tests.fakes.config import HASH_MIN_CONFIDENCE, HASH_RERANKER

WORDS = [
    *("market", "council", "river", "school", "energy", "price", "storm", "festival"),
    *("court", "vote", "harbour", "train", "museum", "farmer", "bridge", "doctor"),
    *("team", "orchard", "lighthouse", "glacier", "factory", "library", "tram", "ferry"),
]


def article_text(i: int, version: int = 0, paragraphs: int = 6) -> str:
    """A plain-text article (title line, blank line, paragraphs), deterministic in (i, version)."""
    rnd = random.Random(i * 1000 + version)
    paras = []
    for p in range(paragraphs):
        sents = [
            f"The {rnd.choice(WORDS)} of town {i} reported {rnd.randint(1, 999)} "
            f"{rnd.choice(WORDS)} visitors on day {p} of edition {version}."
            for _ in range(5)
        ]
        paras.append(" ".join(sents))
    # one unique, easy-to-find sentence per article
    paras[0] = f"The mayor of Town{i} opened the {WORDS[i % len(WORDS)]} exhibition. " + paras[0]
    return f"Article {i} edition {version}\n\n" + "\n\n".join(paras)


def write_corpus(folder: Path, ids: range, version: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (folder / f"a{i:04d}.txt").write_text(article_text(i, version), encoding="utf-8")
    return folder


def hash_settings(data_dir: Path, config: Path | None = None) -> Settings:
    s = load_settings(config, data_dir=data_dir)
    s.embedding.model = "hash"
    s.answer.min_confidence = HASH_MIN_CONFIDENCE
    s.answer.reranker = HASH_RERANKER
    return s


def open_pipeline(data_dir: Path) -> Pipeline:
    """What a fresh `newsdesk` process would open (the CLI's hash model is HashEmbedder())."""
    return Pipeline(hash_settings(data_dir), HashEmbedder())


@dataclass(frozen=True)
class IndexState:
    generation: int
    hashes: dict[str, str]  # article id -> content hash
    chunk_ids: frozenset[int]
    faiss_ids: frozenset[int]
    bm25_ids: frozenset[int]


def index_state(data_dir: Path, files: bool = True) -> IndexState:
    """Everything the index is made of, read straight from the files (no caching).

    ``files=False`` leaves out the FAISS and BM25 ids (empty sets): SQLite only.
    """
    with open_pipeline(data_dir) as p:
        gen = p.store.generation()
        hashes = p.store.hashes()
        chunk_ids = frozenset(p.store.chunk_ids())
        gdir = data_dir / GEN_DIR / f"{gen:08d}"
        if gen and files:
            faiss_ids = frozenset(
                VectorIndex.load(gdir / "vectors.faiss", p.embedder.dimension).ids().tolist()
            )
            bm25_ids = frozenset(LexicalIndex.load(gdir / "lexical").ids.tolist())
        else:
            faiss_ids = bm25_ids = frozenset()
    return IndexState(gen, hashes, chunk_ids, faiss_ids, bm25_ids)


def figures_path(tmp_root: Path, name: str) -> Path:
    """Where a test writes the figures it measured (JSON, next to the pytest tmp dirs)."""
    return tmp_root / f"reliability-{name}.json"


def write_figures(path: Path, figures: dict[str, object]) -> None:
    path.write_text(json.dumps(figures, indent=2, default=_jsonable), encoding="utf-8")
    print(f"\n{path.name}: {json.dumps(figures, default=_jsonable)}")


def _jsonable(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)
