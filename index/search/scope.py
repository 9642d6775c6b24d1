"""A scope in the engine's terms, resolved once per index generation into the passages it allows.

A named scope (:class:`index.models.Scope`: subscriptions, folders, tags, named articles) is
turned into a :class:`Selection` by :mod:`index.feeds.scopes` (a subscription's articles are
known to ``subscriptions.db``, above this layer). A selection picks articles by id, by folder
(the article's file is under it) or by tag; :class:`ScopeCache` resolves it against the store's
catalogue into an :class:`~index.storage.allowed.Allowed` (passage and article ids) once per
generation, and every question in the scope reuses it: no scan per question. The searches then
filter inside themselves (index/storage/allowed.py).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.storage.allowed import Allowed

if TYPE_CHECKING:
    from index.storage.base import StoreReader

CACHED_SCOPES = 64  # resolved scopes kept (per generation; a newer generation drops the rest)


@dataclass(frozen=True)
class Selection:
    """Which articles a scope lets in: these ids, those whose file is under one of
    ``folders`` (absolute paths), and those with any of ``tags``. ``name`` is for messages."""

    articles: frozenset[str] = frozenset()
    folders: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()
    name: str = ""

    def selects(self, article_id: str, source: str, tags: tuple[str, ...]) -> bool:
        if article_id in self.articles:
            return True
        if self.tags and not self.tags.isdisjoint(tags):
            return True
        return any(under(source, f) for f in self.folders)


def under(source: str, folder: str) -> bool:
    """Whether the file ``source`` is inside ``folder`` (both absolute paths)."""
    folder = folder.rstrip("/\\" + os.sep) or folder
    return source == folder or source.startswith(folder + os.sep) or source.startswith(folder + "/")


class ScopeCache:
    """Resolved selections of the current generation (and the catalogue they were resolved
    from), dropped together when the generation changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._catalogue: list[tuple[str, str, tuple[str, ...]]] | None = None
        self._allowed: OrderedDict[Selection, Allowed] = OrderedDict()

    def allowed(self, store: StoreReader, generation: int, selection: Selection) -> Allowed:
        """The passages ``selection`` allows in ``generation`` (read inside the store's view
        of that generation)."""
        with self._lock:
            if generation != self._generation:
                self._generation, self._catalogue = generation, None
                self._allowed.clear()
            hit = self._allowed.get(selection)
            if hit is not None:
                self._allowed.move_to_end(selection)
                return hit
            catalogue = self._catalogue
        if catalogue is None:
            catalogue = store.catalogue()
        ids = [a for a, source, tags in catalogue if selection.selects(a, source, tags)]
        allowed = Allowed(store.passages_of(ids) if ids else [], ids, generation)
        with self._lock:
            if generation == self._generation:
                self._catalogue = catalogue
                self._allowed[selection] = allowed
                while len(self._allowed) > CACHED_SCOPES:
                    self._allowed.popitem(last=False)
        return allowed
