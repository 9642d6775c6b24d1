"""Channel scope bindings set at run time (``/scope set``), in ``community.sqlite3``.

A row binds one Discord channel (a text or forum channel, or a single thread) to a scope: a
named ``[[scopes]]`` table of the config file, or feeds / folders / tags / articles given in
the command. Bindings survive restarts; the config file's own ``channels`` are read from the
config, not stored here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from index.community.db import CommunityDB
from index.errors import NewsdeskError
from index.models import Scope
from index.sqlite_util import sqlite_error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scope_bindings (
    channel INTEGER PRIMARY KEY,
    guild INTEGER,
    name TEXT NOT NULL DEFAULT '',
    feeds TEXT NOT NULL DEFAULT '[]',
    folders TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    articles TEXT NOT NULL DEFAULT '[]',
    set_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Binding:
    """A channel bound at run time to ``scope`` (in server ``guild``; None: unknown)."""

    channel: int
    guild: int | None
    scope: Scope
    set_at: str

    def to_json(self) -> dict[str, object]:
        # Discord ids as strings: snowflakes exceed JavaScript's exact integers (2**53)
        return {
            "channel": str(self.channel),
            "guild": None if self.guild is None else str(self.guild),
            "scope": self.scope.to_json(),
            "set_at": self.set_at,
        }


class ScopeBindings(CommunityDB):
    """The ``scope_bindings`` table (nothing to prune: a binding lasts until cleared)."""

    SCHEMA = _SCHEMA

    def _db_error(self, e: sqlite3.DatabaseError) -> NewsdeskError:
        return sqlite_error(
            self.path,
            e,
            busy="{path} is busy ({text}); try again in a moment",
            damaged="{path} is damaged or unreadable ({text}); move it away to start afresh "
            "(the channel scope bindings are lost, the articles are not)",
        )

    def set(self, channel: int, guild: int | None, scope: Scope, when: str) -> Binding:
        with self._write() as c:
            c.execute(
                "INSERT INTO scope_bindings(channel, guild, name, feeds, folders, tags, articles, "
                "set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel) DO UPDATE SET "
                "guild=excluded.guild, name=excluded.name, feeds=excluded.feeds, "
                "folders=excluded.folders, tags=excluded.tags, articles=excluded.articles, "
                "set_at=excluded.set_at",
                (
                    channel,
                    guild,
                    scope.name,
                    json.dumps(list(scope.feeds)),
                    json.dumps(list(scope.folders)),
                    json.dumps(list(scope.tags)),
                    json.dumps(list(scope.articles)),
                    when,
                ),
            )
        return Binding(channel, guild, scope, when)

    def clear(self, channel: int) -> bool:
        """Remove the binding of ``channel``; False when it had none."""
        if not self.path.is_file():
            return False
        with self._write() as c:
            return c.execute("DELETE FROM scope_bindings WHERE channel=?", (channel,)).rowcount > 0

    def get(self, channels: Sequence[int]) -> Binding | None:
        """The binding of the first of ``channels`` that has one (a thread, then its parent)."""
        if not channels:
            return None
        with self._read() as c:
            if c is None:
                return None
            marks = ",".join("?" * len(channels))
            rows = {
                r[0]: r
                for r in c.execute(
                    f"SELECT * FROM scope_bindings WHERE channel IN ({marks})",
                    [int(ch) for ch in channels],
                )
            }
        for ch in channels:
            if ch in rows:
                return _binding(rows[ch])
        return None

    def all(self, guild: int | None = None) -> list[Binding]:
        """Every binding (``guild``: only that server's), by channel."""
        with self._read() as c:
            if c is None:
                return []
            rows = c.execute("SELECT * FROM scope_bindings ORDER BY channel").fetchall()
        out = [_binding(r) for r in rows]
        return [b for b in out if guild is None or b.guild == guild]


def _binding(r: Sequence[object]) -> Binding:
    def items(v: object) -> tuple[str, ...]:
        try:
            data = json.loads(str(v))
        except ValueError:
            return ()
        return tuple(str(x) for x in data) if isinstance(data, list) else ()

    scope = Scope(str(r[2] or ""), items(r[3]), items(r[4]), items(r[5]), items(r[6]))
    guild = None if r[1] is None else int(str(r[1]))
    return Binding(int(str(r[0])), guild, scope, str(r[7]))
