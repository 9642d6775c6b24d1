"""Import heavy modules on first use, so commands that never need them start faster.

``newsdesk index`` on an unchanged folder, ``stats`` and the article commands should answer in
well under a second: they need neither FAISS nor an HTTP client. Usage, at module level::

    if TYPE_CHECKING:
        import faiss
    else:
        faiss = lazy_module("faiss", globals())

The first attribute access imports the module and puts it in the namespace in place of the
stand-in, so later accesses cost nothing extra.
"""

from __future__ import annotations

import importlib
from typing import Any


def lazy_module(name: str, namespace: dict[str, Any], alias: str | None = None) -> Any:
    key = alias or name

    class _Lazy:
        def __getattr__(self, attr: str) -> Any:
            module = importlib.import_module(name)
            namespace[key] = module
            return getattr(module, attr)

        def __repr__(self) -> str:
            return f"<lazy module {name!r}>"

    return _Lazy()
