"""Which articles a channel is answered from: named scopes, channel bindings, and their
resolution into a :class:`~index.search.scope.Selection` the engine filters by.

Scopes come from the config file (``[[scopes]]``, each with the ``channels`` it binds) and from
``/scope set`` (``community.sqlite3``, :mod:`index.community.scopes`); a run-time binding wins
over the config's for the same channel, and a thread is answered from its own binding, else its
parent channel's. A subscription's articles are known only to ``subscriptions.db``, which is why
this lives beside the subscriptions and not in the engine: the selection is resolved here once
per index generation, and the engine resolves it into passages once per generation too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from index.community.scopes import Binding, ScopeBindings
from index.errors import ArticleNotFoundError, NewsdeskError
from index.feeds.models import match_subscription
from index.feeds.store import SubscriptionStore
from index.models import Scope, normalize_tags
from index.search.scope import Selection

if TYPE_CHECKING:
    from index.pipeline import Pipeline

log = logging.getLogger(__name__)


class ScopeError(NewsdeskError):
    """A scope that names nothing known (no such scope, subscription or article, a bad tag)."""


def configured_scopes(pipeline: Pipeline) -> list[tuple[Scope, list[int]]]:
    """The config file's ``[[scopes]]``, each with the channels it binds."""
    return [
        (
            Scope(
                s.name,
                tuple(s.feeds),
                tuple(s.folders),
                tuple(s.tags),
                tuple(s.articles),
            ),
            list(s.channels),
        )
        for s in pipeline.settings.scopes
    ]


class ScopeResolver:
    """Channel → scope → selection, for the bot and the CLI (one per pipeline)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.bindings = ScopeBindings(pipeline.data_dir)
        self._subs = SubscriptionStore(pipeline.data_dir)
        self._lock = threading.Lock()
        self._generation = -1
        self._selections: dict[Scope, Selection] = {}

    def close(self) -> None:
        self._subs.close()
        self.bindings.close()

    # -- names and bindings ------------------------------------------------------------------
    def named(self, name: str) -> Scope:
        """The config file's scope called ``name`` (case-insensitive)."""
        for scope, _channels in configured_scopes(self.pipeline):
            if scope.name.lower() == name.strip().lower():
                return scope
        known = ", ".join(s.name for s, _ in configured_scopes(self.pipeline)) or "none"
        raise ScopeError(
            f"no scope named {name.strip()[:100]!r} in the config file ([[scopes]]; "
            f"configured: {known})"
        )

    def expand(self, scope: Scope) -> Scope:
        """A binding that names a configured scope and gives nothing else: that scope."""
        return self.named(scope.name) if scope.empty and scope.name else scope

    def binding(self, channels: Sequence[int]) -> tuple[Scope, Binding | None] | None:
        """The scope of the first of ``channels`` (a thread, then its parent) that has one:
        its run-time binding, else the config file's; None: every article."""
        found = self.bindings.get(channels)
        if found is not None:
            return self.expand(found.scope), found
        config = {ch: sc for sc, chs in configured_scopes(self.pipeline) for ch in chs}
        for ch in channels:
            if ch in config:
                return config[ch], None
        return None

    def for_channels(self, channels: Sequence[int]) -> Selection | None:
        """The selection a question in ``channels`` (a thread, then its parent) is answered
        from; None: every article (an unbound channel, or a DM)."""
        found = self.binding(channels)
        return None if found is None else self.selection(found[0])

    # -- resolution --------------------------------------------------------------------------
    def _current_generation(self) -> int:
        store = self.pipeline.store
        return store.generation() if store.exists() else 0

    def selection(self, scope: Scope) -> Selection:
        """``scope`` in the engine's terms, resolved once per index generation (a subscription
        syncs through the index, so its new articles come with a new generation). A name that
        matches nothing is left out (logged): the rest of the scope still answers."""
        gen = self._current_generation()
        with self._lock:
            if gen != self._generation:
                self._generation, self._selections = gen, {}
            hit = self._selections.get(scope)
        if hit is not None:
            return hit
        sel, problems = self._resolve(scope)
        for p in problems:
            log.warning("scope %s: %s", scope.name or scope.describe(), p)
        with self._lock:
            if gen == self._generation:
                self._selections[scope] = sel
        return sel

    def article_ids(self, selection: Selection) -> frozenset[str]:
        """The indexed articles ``selection`` lets in now (for a brief of a bound channel)."""
        store = self.pipeline.store
        if not store.exists():
            return frozenset()
        return frozenset(a for a, src, tags in store.catalogue() if selection.selects(a, src, tags))

    def articles_in(self, selection: Selection) -> int:
        """How many indexed articles ``selection`` lets in now."""
        return len(self.article_ids(selection))

    def problems(self, scope: Scope) -> list[str]:
        """What in ``scope`` names nothing known, one line each ([] when all is found)."""
        return self._resolve(scope)[1]

    def _resolve(self, scope: Scope) -> tuple[Selection, list[str]]:
        problems: list[str] = []
        ids: set[str] = set()
        if scope.feeds:
            statuses = self._subs.statuses()
            for ref in scope.feeds:
                found = match_subscription(statuses, ref)
                if found is None:
                    problems.append(f"no subscription {ref!r} (`newsdesk subscriptions`)")
                else:
                    ids |= self._subs.article_ids(found.id)
        for ref in scope.articles:
            try:
                ids.add(self.pipeline.get_article(ref).id)
            except ArticleNotFoundError as e:
                problems.append(str(e))
        try:
            tags = frozenset(normalize_tags(scope.tags))
        except ValueError as e:
            problems.append(str(e))
            tags = frozenset()
        folders = tuple(os.path.abspath(Path(f).expanduser()) for f in scope.folders)
        return Selection(frozenset(ids), folders, tags, scope.name), problems
