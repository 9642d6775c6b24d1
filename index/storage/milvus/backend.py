"""The Milvus backend (``[store] backend = "milvus"``): one index shared by many processes.

Everything a question needs lives in three Milvus collections (prefix ``store.collection_prefix``),
so any number of processes on any machines answer from one index and nothing is kept in the
data dir:

``<prefix>_state``        one row ``state``: the current generation, passage/article counts, the
                          next passage id and the meta (model, dimension, chunking); one row
                          ``writer``: the writer lease
``<prefix>_articles``     article versions, the text split into parts of at most 16,000
                          characters (Milvus strings hold at most 65,535 bytes)
``<prefix>_passages_<d>`` one row per passage: the vector (dimension ``d``), article id, offsets,
                          the passage's BM25 terms and its packed sentence vectors

Why metadata in Milvus rather than a separate SQL database: one system to deploy, back up and
secure, and a passage's vector, offsets and terms are written in the same row, so they can never
disagree.

**Generations without files.** Each row carries ``gen`` (the generation that added it) and
``dead`` (the generation that removed it, 0 while alive). A reader pins the ``state`` row once
per question and filters every search and query to the rows alive in that generation; a writer
adds rows for generation G+1 and marks replaced rows ``dead = G+1``, then switches by upserting
the one ``state`` row. So, as with the FAISS backend, readers keep answering from the
generation they started on while a writer works, and a crashed writer leaves only rows no
reader can see (the next writer deletes them). A full re-index adds a new set of passages and
raises ``floor`` (passages older than it are dead) instead of marking every row.

**BM25.** Milvus has its own BM25 full-text search (the ``BM25`` function over a sparse field,
Milvus 2.5+ and Milvus Lite 3.2), but it scores with per-segment statistics in Milvus Lite and
with Milvus's own analyzer, and the answer step needs the corpus idf of every question term.
So each passage row stores its terms exactly as :func:`index.search.lexical.tokenize` makes them,
and
every process builds the same in-memory BM25 index (bm25s scores) from them, updated by the
rows of each new generation only: the same keyword scores as the FAISS backend, to the bit.

**One writer.** A lease row in ``<prefix>_state`` (Fischer's mutual exclusion: claim, wait
longer than any rival's read-to-write gap, check the claim survived), renewed by a thread while
writing and checked again, with the generation, just before the switch.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pymilvus  # an ImportError here becomes a config error naming the package
from pymilvus import DataType, MilvusClient, MilvusException

from index.errors import (
    ArticleNotFoundError,
    IndexBusyError,
    IndexCorruptError,
    NewsdeskError,
)
from index.models import Article, Chunk, Document, Hit
from index.search.lexical import LexicalIndex, Tokens, tokenize
from index.search.titles import MemoryTitles
from index.storage.faiss_index import IndexPolicy
from index.storage.refs import resolve_article
from index.storage.sentences import SentenceVectors, sentence_problem, usable_sentences
from index.storage.sqlite import (
    ArticleRow,
    Store,
    now_iso,
)

if TYPE_CHECKING:
    from index.config import Settings
    from index.storage.base import Snapshot

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

TEXT_PART = 16_000  # characters of article text per row: at most 64,000 bytes of UTF-8
VARCHAR_MAX = 65_535
BATCH = 1_000  # rows per insert / upsert call
FLUSH_ROWS = 1_000  # a write adding this many passages seals them into an indexed segment
QUERY_IDS = 4_000  # ids per "id in [...]" query
CREATE_WAIT = 30.0  # s: how long another process may take to finish creating a collection
SETTLE = 0.5  # Fischer's delay (s): longer than any rival's gap between reading and claiming
RENEW_EVERY = 1 / 3  # of the lease
DUMMY = [1.0, 0.0]  # Milvus wants a vector field in every collection

_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


class BackendError(NewsdeskError):
    """Milvus is unreachable or refused an operation (message for a person, no traceback)."""


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with its traceback at ERROR: the engine translates the
    errors into one line itself, so keep its loggers for ``-vv`` only."""
    root = logging.getLogger()
    level = logging.DEBUG if root.isEnabledFor(logging.DEBUG) else logging.CRITICAL
    for name in list(logging.root.manager.loggerDict):
        if name == "pymilvus" or name.startswith("pymilvus."):
            logging.getLogger(name).setLevel(level)
    logging.getLogger("pymilvus").setLevel(level)
    # embedded Milvus Lite serves in this process, and logs with a traceback each call it does
    # not implement (pymilvus then falls back, e.g. for query iterators' timestamps)
    logging.getLogger("grpc._server").setLevel(level)


def lit(value: str) -> str:
    """A Milvus expression string literal for ``value``."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return '"' + "".join(ch for ch in out if ch >= " ") + '"'


def lit_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


def int_list(values: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def resolve_uri(uri: str, data_dir: Path) -> tuple[str, bool]:
    """(uri for pymilvus, is it Milvus Lite embedded)."""
    uri = uri.strip()
    if not uri:
        return str(data_dir / "milvus.db"), True
    if uri.endswith(".db"):
        p = Path(uri).expanduser()
        return str(p if p.is_absolute() else (data_dir / p)), True
    return uri, False


def _first_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    lines = str(msg).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__


# -- BM25 from stored terms --------------------------------------------------------------------


def terms_of(texts: Sequence[str]) -> list[list[str]]:
    """BM25 terms of passages ("title\\ntext"), exactly as the FAISS backend's index has them."""
    return tokenize(texts)


def tokens_from_terms(
    term_lists: Sequence[Sequence[str]], vocab: list[str] | None = None
) -> Tokens:
    """:class:`Tokens` of already tokenised documents, extending (a copy of) ``vocab``."""
    vocab = list(vocab or [])
    index = {t: i for i, t in enumerate(vocab)}
    flat: list[int] = []
    offsets = [0]
    for terms in term_lists:
        for term in terms:
            i = index.get(term)
            if i is None:
                i = index[term] = len(vocab)
                vocab.append(term)
            flat.append(i)
        offsets.append(len(flat))
    return Tokens(vocab, np.asarray(flat, dtype=np.int32), np.asarray(offsets, dtype=np.int64))


