"""Typed settings: defaults < TOML file < environment.

Config file: ``--config PATH``, else ``$NEWSDESK_CONFIG``, else ``./config.toml`` if present.
Data dir: ``--data-dir``, else ``$NEWSDESK_DATA_DIR``, else ``data_dir`` from the file, else the
platform's user data dir. The Discord token comes only from ``$DISCORD_TOKEN``.

Every unknown key and every bad value is reported by its dotted name, e.g.
``config.toml: retrieval.k must be an integer (got 'ten')``.

``models`` and ``engine`` declare every key once (type, default, limits, documentation; see
``fields``); ``load`` reads a file into them; ``rules`` holds the checks that span keys;
``example`` writes config.example.toml from the models.
"""

from index.config.fields import DEFAULT_MODEL, MAX_INTERVAL, default_data_dir
from index.config.load import ALLOW_HOSTS_ENV, env_allow_hosts, find_config_path, load_settings
from index.config.models import (
    AnswerSettings,
    ChunkingSettings,
    DiscordSettings,
    EmbeddingSettings,
    FeedSubscription,
    FetchSettings,
    FolderSubscription,
    LLMSettings,
    PrivacySettings,
    RetrievalSettings,
    ScopeSettings,
    Settings,
    StoreSettings,
    SyncSettings,
)
from index.config.rules import ALLOW_ENTRY_FORM, HIDDEN, allow_entry_ok, looks_like_secret

__all__ = [
    "ALLOW_ENTRY_FORM",
    "ALLOW_HOSTS_ENV",
    "DEFAULT_MODEL",
    "HIDDEN",
    "MAX_INTERVAL",
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
    "allow_entry_ok",
    "default_data_dir",
    "env_allow_hosts",
    "find_config_path",
    "load_settings",
    "looks_like_secret",
]
