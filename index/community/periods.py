"""Spans and dates a person types: ``--since 7d``, ``--before 2026-01-31``, ``/gaps since:24h``."""

from __future__ import annotations

import datetime as dt
import re

from index.errors import NewsdeskError

_SPAN_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT = {"m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
SPAN_FORM = "a span like 30m, 24h, 7d or 2w"


class PeriodError(NewsdeskError):
    """A span or date that cannot be read."""


def parse_span(text: str) -> float:
    """Seconds in ``text`` ("7d", "24h", "90m", "2w"; a bare number is days)."""
    m = _SPAN_RE.match(text or "")
    if m is None:
        raise PeriodError(f"{text!r} is not {SPAN_FORM}")
    seconds = float(m.group(1)) * _UNIT[(m.group(2) or "d").lower()]
    if seconds <= 0:
        raise PeriodError(f"{text!r}: the span must be longer than 0")
    return seconds


def parse_date(text: str) -> float:
    """A UNIX time from an ISO date (``2026-01-31``, midnight UTC) or date-time (UTC unless it
    names its zone)."""
    try:
        when = dt.datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise PeriodError(
            f"{text!r} is not a date: give one like 2026-01-31 or 2026-01-31T12:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def iso(ts: float) -> str:
    """A UNIX time as an ISO date-time in UTC, to the second."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
