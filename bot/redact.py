"""Defence in depth: the Discord token never reaches a log, whoever logs it and however.

newsdesk itself never logs the token. Should anything else (a library, an exception message, a
traceback) carry it, :class:`SecretRedactor` replaces it with ``[redacted]`` in the message, its
arguments, the formatted traceback and the stack info of every log record. It is installed as
the log-record factory rather than as a filter on one logger or handler, so it sees the records
of every logger (discord.py's included) before any handler, including ones added later.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8  # never "redact" a trivial string everywhere


class SecretRedactor:
    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._previous: Any = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def add(self, secret: str | None) -> None:
        """Redact ``secret`` from now on (for the life of the process); installs the factory."""
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if secret not in self._secrets:
                # longest first, so a secret containing another is replaced whole
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))
            if self._previous is None:
                self._previous = logging.getLogRecordFactory()
                logging.setLogRecordFactory(self._make_record)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _contains(self, text: str | None) -> bool:
        return text is not None and any(s in text for s in self._secrets)

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self._previous(*args, **kwargs)
        if self._secrets:
            self.scrub(record)
        return record

    def scrub(self, record: logging.LogRecord) -> logging.LogRecord:
        """Remove every known secret from ``record`` (in place); returns it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; check the parts
            message = f"{record.msg} {record.args}"
            if self._contains(message):
                record.msg, record.args = self.redact(message), None
        else:
            if self._contains(message):
                record.msg, record.args = self.redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if self._contains(text):
                record.exc_text = self.redact(text)
                record.exc_info = None  # formatters use exc_text; nobody re-formats the original
        elif self._contains(record.exc_text):
            record.exc_text = self.redact(record.exc_text or "")
        if self._contains(record.stack_info):
            record.stack_info = self.redact(record.stack_info or "")
        return record


class RedactingFilter(logging.Filter):
    """The same, as a filter for a handler that should scrub records made elsewhere."""

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        self.redactor.scrub(record)
        return True


redactor = SecretRedactor()


def redact_secret(secret: str | None) -> None:
    """Never log ``secret`` (the Discord token) from now on, whoever logs it."""
    redactor.add(secret)
