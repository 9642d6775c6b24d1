"""The Milvus collections of one index: connection, names, schemas, creation, reading.

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
``<prefix>_tags``         the tags of each article version that has any (``,a,b,``), versioned
                          like the articles (a collection of its own: Milvus Lite cannot add a
                          field to the articles collection of an existing index)

Why metadata in Milvus rather than a separate SQL database: one system to deploy, back up and
secure, and a passage's vector, offsets and terms are written in the same row, so they can never
disagree.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymilvus  # an ImportError here becomes a config error naming the package
from pymilvus import DataType, MilvusClient, MilvusException

from index.errors import IndexCorruptError, NewsdeskError
from index.storage.policy import IndexPolicy
from index.text import first_line

if TYPE_CHECKING:
    from index.config import Settings

log = logging.getLogger(__name__)

TEXT_PART = 16_000  # characters of article text per row: at most 64,000 bytes of UTF-8
VARCHAR_MAX = 65_535
QUERY_IDS = 4_000  # ids per "id in [...]" query
CREATE_WAIT = 30.0  # s: how long another process may take to finish creating a collection
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


def b64(text: str) -> bytes:
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


class MilvusCollections:
    """The connection to Milvus and the collections of one index (names from
    ``store.collection_prefix``): created, indexed and loaded on demand, read by query or scan.
    :class:`index.storage.milvus.backend.MilvusBackend` builds generations on top of it."""

    def __init__(self, settings: Settings) -> None:
        st = settings.store
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.uri, self.lite = resolve_uri(st.uri, self.data_dir)
        self.token_env = st.token_env
        self.prefix = st.collection_prefix
        self.policy = IndexPolicy.from_settings(settings.retrieval)
        self._client: MilvusClient | None = None
        self._client_lock = threading.Lock()
        self._loaded: set[str] = set()
        # passage rows by (collection, id): a row never changes but for its dead mark, and a
        # question only asks for ids its own generation returned
        self._rows: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._rows_lock = threading.Lock()

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
            raise BackendError(f"cannot open {self.where} ({first_line(e)}){hint}") from None
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
            raise BackendError(f"{self.where}: {what} failed ({first_line(e)})") from e
        except (ConnectionError, OSError, pymilvus.exceptions.MilvusException) as e:
            raise BackendError(f"{self.where}: {what} failed ({first_line(e)})") from e

    # -- collections -------------------------------------------------------------------------
    @property
    def c_state(self) -> str:
        return f"{self.prefix}_state"

    @property
    def c_articles(self) -> str:
        return f"{self.prefix}_articles"

    @property
    def c_tags(self) -> str:
        return f"{self.prefix}_tags"

    def ensure_tags(self) -> None:
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("article_id", DataType.VARCHAR, max_length=64)
        for f in ("gen", "dead"):
            s.add_field(f, DataType.INT64)
        s.add_field("tags", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        self._create(self.c_tags, s, self._dummy_index())

    def tags_of(self, state: dict[str, Any], ids: Sequence[str] | None = None) -> dict[str, str]:
        """Packed tags by article id, as generation ``state`` has them (``ids``: only those)."""
        if not state or not self.has(self.c_tags):
            return {}
        expr = self.alive_articles(state)
        if ids is not None:
            if not ids:
                return {}
            expr += f" and article_id in {lit_list(ids)}"
        rows = self.scan(self.c_tags, expr, ["article_id", "tags"])
        return {str(r["article_id"]): str(r["tags"]) for r in rows}

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
                        f"{self.where}: {what} {name} failed ({first_line(e)})"
                    ) from e
                log.debug("%s is being created elsewhere (%s); looking again", name, e)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            except (ConnectionError, OSError) as e:
                raise BackendError(f"{self.where}: loading {name} failed ({first_line(e)})") from e
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