def lexical_from_terms(ids: Sequence[int], term_lists: Sequence[Sequence[str]]) -> LexicalIndex:
    """The BM25 index of passages ``ids`` (any order) with their terms."""
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    ids_sorted = np.asarray(ids, dtype=np.int64)[order]
    tokens = tokens_from_terms([term_lists[i] for i in order.tolist()])
    return LexicalIndex.from_tokens(ids_sorted, tokens)


def lexical_delta(
    prev: LexicalIndex,
    removed: Sequence[int],
    ids: Sequence[int],
    term_lists: Sequence[Sequence[str]],
) -> LexicalIndex | None:
    """``prev`` without ``removed`` and with the new passages; None if it cannot be updated."""
    tokens = prev.tokens()
    if tokens is None or len(tokens) != len(prev):
        return None
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    new_ids = np.asarray(ids, dtype=np.int64)[order]
    keep = ~np.isin(prev.ids, np.asarray(removed, dtype=np.int64))
    kept_ids = prev.ids[keep]
    if len(new_ids) and len(kept_ids) and new_ids.min() <= kept_ids.max():
        return None
    kept = tokens.select(keep)
    new = tokens_from_terms([term_lists[i] for i in order.tolist()], kept.vocab)
    flat = np.concatenate((kept.flat, new.flat))
    offsets = np.concatenate((kept.offsets, new.offsets[1:] + kept.offsets[-1]))
    return LexicalIndex.from_tokens(
        np.concatenate((kept_ids, new_ids)), Tokens(new.vocab, flat, offsets)
    )


def _pack_b64(blob: bytes) -> str:
    text = base64.b64encode(blob).decode("ascii")
    return text if len(text) <= VARCHAR_MAX else ""


def _fits(text: str) -> str:
    """``text`` if a Milvus string holds it, else "" (then read from the article)."""
    return text if len(text) * 4 <= VARCHAR_MAX or len(text.encode("utf-8")) <= VARCHAR_MAX else ""


def _terms_text(terms: Sequence[str]) -> str:
    text = " ".join(terms)
    if len(text.encode("utf-8")) > VARCHAR_MAX:
        log.warning("a passage has more BM25 terms than a Milvus row holds; keeping the first")
        text = text.encode("utf-8")[:VARCHAR_MAX].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return text


# -- the backend -------------------------------------------------------------------------------


