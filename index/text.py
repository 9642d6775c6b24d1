"""Small text helpers every layer may use (ground floor: imports nothing of newsdesk)."""

from __future__ import annotations


def format_size(n: int) -> str:
    """``10000000`` → ``"10 MB"``; decimal units, as people read them."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g} MB"
    if n >= 1_000:
        return f"{n / 1_000:.3g} kB"
    return f"{n} bytes"
