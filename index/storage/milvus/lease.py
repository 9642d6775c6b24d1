"""The writer lease of a Milvus index: one writer at a time, across processes and machines.

A lease row in ``<prefix>_state`` (Fischer's mutual exclusion: claim, wait longer than any rival's
read-to-write gap, check the claim survived), renewed by a thread while writing and checked again,
with the generation, just before the switch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from index.errors import IndexBusyError, NewsdeskError
from index.storage.milvus.collections import DUMMY, MilvusCollections

log = logging.getLogger(__name__)

SETTLE = 0.5  # Fischer's delay (s): longer than any rival's gap between reading and claiming
RENEW_EVERY = 1 / 3  # of the lease


class WriterLease:
    """The writer lease: the ``writer`` row of the state collection.

    Fischer's algorithm: when the row is free (or expired), write our claim, wait ``settle``
    seconds — longer than any rival's gap between reading the row and writing its own claim —
    and read it back; if our claim survived, we hold the lease. A thread renews it every third of
    ``lease_seconds``; :meth:`check` (just before the switch) fails if it was lost. Expiry
    compares wall clocks, so the machines' clocks must agree to well within the lease (NTP).
    """

    def __init__(self, backend: MilvusCollections, owner: str, ttl: float, settle: float) -> None:
        self.backend = backend
        self.owner = owner
        self.ttl = ttl
        self.settle = settle  # 0 for Milvus Lite: no other process can open it
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
                if self.settle:
                    time.sleep(self.settle)
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
