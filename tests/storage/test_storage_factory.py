"""The backend factory: each ``[store] backend`` name opens its backend, an optional backend's
packages load only when it is configured, and a missing one is one line saying how to install it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from index.config import Settings
from index.errors import ConfigError
from index.storage.factory import BACKENDS, open_backend


def settings_for(name: str) -> Settings:
    s = Settings()
    s.store.backend = name  # type: ignore[assignment]
    return s


def test_faiss_is_the_local_backend_of_the_data_dir(tmp_path: Path) -> None:
    from index.storage.local import LocalBackend

    s = settings_for("faiss")
    s.data_dir = tmp_path / "d"
    backend = open_backend(s)
    assert isinstance(backend, LocalBackend)
    assert not (tmp_path / "d").exists()  # opening reads and writes nothing


def test_an_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"store\.backend must be one of faiss, milvus"):
        open_backend(settings_for("elastic"))
    assert set(BACKENDS) == {"faiss", "milvus"}


def test_missing_milvus_packages_are_one_line_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name == "pymilvus" or name.startswith(("pymilvus.", "index.storage.milvus")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # "not installed"
    with pytest.raises(ConfigError) as e:
        open_backend(settings_for("milvus"))
    assert str(e.value) == (
        'store.backend = "milvus" needs the optional Milvus packages (pymilvus): '
        'pip install "newsdesk[milvus]" (or `pip install pymilvus milvus-lite`)'
    )
