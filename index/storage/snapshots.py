"""Which generation a reader answers from: the newest one loaded, and the one before it while
readers that started on it still hold it (a question never sees two generations).

Loading is the backend's; this only decides when to load and which snapshot to keep, so a
process answering many questions loads each generation once, whatever the number of threads.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from index.storage.base import Snapshot

Loader = Callable[[int], Snapshot]  # generation -> its snapshot


class Snapshots:
    def __init__(self, load: Loader) -> None:
        self._load = load
        self._snap: Snapshot | None = None
        # the generation before, while readers that started on it still hold it
        self._prev: weakref.ref[Snapshot] | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> Snapshot | None:
        """The newest snapshot loaded or published (None before the first)."""
        return self._snap

    def get(self, gen: int) -> Snapshot:
        """Generation ``gen``: the current or previous snapshot when it is one of them, else
        loaded (once, whichever thread asks first) and kept when it is newer."""
        snap = self._snap
        if snap is not None and snap.generation == gen:
            return snap
        prev = self._prev() if self._prev is not None else None
        if prev is not None and prev.generation == gen:
            return prev
        with self._lock:
            snap = self._snap
            if snap is not None and snap.generation == gen:
                return snap
            loaded = self._load(gen)
            if snap is None or gen > snap.generation:
                self._prev = weakref.ref(snap) if snap is not None else None
                self._snap = loaded
            return loaded

    def published(self, snap: Snapshot) -> None:
        """A writer of this process published ``snap``: it becomes the current one."""
        with self._lock:
            self._prev = weakref.ref(self._snap) if self._snap is not None else None
            self._snap = snap
