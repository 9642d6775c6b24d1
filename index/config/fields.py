"""How a key is declared: ``doc(...)``, its documentation and limits, and shared constants.

A field is a plain dataclass field annotated ``Annotated[type, doc(...)]``. ``doc`` is a
``msgspec.Meta`` carrying the description (config.example.toml is generated from it, see
``index.config.example``) and the limits msgspec checks when a config file is loaded
(``ge``/``le``/``gt``/``pattern``), plus ``must``: the "must be ..." text of the one-line error
when a limit is broken (without it the text is made from ``ge``/``le``).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from msgspec import Meta

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_INTERVAL = 10080  # minutes between polls of a subscription: at most a week


def doc(text: str, *, must: str | None = None, example: Any = None, **limits: Any) -> Meta:
    """A field's documentation and limits. ``must`` overrides the generated "must be ..." text;
    ``example`` is shown (commented out) in config.example.toml for a key without a literal
    default.

    Called only when the annotations are read (they are strings until then), so msgspec is
    imported by the first config file loaded, not by ``import index.config``: a run without a
    config file pays nothing for it."""
    from msgspec import Meta

    extra = {k: v for k, v in (("must", must), ("example", example)) if v is not None}
    return Meta(description=inspect.cleandoc(text), extra=extra, **limits)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "newsdesk"


SECONDS = "a number of seconds"
