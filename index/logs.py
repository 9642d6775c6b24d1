"""Logging set-up shared by both faces (``newsdesk`` and ``python -m bot``).

Each face adds its own touches after :func:`setup_logging` (the CLI silences the HTML
extractors' own complaints unless ``-v``; the bot redacts secrets on every handler), but the
level chosen from ``-v``/``-q`` and the config, the one stderr handler and the quieted chatty
libraries are decided here once.
"""

from __future__ import annotations

import logging
import sys

# libraries whose INFO/DEBUG records drown newsdesk's own: WARNING at least, whatever -v says
NOISY_LOGGERS = ("httpx", "httpcore", "sentence_transformers", "transformers", "faiss", "bm25s")


def chosen_level(verbose: int, quiet: bool = False, default: int | str = "WARNING") -> int | str:
    """``-vv`` DEBUG, ``-v`` INFO, ``-q`` ERROR, else ``default`` (the config's ``log_level``)."""
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else default
    if quiet and not verbose:
        level = logging.ERROR
    return level


def setup_logging(
    verbose: int,
    default: int | str = "WARNING",
    *,
    quiet: bool = False,
    formatter: logging.Formatter | None = None,
) -> int | str:
    """Send log records to stderr through ``formatter`` at the level :func:`chosen_level`
    picks (replacing any earlier set-up), with :data:`NOISY_LOGGERS` at WARNING at least.
    Returns the level chosen."""
    level = chosen_level(verbose, quiet, default)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter or logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return level