class MilvusBackend:
    """Rows, vectors and the writer lease in Milvus; see the module docstring."""

    name = "milvus"

    def __init__(self, settings: Settings) -> None:
        st = settings.store
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.uri, self.lite = resolve_uri(st.uri, self.data_dir)
        self.token_env = st.token_env
        self.prefix = st.collection_prefix
        self.lease_seconds = float(st.lease_seconds)
        self.settle = 0.0 if self.lite else SETTLE  # embedded: no other process can open it
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.policy = IndexPolicy.from_settings(settings.retrieval)
        self._client: MilvusClient | None = None
        self._client_lock = threading.Lock()
        self._loaded: set[str] = set()
        # (article id, version generation) -> (article, dead mark, generation it was read at)
        self._articles: OrderedDict[tuple[str, int], tuple[Article, int, int]] = OrderedDict()
        self._articles_lock = threading.Lock()
        self._lease: _Lease | None = None
        # passage rows by (collection, id): a row never changes but for its dead mark, and a
        # question only asks for ids its own generation returned
        self._rows: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._rows_lock = threading.Lock()
        self.store = MilvusStore(self)

    # -- connection --------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"Milvus Lite {self.uri}" if self.lite else f"Milvus at {self.uri}"

    @property
    def client(self) -> MilvusClient:
        c = self._client
        if c is not None:
            return c
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> MilvusClient:
        _quiet_pymilvus()
        token = os.environ.get(self.token_env, "")
        if self.lite:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            # one embedded server per path and process: milvus-lite starts it on first use and
            # is not safe against two threads starting it at once
            with _lite_lock if self.lite else contextlib.nullcontext():
                client = MilvusClient(uri=self.uri, token=token, timeout=30)
        except Exception as e:
            hint = ""
            if self.lite:
                hint = (
                    ": Milvus Lite opens a .db in one process at a time; to share it, run "
                    f"`milvus-lite server --data-dir {self.uri}` and set store.uri to its "
                    "http://127.0.0.1:19530"
                )
            raise BackendError(f"cannot open {self.where} ({_first_line(e)}){hint}") from None
        if self.lite:
            with _lite_lock:
                _lite_users[self.uri] = _lite_users.get(self.uri, 0) + 1
        log.info("connected to %s", self.where)
        return client

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.close()
        if self.lite:
            with _lite_lock:
                left = _lite_users.get(self.uri, 1) - 1
                if left <= 0:
                    _lite_users.pop(self.uri, None)
                else:
                    _lite_users[self.uri] = left
            if left <= 0:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A pymilvus call whose failure becomes one line for a person."""
        try:
            return fn(*args, **kwargs)
        except MilvusException as e:
            raise BackendError(f"{self.where}: {what} failed ({_first_line(e)})") from e
        except (ConnectionError, OSError, pymilvus.exceptions.MilvusException) as e:
            raise BackendError(f"{self.where}: {what} failed ({_first_line(e)})") from e

    # -- collections -------------------------------------------------------------------------
    @property
    def c_state(self) -> str:
        return f"{self.prefix}_state"

    @property
    def c_articles(self) -> str:
        return f"{self.prefix}_articles"

    def c_passages(self, dimension: int) -> str:
        return f"{self.prefix}_passages_{int(dimension)}"

    def has(self, name: str) -> bool:
        """Whether the collection exists; it is loaded (waiting for a process that is still
        creating it) when it does."""
        if name in self._loaded:
            return True
        if not self.call("listing collections", self.client.has_collection, name):
            return False
        return self._settle(name)

    def _create(self, name: str, schema: Any, index_params: Any) -> None:
        if name not in self._loaded:
            self._settle(name, schema, index_params)

    def _settle(self, name: str, schema: Any = None, index_params: Any = None) -> bool:
        """Create (given a schema), index and load ``name``, whatever other processes do to it
        at the same moment (the bot's shards, a CLI beside the bot): each step is taken only
        when it is still missing, and a step that loses a race with another process ("already
        exists", or "no index" / "does not exist" while that process is half-way through) is
        looked at again after a short wait, for up to ``CREATE_WAIT`` seconds. False when the
        collection does not exist and no schema was given."""
        deadline = time.monotonic() + CREATE_WAIT
        delay = 0.02
        while True:
            try:
                if not self.client.has_collection(name):
                    if schema is None:
                        return False
                    try:
                        self.client.create_collection(
                            name, schema=schema, consistency_level="Strong"
                        )
                    except MilvusException as e:
                        if not _lost_race(e):
                            raise
                if index_params is not None and not self.client.list_indexes(name):
                    try:
                        self.client.create_index(name, index_params)
                    except MilvusException as e:
                        if not _lost_race(e):
                            raise
                self.client.load_collection(name)
            except (MilvusException, pymilvus.exceptions.MilvusException) as e:
                if not _lost_race(e) or time.monotonic() >= deadline:
                    what = "creating" if schema is not None else "loading"
                    raise BackendError(
                        f"{self.where}: {what} {name} failed ({_first_line(e)})"
                    ) from e
                log.debug("%s is being created elsewhere (%s); looking again", name, e)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            except (ConnectionError, OSError) as e:
                raise BackendError(f"{self.where}: loading {name} failed ({_first_line(e)})") from e
            self._loaded.add(name)
            return True

    def _dummy_index(self) -> Any:
        ip = self.client.prepare_index_params()
        ip.add_index(field_name="v", index_type="FLAT", metric_type="IP")
        return ip

    def ensure_state(self) -> None:
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("value", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        self._create(self.c_state, s, self._dummy_index())

    def ensure_articles(self) -> None:
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        for f in ("gen", "dead", "part", "parts", "chunks"):
            s.add_field(f, DataType.INT64)
        for f in ("title", "title_lower"):
            s.add_field(f, DataType.VARCHAR, max_length=4096)
        for f in ("source", "url", "text"):
            s.add_field(f, DataType.VARCHAR, max_length=VARCHAR_MAX)
        for f in ("published", "content_hash", "added_at", "updated_at"):
            s.add_field(f, DataType.VARCHAR, max_length=128)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        self._create(self.c_articles, s, self._dummy_index())

    def index_spec(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(Milvus index type, build params, search params) from ``[retrieval]``."""
        p = self.policy
        if p.index_type == "ivf":
            kind = "IVF_SQ8" if p.quantize == "sq8" else "IVF_FLAT"
            return kind, {"nlist": 1024}, {"nprobe": p.ivf_nprobe}
        if p.index_type == "hnsw":
            build = {"M": p.hnsw_m, "efConstruction": p.hnsw_ef_construction}
            return "HNSW", build, {"ef": p.hnsw_ef_search}
        return "FLAT", {}, {}  # "auto" and "flat": exact, the same answers as FAISS flat

    def ensure_passages(self, dimension: int) -> str:
        name = self.c_passages(dimension)
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        for f in ("ordinal", "pstart", "pend", "gen", "dead"):
            s.add_field(f, DataType.INT64)
        s.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("sentences", DataType.VARCHAR, max_length=VARCHAR_MAX)
        # what a hit shows, so that a question reads one row per passage and no article
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("title", DataType.VARCHAR, max_length=4096)
        for f in ("source", "url"):
            s.add_field(f, DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("published", DataType.VARCHAR, max_length=128)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dimension))
        kind, build, _search = self.index_spec()
        ip = self.client.prepare_index_params()
        ip.add_index(field_name="vector", index_type=kind, metric_type="IP", params=build)
        self._create(name, s, ip)
        return name

    # -- reading -----------------------------------------------------------------------------
    def query(
        self, name: str, expr: str, fields: Sequence[str], limit: int | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filter": expr, "output_fields": list(fields)}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self.call(f"reading {name}", self.client.query, name, **kwargs))

    def query_ids(
        self, name: str, ids: Sequence[int], fields: Sequence[str], extra: str = ""
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), QUERY_IDS):
            expr = f"id in {int_list(ids[i : i + QUERY_IDS])}" + (f" and {extra}" if extra else "")
            out += self.query(name, expr, fields)
        return out

    def scan(
        self, name: str, expr: str, fields: Sequence[str], batch: int = 16_384
    ) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``, in batches (no result-window limit)."""
        it = self.call(
            f"reading {name}",
            self.client.query_iterator,  # Milvus's way to read more rows than a query returns
            name,
            batch_size=batch,
            filter=expr,
            output_fields=list(fields),
        )
        try:
            while True:
                rows = self.call(f"reading {name}", it.next)
                if not rows:
                    return
                yield from rows
        finally:
            with contextlib.suppress(Exception):
                it.close()

    def passage_rows(self, name: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Passage rows (vector, offsets, text, sentence vectors) by id; one query for the ids
        not cached. Ids must come from a snapshot of this collection (they are alive in it)."""
        out: dict[int, dict[str, Any]] = {}
        want: list[int] = []
        with self._rows_lock:
            for i in dict.fromkeys(int(x) for x in ids):
                row = self._rows.get((name, i))
                if row is None:
                    want.append(i)
                else:
                    out[i] = row
                    self._rows.move_to_end((name, i))
        if not want:
            return out
        rows = self.query_ids(name, want, ROW_FIELDS)
        with self._rows_lock:
            for r in rows:
                i = int(r["id"])
                out[i] = self._rows[(name, i)] = r
            while len(self._rows) > ROW_CACHE:
                self._rows.popitem(last=False)
        return out

    def read_state(self) -> dict[str, Any]:
        """The current ``state`` row ({} for a new index)."""
        if not self.has(self.c_state):
            return {}
        rows = self.query(self.c_state, 'key == "state"', ["value"])
        if not rows:
            return {}
        try:
            state = json.loads(rows[0]["value"])
        except (ValueError, TypeError) as e:
            raise IndexCorruptError(
                f"the index state in {self.where} ({self.c_state}) is unreadable ({e}); "
                "run `newsdesk reindex`"
            ) from None
        if not isinstance(state, dict):
            return {}
        for key in ("generation", "floor"):
            value = state.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | str):
                value = "x"
            try:
                state[key] = int(value)
            except ValueError:
                raise IndexCorruptError(
                    f"the index state in {self.where} ({self.c_state}) is damaged: its {key} "
                    "is not a number; run `newsdesk reindex`"
                ) from None
        return state

    @staticmethod
    def alive_passages(state: dict[str, Any]) -> str:
        g = int(state.get("generation", 0))
        floor = int(state.get("floor", 0))
        return f"gen <= {g} and gen >= {floor} and (dead == 0 or dead > {g})"

    @staticmethod
    def alive_articles(state: dict[str, Any]) -> str:
        g = int(state.get("generation", 0))
        return f"gen <= {g} and (dead == 0 or dead > {g})"

    def passages_of(self, state: dict[str, Any]) -> str | None:
        name = state.get("passages_collection")
        return str(name) if name and self.has(str(name)) else None

    def article(self, state: dict[str, Any], article_id: str) -> Article | None:
        """One article as generation ``state`` has it (cached: a version never changes)."""
        found = self.articles(state, [article_id])
        return found.get(article_id)

    def articles(self, state: dict[str, Any], ids: Sequence[str]) -> dict[str, Article]:
        """Articles with their full text, by id, as generation ``state`` has them.

        Versions are cached: a version's text never changes, only its ``dead`` mark (set by a
        later generation), so a cached version known alive at generation ``seen`` serves any
        generation from its own up to ``seen``, or up to its death once that is known.
        """
        out: dict[str, Article] = {}
        want: list[str] = []
        g = int(state.get("generation", 0))
        with self._articles_lock:
            for aid in dict.fromkeys(ids):
                for (cid, cgen), (art, dead, seen) in reversed(self._articles.items()):
                    if cid == aid and cgen <= g and (dead > g if dead else g <= seen):
                        out[aid] = art
                        break
                else:
                    want.append(aid)
        if not want or not self.has(self.c_articles):
            return out
        rows = self.query(
            self.c_articles,
            f"article_id in {lit_list(want)} and {self.alive_articles(state)}",
            ARTICLE_FIELDS,
        )
        for aid, art_rows in _group(rows).items():
            art, gen, dead = _assemble(art_rows)
            out[aid] = art
            with self._articles_lock:
                self._articles[(aid, gen)] = (art, dead, g)
                self._articles.move_to_end((aid, gen))
                while len(self._articles) > 256:
                    self._articles.popitem(last=False)
        return out

    # -- snapshots ---------------------------------------------------------------------------
    def load_snapshot(self, generation: int, dimension: int, previous: Snapshot | None) -> Snapshot:
        from index.storage.base import Snapshot

        state = self.store.state()
        if generation == 0 or int(state.get("generation", 0)) != generation:
            if generation == 0:
                return Snapshot(
                    0, MilvusVectors(self, {}, None, dimension), LexicalIndex.build([], [])
                )
            state = self.read_state()
        name = self.passages_of(state)
        if name is None:
            raise IndexCorruptError(
                f"the passages of generation {generation} are missing from {self.where}; "
                "run `newsdesk reindex` to rebuild them from the stored articles"
            )
        t0 = time.perf_counter()
        lexical = None
        if (
            previous is not None
            and previous.generation == generation - 1
            and int(state.get("floor", 0)) < generation
            and isinstance(previous.vectors, MilvusVectors)
            and previous.vectors.collection == name
        ):
            # one generation on: only its new rows and the rows it removed
            added = list(self.scan(name, f"gen == {generation}", ["id", "terms"]))
            removed = [r["id"] for r in self.scan(name, f"dead == {generation}", ["id"])]
            lexical = lexical_delta(
                previous.lexical,
                removed,
                [r["id"] for r in added],
                [r["terms"].split() for r in added],
            )
        if lexical is None:
            rows = list(self.scan(name, self.alive_passages(state), ["id", "terms"]))
            lexical = lexical_from_terms(
                [r["id"] for r in rows], [r["terms"].split() for r in rows]
            )
        expected = int(state.get("passages", 0))
        if len(lexical) != expected:
            raise IndexCorruptError(
                f"the index in {self.where} does not match its state ({len(lexical)} passages "
                f"found, {expected} recorded); run `newsdesk reindex`"
            )
        log.info(
            "loaded generation %d from %s: %d passages in %.2f s",
            generation,
            self.where,
            len(lexical),
            time.perf_counter() - t0,
        )
        return Snapshot(generation, MilvusVectors(self, state, name, dimension), lexical)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, wait: float | None = None) -> Iterator[None]:
        """The writer lease (see :class:`_Lease`), then recovery and clean-up of old rows."""
        timeout = float(os.environ.get("NEWSDESK_LOCK_TIMEOUT", "600")) if wait is None else wait
        self.ensure_state()
        lease = _Lease(self)
        lease.acquire(timeout)
        self._lease = lease
        try:
            state = self.read_state()
            self._recover(state)
            self._purge(state)
            yield
        finally:
            self._lease = None
            lease.release()

    def _recover(self, state: dict[str, Any]) -> None:
        """Undo what a writer that died before its switch left: rows of a generation that was
        never published, and ``dead`` marks it set."""
        g = int(state.get("generation", 0))
        names = [n for n in self._passage_collections() if self.has(n)] + (
            [self.c_articles] if self.has(self.c_articles) else []
        )
        for name in names:
            self.call(f"cleaning {name}", self.client.delete, name, filter=f"gen > {g}")
            marked = list(self.scan(name, f"dead > {g}", ["*"]))
            if marked:
                log.warning("undoing %d removals of an interrupted write in %s", len(marked), name)
                for r in marked:
                    r["dead"] = 0
                self._upsert(name, marked)

    def _purge(self, state: dict[str, Any]) -> None:
        """Delete rows no reader can see any more: dead before the previous generation, or
        below its floor; and passage collections of older dimensions."""
        g = int(state.get("generation", 0))
        if g < 1:
            return
        keep = {state.get("passages_collection"), state.get("prev_passages_collection")}
        for name in self._passage_collections():
            if name not in keep:
                log.info("dropping %s (no generation uses it)", name)
                self.call(f"dropping {name}", self.client.drop_collection, name)
                self._loaded.discard(name)
        prev_floor = int(state.get("prev_floor", 0))
        current = self.passages_of(state)
        if current:
            expr = f"(dead != 0 and dead <= {g - 1}) or gen < {prev_floor}"
            self.call(f"cleaning {current}", self.client.delete, current, filter=expr)
        if self.has(self.c_articles):
            self.call(
                f"cleaning {self.c_articles}",
                self.client.delete,
                self.c_articles,
                filter=f"dead != 0 and dead <= {g - 1}",
            )

    def _passage_collections(self) -> list[str]:
        names = self.call("listing collections", self.client.list_collections)
        prefix = f"{self.prefix}_passages_"
        return [n for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()]

    def _upsert(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        for i in range(0, len(rows), BATCH):
            self.call(f"writing {name}", self.client.upsert, name, list(rows[i : i + BATCH]))

    def _insert(
        self, name: str, rows: Sequence[dict[str, Any]], progress: Progress | None = None
    ) -> None:
        for i in range(0, len(rows), BATCH):
            self.call(f"writing {name}", self.client.insert, name, list(rows[i : i + BATCH]))
            if progress and len(rows) > BATCH:
                progress("vector index", min(i + BATCH, len(rows)), len(rows))

    def publish(
        self,
        *,
        replace: Sequence[str],
        planned: Sequence[tuple[Document, Sequence[Chunk]]],
        vectors: np.ndarray,
        sentences: Sequence[bytes],
        texts: Sequence[str],
        full: bool,
        delete_articles: bool,
        meta: dict[str, str],
        previous: Snapshot | None,
        progress: Progress | None = None,
        ids: Sequence[int] | None = None,
    ) -> Snapshot:
        """Write generation G+1 beside G, then switch by upserting the ``state`` row.

        ``ids``: the new passages' ids (a migration keeps the source's); else the next ones.
        """
        from index.storage.base import Snapshot

        if self._lease is None:
            raise RuntimeError("publish outside writer()")
        state = self.read_state()
        g = int(state.get("generation", 0))
        new = g + 1
        dim = int(meta["dimension"])
        self.ensure_articles()
        name = self.ensure_passages(dim)
        when = now_iso()
        old_name = self.passages_of(state)
        floor = new if full or old_name != name else int(state.get("floor", 0))

        # passages replaced by this write: dead from the new generation on
        removed: list[int] = []
        if replace and not full and old_name == name:
            rows = self.query(
                name,
                f"article_id in {lit_list(replace)} and {self.alive_passages(state)}",
                ["*"],
            )
            for r in rows:
                r["dead"] = new
            self._upsert(name, rows)
            removed = [int(r["id"]) for r in rows]

        # article versions: the old ones die, new ones are written whole
        touched = list(dict.fromkeys([*replace, *(d.article_id for d, _ in planned)]))
        old_rows = (
            self.query(
                self.c_articles,
                f"article_id in {lit_list(touched)} and {self.alive_articles(state)}",
                ["*"],
            )
            if touched
            else []
        )
        added_at = {r["article_id"]: r["added_at"] for r in old_rows if r["part"] == 0}
        for r in old_rows:
            r["dead"] = new
        self._upsert(self.c_articles, old_rows)

        next_id = int(state.get("next_id", 1))
        if ids is None:
            ids = list(range(next_id, next_id + len(vectors)))
        else:
            ids = [int(i) for i in ids]
            if len(ids) != len(vectors) or (ids and min(ids) < next_id):
                raise ValueError("passage ids must be new and one per vector")
        end_id = max([next_id - 1, *ids]) + 1
        term_lists = terms_of(texts)
        article_rows: list[dict[str, Any]] = []
        passage_rows: list[dict[str, Any]] = []
        k = 0
        vecs = np.asarray(vectors, dtype=np.float32)
        for doc, chunks in planned:
            article_rows += _article_rows(
                doc, len(chunks), new, added_at.get(doc.article_id, when), when
            )
            for ch in chunks:
                passage_rows.append(
                    {
                        "id": ids[k],
                        "article_id": doc.article_id,
                        "ordinal": ch.ordinal,
                        "pstart": ch.start,
                        "pend": ch.end,
                        "gen": new,
                        "dead": 0,
                        "terms": _terms_text(term_lists[k]),
                        "sentences": _pack_b64(sentences[k]) if k < len(sentences) else "",
                        "text": _fits(doc.text[ch.start : ch.end]),
                        "title": doc.title[:1000],
                        "source": _fits(doc.source),
                        "url": _fits(doc.url or ""),
                        "published": (doc.published or "")[:120],
                        "vector": vecs[k],
                    }
                )
                k += 1
        self._insert(self.c_articles, article_rows)
        self._insert(name, passage_rows, progress)
        if len(passage_rows) >= FLUSH_ROWS:
            # seal the new rows into an indexed segment (Milvus Lite searches unsealed rows one
            # by one); small writes are left to Milvus's own flushing
            self.call(f"flushing {name}", self.client.flush, name)

        if progress:
            progress("keyword index", 0, 1)
        lexical = None
        if previous is not None and not full and old_name == name:
            lexical = lexical_delta(previous.lexical, removed, ids, term_lists)
        if lexical is None:
            if full or old_name != name:
                lexical = lexical_from_terms(ids, term_lists)
            else:
                after = {**state, "generation": new, "floor": floor}
                rows = list(self.scan(name, self.alive_passages(after), ["id", "terms"]))
                lexical = lexical_from_terms(
                    [r["id"] for r in rows], [r["terms"].split() for r in rows]
                )

        deleted = len(replace) if delete_articles else 0
        added = sum(1 for d, _ in planned if d.article_id not in added_at)
        articles = int(state.get("articles", 0)) + added - deleted
        passages = len(lexical)
        kind, _build, _search = self.index_spec()
        new_state = {
            "generation": new,
            "floor": floor,
            "prev_floor": int(state.get("floor", 0)),
            "next_id": end_id,
            "articles": articles,
            "passages": passages,
            "passages_collection": name,
            "prev_passages_collection": old_name or name,
            "updated_at": when,
            "index_type": f"milvus-{kind.lower()}",
            "meta": meta,
        }
        # fencing: still the lease holder, and nobody published meanwhile
        self._lease.check()
        if int(self.read_state().get("generation", 0)) != g:
            raise IndexBusyError(
                f"another writer published to {self.where} during this update; try again"
            )
        self.call(
            "switching generation",
            self.client.upsert,
            self.c_state,
            [{"key": "state", "value": json.dumps(new_state), "v": DUMMY}],
        )
        if progress:
            progress("keyword index", 1, 1)
        log.info("published generation %d to %s: %d passages", new, self.where, passages)
        return Snapshot(new, MilvusVectors(self, new_state, name, dim), lexical)

    # -- verification ------------------------------------------------------------------------
    def check(self, expected_meta: Callable[[], dict[str, str]]) -> list[str]:
        """One line per problem: state, counts, passages without article, offsets."""
        try:
            state = self.read_state()
        except NewsdeskError as e:
            return [str(e)]
        if not state:
            return []
        problems: list[str] = []
        meta = state.get("meta") or {}
        want = expected_meta()
        diffs = [f"{k} {meta.get(k)!r} -> {v!r}" for k, v in want.items() if meta.get(k) != v]
        if diffs:
            problems.append(
                f"the index in {self.where} was built with other settings ("
                + "; ".join(diffs)
                + "): run `newsdesk reindex`"
            )
        name = self.passages_of(state)
        if name is None:
            return [
                *problems,
                f"the passage collection of {self.where} is missing: run `newsdesk reindex`",
            ]
        rows = list(
            self.scan(
                name,
                self.alive_passages(state),
                ["id", "article_id", "pstart", "pend", "sentences"],
            )
        )
        if len(rows) != int(state.get("passages", 0)):
            problems.append(
                f"{self.where} holds {len(rows)} passages, its state records "
                f"{state.get('passages')}: run `newsdesk reindex`"
            )
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            problems.append(f"{self.where} has duplicate passage ids: run `newsdesk reindex`")
        arts = self.articles(state, sorted({r["article_id"] for r in rows}))
        orphans = [r for r in rows if r["article_id"] not in arts]
        if orphans:
            problems.append(
                f"{len(orphans)} passages belong to no article (first: passage "
                f"{orphans[0]['id']}): run `newsdesk reindex`"
            )
        bad = [
            r
            for r in rows
            if r["article_id"] in arts
            and not 0 <= r["pstart"] <= r["pend"] <= len(arts[r["article_id"]].text)
        ]
        if bad:
            problems.append(
                f"{len(bad)} passages have offsets outside their article's text (first: passage "
                f"{bad[0]['id']}): run `newsdesk reindex`"
            )
        try:
            dim: int | None = int(meta.get("dimension", ""))
        except ValueError:
            dim = None
        damaged = [
            (r["id"], why)
            for r in rows
            if r["sentences"]
            and (
                why := sentence_problem(
                    _b64(r["sentences"]), dim, int(r["pend"]) - int(r["pstart"])
                )
            )
        ]
        if damaged:
            problems.append(
                f"{len(damaged)} passages have damaged sentence vectors (first: passage "
                f"{damaged[0][0]}, {damaged[0][1]}): run `newsdesk reindex`"
            )
        return problems


ROW_FIELDS = [
    "id",
    "article_id",
    "pstart",
    "pend",
    "text",
    "title",
    "source",
    "url",
    "published",
    "sentences",
    "vector",
]
ROW_CACHE = 4_096

ARTICLE_FIELDS = [
    "article_id",
    "gen",
    "dead",
    "part",
    "parts",
    "chunks",
    "title",
    "source",
    "url",
    "published",
    "content_hash",
    "added_at",
    "text",
]


def _article_rows(
    doc: Document, chunks: int, gen: int, added_at: str, when: str
) -> list[dict[str, Any]]:
    parts = [doc.text[i : i + TEXT_PART] for i in range(0, len(doc.text), TEXT_PART)] or [""]
    rows = []
    for i, text in enumerate(parts):
        rows.append(
            {
                "key": f"{doc.article_id}:{gen}:{i}",
                "article_id": doc.article_id,
                "gen": gen,
                "dead": 0,
                "part": i,
                "parts": len(parts),
                "chunks": chunks,
                "title": doc.title[:1000],
                "title_lower": doc.title[:1000].lower(),
                "source": doc.source,
                "url": doc.url or "",
                "published": doc.published or "",
                "content_hash": doc.content_hash,
                "added_at": added_at,
                "updated_at": when,
                "text": text,
                "v": DUMMY,
            }
        )
    return rows


def _group(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["article_id"], []).append(r)
    return out


def _assemble(rows: list[dict[str, Any]]) -> tuple[Article, int, int]:
    """(the article, its version's generation, the generation that removed it or 0)."""
    rows = sorted(rows, key=lambda r: r["part"])
    head = rows[0]
    if len(rows) != head["parts"] or [r["part"] for r in rows] != list(range(head["parts"])):
        raise IndexCorruptError(
            f"article {head['article_id']} is incomplete in Milvus ({len(rows)} of "
            f"{head['parts']} parts): run `newsdesk reindex`"
        )
    art = Article(
        head["article_id"],
        head["title"],
        head["source"],
        "".join(r["text"] for r in rows),
        head["url"] or None,
        head["published"] or None,
        head["content_hash"],
        head["added_at"],
        int(head["chunks"]),
    )
    return art, int(head["gen"]), int(head["dead"])


# -- the lease ---------------------------------------------------------------------------------


class _Lease:
    """The writer lease: the ``writer`` row of the state collection.

    Fischer's algorithm: when the row is free (or expired), write our claim, wait ``settle``
    seconds — longer than any rival's gap between reading the row and writing its own claim —
    and read it back; if our claim survived, we hold the lease. A thread renews it every third of
    ``lease_seconds``; :meth:`check` (just before the switch) fails if it was lost. Expiry
    compares wall clocks, so the machines' clocks must agree to well within the lease (NTP).
    """

    def __init__(self, backend: MilvusBackend) -> None:
        self.backend = backend
        self.owner = backend.owner
        self.ttl = backend.lease_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _read(self) -> dict[str, Any]:
        b = self.backend
        rows = b.query(b.c_state, 'key == "writer"', ["value"])
        if not rows:
            return {}
        try:
            value = json.loads(rows[0]["value"])
        except (ValueError, TypeError):
            return {}
        return value if isinstance(value, dict) else {}

    def _write(self, owner: str, expires: float) -> None:
        b = self.backend
        value = {
            "owner": owner,
            "expires": expires,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        b.call(
            "writing the writer lease",
            b.client.upsert,
            b.c_state,
            [{"key": "writer", "value": json.dumps(value), "v": DUMMY}],
        )

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        warned = False
        while True:
            cur = self._read()
            free = not cur.get("owner") or float(cur.get("expires", 0)) < time.time()
            if free or cur.get("owner") == self.owner:
                self._write(self.owner, time.time() + self.ttl)
                if self.backend.settle:
                    time.sleep(self.backend.settle)
                if self._read().get("owner") == self.owner:
                    break
                continue  # a rival's claim landed after ours: it has the lease
            if time.monotonic() >= deadline:
                holder = f"{cur.get('host', '?')} pid {cur.get('pid', '?')}"
                raise IndexBusyError(
                    f"another newsdesk process ({holder}) is updating the index in "
                    f"{self.backend.where}; try again when it finishes"
                )
            if not warned:
                log.warning("another newsdesk process is updating %s; waiting", self.backend.where)
                warned = True
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._renew, name="newsdesk-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl * RENEW_EVERY):
            try:
                if self._read().get("owner") != self.owner:
                    self.lost = True
                    return
                self._write(self.owner, time.time() + self.ttl)
            except Exception:
                log.warning("could not renew the writer lease", exc_info=True)

    def check(self) -> None:
        if self.lost or self._read().get("owner") != self.owner:
            self.lost = True
            raise IndexBusyError(
                f"this update lost the writer lease of {self.backend.where} (it stalled longer "
                "than store.lease_seconds); nothing was published: try again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(NewsdeskError):
            if self._read().get("owner") == self.owner:
                self._write("", 0.0)


# -- vectors of one generation ------------------------------------------------------------------


class MilvusVectors:
    """:class:`index.storage.base.VectorSearch` over the passages alive in one generation."""

    def __init__(
        self, backend: MilvusBackend, state: dict[str, Any], collection: str | None, dimension: int
    ) -> None:
        self.backend = backend
        self.state = state
        self.collection = collection
        self.dimension = dimension
        self.expr = MilvusBackend.alive_passages(state)
        self._len = int(state.get("passages", 0)) if collection else 0
        self.kind = str(state.get("index_type") or "milvus-flat")
        self.description = self.kind

    def __len__(self) -> int:
        return self._len

    def _search_params(self) -> dict[str, Any]:
        return {"metric_type": "IP", "params": self.backend.index_spec()[2]}

    def search_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        q = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
        if not self._len or self.collection is None or not len(q):
            return [[] for _ in range(len(q))]
        b = self.backend
        res = b.call(
            "searching",
            b.client.search,
            self.collection,
            data=[row for row in q],
            anns_field="vector",
            limit=max(1, min(k, self._len, 16_384)),
            filter=self.expr,
            search_params=self._search_params(),
            output_fields=["id"],
        )
        return [[(int(h["id"]), float(h["distance"])) for h in hits] for hits in res]

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.search_many(np.asarray(query, dtype=np.float32).reshape(1, -1), k)[0]

    def vectors_of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids or self.collection is None:
            return {}
        rows = self.backend.passage_rows(self.collection, list(ids))
        return {i: np.asarray(r["vector"], dtype=np.float32) for i, r in rows.items()}

    def scores_for(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        found = self.vectors_of([int(i) for i in ids])
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        zero = np.zeros(self.dimension, dtype=np.float32)
        vecs = np.vstack([found.get(int(i), zero) for i in ids])
        return (vecs @ q).astype(np.float32)

    def ids(self) -> np.ndarray:
        if self.collection is None:
            return np.zeros(0, np.int64)
        rows = self.backend.scan(self.collection, self.expr, ["id"])
        return np.sort(np.fromiter((int(r["id"]) for r in rows), dtype=np.int64))

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        if self.collection is None or not self._len:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        rows = sorted(
            self.backend.scan(self.collection, self.expr, ["id", "vector"]), key=lambda r: r["id"]
        )
        ids = np.asarray([r["id"] for r in rows], dtype=np.int64)
        vecs = np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), -1)
        return ids, vecs


# -- the Store API -------------------------------------------------------------------------------


def _article_row(r: dict[str, Any]) -> ArticleRow:
    """An article head (the part-0 row of the articles collection) as an :class:`ArticleRow`."""
    return ArticleRow(
        r["article_id"],
        r["title"],
        r["source"],
        r["url"] or None,
        r["published"] or None,
        r["content_hash"],
        r["added_at"],
        int(r["chunks"]),
    )


class MilvusStore(Store):
    """:class:`index.storage.sqlite.Store`'s reading API over the Milvus collections.

    Inside :meth:`read` every call sees one generation (the ``state`` row read on entry), like
    an SQLite read transaction. Writing goes through :meth:`MilvusBackend.publish`.
    """

    def __init__(self, backend: MilvusBackend) -> None:
        super().__init__(backend.data_dir)
        self.backend = backend
        self.path = Path(backend.uri)
        self._pin = threading.local()
        self._titles: MemoryTitles | None = None
        self._title_rows: dict[str, dict[str, Any]] = {}
        self._titles_lock = threading.Lock()

    # -- connections -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.backend.has(self.backend.c_state)

    @property
    def conn(self) -> Any:
        raise NewsdeskError('this needs the SQLite store: set [store] backend = "faiss"')

    def init_schema(self) -> None:
        """Collections are created by the first write."""

    def close(self) -> None:
        if self._titles is not None:
            self._titles.close()
        self.backend.close()

    def state(self) -> dict[str, Any]:
        pinned = getattr(self._pin, "state", None)
        return pinned if pinned is not None else self.backend.read_state()

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        if getattr(self._pin, "state", None) is not None:
            yield None
            return
        self._pin.state = self.backend.read_state()
        try:
            yield None
        finally:
            self._pin.state = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        raise NewsdeskError("writes to Milvus go through the pipeline")
        yield  # pragma: no cover

    # -- meta --------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        st = self.state()
        if not st:
            return {}
        out = {k: str(v) for k, v in (st.get("meta") or {}).items()}
        out["generation"] = str(st.get("generation", 0))
        out["index_type"] = str(st.get("index_type", "milvus-flat"))
        if st.get("updated_at"):
            out["updated_at"] = str(st["updated_at"])
        return out

    def generation(self) -> int:
        return int(self.state().get("generation", 0))

    # -- articles ----------------------------------------------------------------------------
    def _heads(self, expr: str = "") -> list[dict[str, Any]]:
        st = self.state()
        if not st or not self.backend.has(self.backend.c_articles):
            return []
        where = f"part == 0 and {self.backend.alive_articles(st)}" + (
            f" and ({expr})" if expr else ""
        )
        fields = [f for f in ARTICLE_FIELDS if f != "text"]
        return list(self.backend.scan(self.backend.c_articles, where, fields))

    def hashes(self) -> dict[str, str]:
        return {r["article_id"]: r["content_hash"] for r in self._heads()}

    def counts(self) -> tuple[int, int]:
        st = self.state()
        return int(st.get("articles", 0)), int(st.get("passages", 0))

    def list_articles(self) -> list[ArticleRow]:
        rows = [_article_row(r) for r in self._heads()]
        return sorted(rows, key=lambda r: (r.title.lower(), r.id))

    def match_titles(self, query: str, limit: int) -> list[ArticleRow]:
        """Titles for autocomplete from an in-memory title index (index/search/titles.py), rebuilt
        from the article heads when the generation changes: no scan of Milvus per keystroke."""
        with self.read():
            st = self.state()
            gen = (st.get("generation", 0), st.get("updated_at")) if st else None
            with self._titles_lock:
                if self._titles is None:
                    self._titles = MemoryTitles()
                if self._titles.generation != gen:
                    heads = self._heads()
                    self._titles.load(gen, ((r["article_id"], r["title"]) for r in heads))
                    self._title_rows = {r["article_id"]: r for r in heads}
                ids = self._titles.match(query, limit)
                rows = [self._title_rows[i] for i in ids if i in self._title_rows]
        return [_article_row(r) for r in rows]

    def get_article(self, article_id: str) -> Article:
        art = self.backend.article(self.state(), article_id)
        if art is None:
            raise ArticleNotFoundError(f"no article with id {article_id}")
        return art

    def find_article(self, ref: str) -> Article:
        """By id, source, URL, id prefix or exact title: :func:`store.resolve_article`."""
        return self.get_article(resolve_article(ref, self._lookup))

    def _lookup(self, kind: str, value: str) -> list[tuple[str, str]]:
        if kind == "key":
            expr = f"article_id == {lit(value)} or source == {lit(value)}"
        elif kind == "url":
            expr = f"url == {lit(value)}"
        elif kind == "prefix":  # hex digits only (store.resolve_article): no wildcard in it
            expr = f"article_id like {lit(value + '%')}"
        else:
            expr = f"title_lower == {lit(value.lower()[:1000])}"
        return [(str(r["article_id"]), str(r["title"])) for r in self._heads(expr)]

    def same_text(self, texts: Sequence[str]) -> dict[str, str]:
        """Milvus keeps no text length or text hash to look duplicates up by, and reading every
        article's text on each write would not scale: duplicates with another title are found
        within one batch only (the same title and text still is, by content hash)."""
        return {}

    def all_articles(self) -> Iterator[Article]:
        st = self.state()
        heads = sorted(self._heads(), key=lambda r: (r["added_at"], r["article_id"]))
        for i in range(0, len(heads), 100):
            part = [r["article_id"] for r in heads[i : i + 100]]
            found = self.backend.articles(st, part)
            for aid in part:
                yield found[aid]

    # -- passages ----------------------------------------------------------------------------
    def _passages(self) -> str | None:
        return self.backend.passages_of(self.state()) if self.state() else None

    def chunk_count(self, article_ids: frozenset[str] | set[str]) -> int:
        if not article_ids:
            return 0
        rows = self._heads(f"article_id in {lit_list(sorted(article_ids))}")
        return sum(int(r["chunks"]) for r in rows)

    def chunk_ids(self) -> list[int]:
        name = self._passages()
        if name is None:
            return []
        rows = self.backend.scan(name, self.backend.alive_passages(self.state()), ["id"])
        return sorted(int(r["id"]) for r in rows)

    def hits(self, scored: Sequence[tuple[int, float, dict[str, float]]]) -> list[Hit]:
        name = self._passages()
        if not scored or name is None:
            return []
        rows = self.backend.passage_rows(name, [s[0] for s in scored])
        long = sorted({r["article_id"] for r in rows.values() if not r["text"]})
        arts = self.backend.articles(self.state(), long) if long else {}
        out = []
        for cid, score, details in scored:
            r = rows.get(int(cid))
            if r is None:
                continue
            start, end = int(r["pstart"]), int(r["pend"])
            text = r["text"]
            if not text and end > start:  # too long for a Milvus string: from the article
                art = arts.get(r["article_id"])
                if art is None:
                    continue
                text = art.text[start:end]
            out.append(
                Hit(
                    chunk_id=int(cid),
                    article_id=r["article_id"],
                    title=r["title"],
                    source=r["source"],
                    url=r["url"] or None,
                    text=text,
                    start=start,
                    end=end,
                    published=r["published"] or None,
                    score=score,
                    details=dict(details),
                    parts=[(int(cid), start, end)],
                )
            )
        return out

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, SentenceVectors]:
        name = self._passages()
        if not chunk_ids or name is None:
            return {}
        rows = self.backend.passage_rows(name, list(chunk_ids))
        return usable_sentences(
            [(i, _b64(r["sentences"])) for i, r in rows.items() if r["sentences"]],
            None,
            f"Milvus collection {name}",
        )

    def article_sentences(
        self, article_id: str
    ) -> tuple[str, list[tuple[int, SentenceVectors]]] | None:
        state = self.state()
        art = self.backend.article(state, article_id) if state else None
        name = self._passages()
        if art is None or name is None:
            return None
        expr = f"{self.backend.alive_passages(state)} and article_id == {lit(article_id)}"
        rows = sorted(
            self.backend.scan(name, expr, ["id", "pstart", "sentences"]),
            key=lambda r: (int(r["pstart"]), int(r["id"])),
        )
        starts = {int(r["id"]): int(r["pstart"]) for r in rows}
        usable = usable_sentences(
            [(int(r["id"]), _b64(r["sentences"])) for r in rows if r["sentences"]],
            None,
            f"Milvus collection {name}",
        )
        return art.text, [(starts[cid], sv) for cid, sv in usable.items()]

    def article_span(self, article_id: str, start: int, end: int) -> str:
        art = self.backend.article(self.state(), article_id)
        return art.text[start:end] if art else ""

    def integrity_errors(self, full: bool = False) -> list[str]:
        return []


def _b64(text: str) -> bytes:
    """A stored base64 field; damaged base64 reads as an empty (damaged) blob."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return b""


_RACES = ("exist", "no index", "index not found", "not found", "duplicate", "already")


def _lost_race(e: BaseException) -> bool:
    """A creation step that failed because another process is creating the same collection:
    it exists already, or it exists but has no index (or is not visible) yet."""
    text = str(e).lower()
    return any(r in text for r in _RACES)
