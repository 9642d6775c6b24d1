"""The settings, declared once: type, default, limits and the text that documents each key.

``Settings`` gathers the sections; the engine's own sections are in ``index.config.engine``,
the way a key is declared (``doc``) in ``index.config.fields``. Rules that span keys live in
``index.config.rules``.

Why stdlib dataclasses validated by ``msgspec.convert`` and not pydantic models: code and tests
build and copy settings freely (``dataclasses.replace``, ``FetchSettings(timeout=0.6)``, a test
lowering ``ann_threshold`` under the file's minimum), so only *loading* may validate, as
before; and start-up is a target: pydantic's import plus its schema build for these models
measured 182 ms (best of 7, busy 2-core machine), msgspec's import plus first conversion
19 ms, paid only when a config file is read (see index.config.fields).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from index.config.engine import (
    AnswerSettings,
    ChunkingSettings,
    EmbeddingSettings,
    FetchSettings,
    RetrievalSettings,
    StoreSettings,
)
from index.config.fields import MAX_INTERVAL, SECONDS, default_data_dir, doc
from index.config.privacy import PrivacySettings

__all__ = [
    "AnswerSettings",
    "ChunkingSettings",
    "DiscordSettings",
    "EmbeddingSettings",
    "FeedSubscription",
    "FetchSettings",
    "FolderSubscription",
    "LLMSettings",
    "PrivacySettings",
    "RetrievalSettings",
    "ScopeSettings",
    "Settings",
    "StoreSettings",
    "SyncSettings",
]


@dataclass
class DiscordSettings:
    """The Discord bot (`newsdesk run`); the token comes only from $DISCORD_TOKEN."""

    channel_ids: Annotated[
        list[int],
        doc(
            """
            answer every message in these channels (needs the Message Content intent, see README)
            """
        ),
    ] = field(default_factory=list)
    guild_ids: Annotated[
        list[int],
        doc(
            """
            register slash commands to these servers only (instant updates while developing); empty
            = global commands
            """
        ),
    ] = field(default_factory=list)
    admin_guild_ids: Annotated[
        list[int],
        doc(
            """
            Who may use the admin commands (/add /remove /reindex /stats /subscribe /unsubscribe
            /subscriptions /feedback /gaps), checked each time one runs. All servers share one
            index, so a manager of any server the bot is in could otherwise change what every
            server sees (README "Locking the bot to your servers"). Allowed: members with Manage
            Server in
            admin_guild_ids (empty = the servers in guild_ids; both empty = in no server), the users
            in admin_user_ids (in any server), members holding a role in admin_role_ids, and the
            application's owner (or its team).
            """
        ),
    ] = field(default_factory=list)
    admin_user_ids: Annotated[
        list[int], doc("users who may use the admin commands in any server")
    ] = field(default_factory=list)
    admin_role_ids: Annotated[list[int], doc("roles whose members may use the admin commands")] = (
        field(default_factory=list)
    )
    answer_dms: Annotated[
        bool, doc("answer direct messages (and offer /ask, /search, /article in the bot's DMs)")
    ] = True
    answer_mentions: Annotated[bool, doc("answer messages that mention the bot")] = True
    reply_in_thread: Annotated[
        bool,
        doc(
            """
            answer in a thread opened on the question; follow-ups in that thread are answered there
            (follow-ups that do not mention the bot need message_content = true; the bot warns at
            start)
            """
        ),
    ] = False
    forum_channels: Annotated[
        list[int],
        doc(
            """
            help-forum mode: in these forum channels the bot answers each new post once (title +
            first message as the question) in the post's thread, and the poster's follow-ups there
            (the first message and follow-ups need message_content = true; without it only the
            title is asked)
            """
        ),
    ] = field(default_factory=list)
    forum_abstain_message: Annotated[
        bool,
        doc(
            """
            when the articles do not answer a forum post, say "I could not find this in the
            articles" in its thread (default: stay silent)
            """
        ),
    ] = False
    cooldown_seconds: Annotated[
        float,
        doc("per-user rate: at most cooldown_rate questions per cooldown_seconds", ge=0),
    ] = 5.0
    cooldown_rate: Annotated[
        int, doc("questions a user may ask per cooldown_seconds", ge=1, must=">= 1")
    ] = 3
    autocomplete_seconds: Annotated[
        float,
        doc(
            """
            title autocomplete (/article, /remove): at most one look-up per user per this many
            seconds; keystrokes in between wait and only the latest is looked up (0 = no limit; at
            most 2)
            """,
            ge=0,
            le=2,
            must=f"{SECONDS} between 0 and 2 (Discord waits 3 s for choices)",
        ),
    ] = 0.3
    message_content: Annotated[
        bool, doc("request the privileged Message Content intent (needed only for channel_ids)")
    ] = False
    shard_count: Annotated[
        int,
        doc(
            """
            scale-out (README "Scaling out"): run the bot as several processes, each with a subset
            of the gateway shards, all answering from one shared [store] (backend = "milvus").
            This key: the total number of shards (0 = no sharding: one process).
            """,
            ge=0,
            le=1024,
            must="an integer between 0 (no sharding) and 1024",
        ),
    ] = 0
    shard_ids: Annotated[
        list[int], doc("this process's shards (empty = all shard_count of them)")
    ] = field(default_factory=list)


@dataclass
class FeedSubscription:
    """One ``[[feeds]]`` table: an RSS/Atom feed polled by the bot and ``newsdesk sync``."""

    url: Annotated[str, doc("an RSS or Atom feed", example="https://example.com/feed.xml")] = ""
    interval: Annotated[
        float,
        doc(
            "minutes between polls (at least 1)",
            ge=1,
            le=MAX_INTERVAL,
            must=f"a number of minutes between 1 and {MAX_INTERVAL}",
            example=30,
        ),
    ] = 30.0
    channel: Annotated[
        int,
        doc(
            "optional: Discord channel id for announcements",
            ge=0,
            must="a Discord channel id (0 = none)",
            example=123456789012345678,
        ),
    ] = 0
    tags: Annotated[
        list[str],
        doc(
            "tags given to each of its articles (for [[scopes]])",
            example=["world"],
        ),
    ] = field(default_factory=list)


@dataclass
class FolderSubscription:
    """One ``[[folders]]`` table: a folder kept in sync (added, edited and deleted files)."""

    path: Annotated[Path, doc("a folder, relative to this file", example="articles")] | None = None
    interval: Annotated[
        float,
        doc(
            "minutes between scans",
            ge=0.1,
            le=MAX_INTERVAL,
            must=f"a number of minutes between 0.1 and {MAX_INTERVAL}",
            example=5,
        ),
    ] = 5.0
    channel: Annotated[
        int, doc("0 = no announcements", ge=0, must="a Discord channel id (0 = none)")
    ] = 0
    tags: Annotated[
        list[str],
        doc(
            "tags given to each of its articles (for [[scopes]])",
            example=["handbook"],
        ),
    ] = field(default_factory=list)


@dataclass
class ScopeSettings:
    """One ``[[scopes]]`` table: a named set of articles that questions in its channels are
    answered from (README, "Channel scopes")."""

    name: Annotated[str, doc("how /scope and `newsdesk scopes` name it", example="support")] = ""
    channels: Annotated[
        list[int],
        doc(
            "Discord channel ids answered only from this scope (their threads too)",
            example=[123456789012345678],
        ),
    ] = field(default_factory=list)
    feeds: Annotated[
        list[str],
        doc(
            "subscriptions whose articles are in it: feed URLs, folders or titles",
            example=["Example News"],
        ),
    ] = field(default_factory=list)
    folders: Annotated[
        list[str],
        doc("folders whose files are in it (relative to this file)", example=["docs/handbook"]),
    ] = field(default_factory=list)
    tags: Annotated[
        list[str], doc("articles with any of these tags are in it", example=["handbook"])
    ] = field(default_factory=list)
    articles: Annotated[
        list[str],
        doc("articles named by id, exact title, path or URL", example=["Getting started"]),
    ] = field(default_factory=list)


@dataclass
class SyncSettings:
    """Subscriptions: how errors are retried and new articles announced."""

    max_backoff: Annotated[
        float,
        doc(
            """
            after an error a subscription is tried again after twice its interval, doubling at each
            further error, but never waiting longer than this many minutes
            """,
            ge=1,
            must="a number of minutes >= 1",
        ),
    ] = 360.0
    announce_max: Annotated[
        int,
        doc(
            """
            more new articles than this in one poll are announced in a channel as one digest
            message
            """,
            ge=1,
            le=50,
        ),
    ] = 10


@dataclass
class LLMSettings:
    """
    Optional written answers from an LLM (`newsdesk ask --generate`, and every Discord answer).
    Off unless base_url is set. Any OpenAI-compatible chat-completions endpoint works; the answer
    must cite the passages as [n], every quote in it is checked word for word against the cited
    passage, and the extracted quote is always shown under it as evidence. Whatever cannot be
    verified is removed; if the endpoint is down, slow or answers nonsense, the extracted quote is
    the answer (with a note in the log). Uncomment the section to use it:
    """

    base_url: Annotated[
        str,
        doc(
            """
            The endpoint, up to and including /v1:
              llama.cpp:  llama-server -m model.gguf --port 8080   →  "http://localhost:8080/v1"
              Ollama:     ollama serve; ollama pull llama3.2       →  "http://localhost:11434/v1"
              vLLM:       vllm serve MODEL                         →  "http://localhost:8000/v1"
              hosted:     e.g. "https://api.openai.com/v1" (with api_key_env)
            """
        ),
    ] = ""
    model: Annotated[
        str,
        doc(
            """
            The model name the endpoint serves, e.g. "llama3.2" for Ollama (llama.cpp accepts any
            name).
            """
        ),
    ] = ""
    api_key_env: Annotated[
        str,
        doc(
            """
            The NAME of the environment variable that holds the API key -- never the key itself.
            Empty = no key (local servers). Example: api_key_env = "OPENAI_API_KEY"
            """
        ),
    ] = ""
    max_tokens: Annotated[int, doc("Longest written answer, in tokens.", ge=16, le=32768)] = 400
    timeout: Annotated[
        float,
        doc(
            """
            Seconds the whole written answer may take; past it, the extracted quote is the answer.
            (Discord shows the quote as evidence after one second while the answer is being
            written.)
            """,
            gt=0,
            le=600,
            must=f"{SECONDS} > 0 and <= 600",
        ),
    ] = 30.0
    temperature: Annotated[
        float,
        doc(
            "0 = the model's most likely words (recommended for answers that must quote exactly).",
            ge=0,
            le=2,
        ),
    ] = 0.0

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
    """
    newsdesk configuration. Every key is optional; the values below are the defaults. Use it with
      newsdesk --config config.toml ...   or   NEWSDESK_CONFIG=config.toml
    or copy it to ./config.toml. Unknown keys and bad values are reported by name at start.
    Secrets never go here: the Discord token is read from the DISCORD_TOKEN environment variable.
    """

    data_dir: Annotated[
        Path,
        doc(
            """
            Where the index lives. Overridden by --data-dir and by NEWSDESK_DATA_DIR. A relative
            path is relative to this file. Default: ~/.local/share/newsdesk
            """,
            example="data",
        ),
    ] = field(default_factory=default_data_dir)
    log_level: Annotated[
        str,
        doc("DEBUG, INFO, WARNING, ERROR or CRITICAL (-v / -vv on the command line raise it)"),
    ] = "WARNING"
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    feeds: Annotated[
        list[FeedSubscription],
        doc(
            """
            Subscriptions (see README, "Subscriptions"): the bot polls them in the background, each
            at its own interval; `newsdesk sync` runs them all once. A [[feeds]] table follows an
            RSS or Atom feed: new and edited entries are indexed.
            """
        ),
    ] = field(default_factory=list)
    folders: Annotated[
        list[FolderSubscription],
        doc(
            """
            A [[folders]] table keeps a folder in sync: new and edited files are indexed, files
            deleted from it are removed from the index. Remove the "# " to use these examples;
            repeat a [[feeds]] or [[folders]] table for each one.
            """
        ),
    ] = field(default_factory=list)
    scopes: Annotated[
        list[ScopeSettings],
        doc(
            """
            Channel scopes (see README, "Channel scopes"): a [[scopes]] table names a set of
            articles -- subscriptions, folders, tags, named articles; any of them lets an
            article in -- and the Discord channels answered only from it. Admins bind more at
            run time with /scope set. Unbound channels and DMs use every article.
            """
        ),
    ] = field(default_factory=list)
    llm: LLMSettings = field(default_factory=LLMSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    # where the settings were read from (None: defaults and environment only); not a key
    config_path: Path | None = None

    @property
    def discord_token(self) -> str | None:
        return os.environ.get("DISCORD_TOKEN") or None
