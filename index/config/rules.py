"""What the field limits cannot say: rules over several keys, entry forms, and secrets.

``check`` runs once on the final settings (file, then environment), so a rule sees the values
in force; each broken rule is one line naming its dotted key. Values that may be secrets are
never echoed (``got``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from index.config.models import LLMSettings, Settings
from index.errors import ConfigError
from index.models import normalize_tags

# keys whose value is never echoed in an error: secrets, and the names of the variables
# holding them (a secret pasted there by mistake)
_HIDE_KEY = re.compile(r"(token|secret|password|api_key|_env)$", re.I)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}$")
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

Need = Callable[[bool, str, str, Any], None]


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
    if TOKEN_SHAPE.match(v) or _KNOWN_SECRET.search(v):
        return True
    if len(v) < 20 or any(ch.isspace() for ch in v) or "/" in v:
        return False
    digits = sum(ch.isdigit() for ch in v)
    return digits >= 2 and any(ch.islower() for ch in v) and any(ch.isupper() for ch in v)


def got(key: str, value: object) -> str:
    """`` (got 'x')`` for an error message, or a note that the value is withheld when the key
    holds a secret or the name of one, or the value looks like a secret."""
    if _HIDE_KEY.search(key.rsplit(".", 1)[-1]) or looks_like_secret(value):
        return f" ({HIDDEN})"
    return f" (got {value!r})"


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
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def check(s: Settings, where: str) -> None:
    """Raise ConfigError for the first broken rule, named by its dotted key."""

    def need(cond: bool, key: str, what: str, value: Any) -> None:
        if not cond:
            raise ConfigError(f"{where}: {key} must be {what}{got(key, value)}")

    mt = s.chunking.max_tokens
    need(
        mt == 0 or 32 <= mt <= 8192,
        "chunking.max_tokens",
        "0 (the model's limit) or between 32 and 8192",
        mt,
    )
    for i, entry in enumerate(s.fetch.allow_hosts):
        need(
            allow_entry_ok(entry),
            f"fetch.allow_hosts[{i}]",
            ALLOW_ENTRY_FORM.removeprefix("each entry must be "),
            entry,
        )
    _scale_out(s, need)
    _subscriptions(s, need, where)
    _scopes(s, need, where)
    _llm(s.llm, need, where)
    need(
        s.log_level.upper() in LEVELS,
        "log_level",
        "one of " + ", ".join(sorted(LEVELS)),
        s.log_level,
    )


def _scale_out(s: Settings, need: Need) -> None:
    """``[store]`` and the ``[discord]`` shard and admin keys."""
    st, d = s.store, s.discord
    uri = st.uri.strip()
    need(
        not uri or uri.endswith(".db") or bool(_MILVUS_URI.match(uri)),
        "store.uri",
        'a local path ending in ".db" (Milvus Lite) or http://host:19530',
        st.uri,
    )
    _env_name(st.token_env, "store.token_env", '"MILVUS_TOKEN"', need)
    for key in ("admin_guild_ids", "admin_user_ids", "admin_role_ids"):
        ids = getattr(d, key)
        need(all(i > 0 for i in ids), f"discord.{key}", "a list of Discord ids (numbers)", ids)
    need(
        not d.shard_ids or d.shard_count > 0,
        "discord.shard_ids",
        "empty unless discord.shard_count is set",
        d.shard_ids,
    )
    need(
        all(0 <= i < d.shard_count for i in d.shard_ids),
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


def _subscriptions(s: Settings, need: Need, where: str) -> None:
    """``[[feeds]]`` and ``[[folders]]``: present, well-formed and each listed once."""
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
    for i, folder in enumerate(s.folders):
        key = f"folders[{i}]"
        if folder.path is None:
            raise ConfigError(f"{where}: {key}.path is missing (the folder to watch)")
        target = str(folder.path)
        need(target not in seen, f"{key}.path", "listed once", target)
        seen.add(target)


def _tags(tags: list[str], key: str, where: str) -> list[str]:
    try:
        return list(normalize_tags(tags))
    except ValueError as e:
        raise ConfigError(f"{where}: {key}: {e}") from None


def _scopes(s: Settings, need: Need, where: str) -> None:
    """``[[scopes]]``: named once each, not empty, each channel bound once; tags normalised;
    and the tags of ``[[feeds]]`` / ``[[folders]]``."""
    for i, feed in enumerate(s.feeds):
        feed.tags = _tags(feed.tags, f"feeds[{i}].tags", where)
    for i, folder in enumerate(s.folders):
        folder.tags = _tags(folder.tags, f"folders[{i}].tags", where)
    names: set[str] = set()
    channels: set[int] = set()
    for i, sc in enumerate(s.scopes):
        key = f"scopes[{i}]"
        sc.name = sc.name.strip()
        if not sc.name:
            raise ConfigError(f"{where}: {key}.name is missing (how /scope shows it)")
        need(len(sc.name) <= 100, f"{key}.name", "at most 100 characters", sc.name)
        need(sc.name.lower() not in names, f"{key}.name", "a name used once", sc.name)
        names.add(sc.name.lower())
        sc.tags = _tags(sc.tags, f"{key}.tags", where)
        if not (sc.feeds or sc.folders or sc.tags or sc.articles):
            raise ConfigError(
                f"{where}: {key} ({sc.name}) selects nothing: give feeds, folders, tags or articles"
            )
        for ch in sc.channels:
            need(0 < ch < 2**63, f"{key}.channels", "Discord channel ids", ch)
            need(ch not in channels, f"{key}.channels", "channels bound to one scope each", ch)
            channels.add(ch)


def _env_name(value: str, key: str, example: str, need: Need) -> None:
    """A ``*_env`` key names an environment variable; a value that is no such name, or looks
    like a token itself, is refused without being echoed (it is probably the secret)."""
    need(
        bool(_ENV_NAME.match(value)) and not looks_like_secret(value),
        key,
        f"the name of an environment variable holding the secret, e.g. {example} "
        "(not the secret itself: put that in the environment)",
        value,
    )


def _llm(llm: LLMSettings, need: Need, where: str) -> None:
    """``[llm]``: a bad value names its key; the API key's value is never echoed."""
    url = llm.base_url.strip()
    if url:
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        need(ok, "llm.base_url", 'an http(s) URL such as "http://localhost:8080/v1"', url)
        if not llm.model.strip():
            raise ConfigError(
                f"{where}: llm.model must be set when llm.base_url is (the model name the "
                'endpoint serves, e.g. "llama3.2" for Ollama; llama.cpp accepts any name)'
            )
    if llm.api_key_env:
        _env_name(llm.api_key_env, "llm.api_key_env", '"OPENAI_API_KEY"', need)
