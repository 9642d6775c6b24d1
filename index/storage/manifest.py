"""A generation's files made durable and checkable: fsync before the switch, and a manifest
(size and CRC-32 of every file) that loading and ``newsdesk check`` compare against, so a
truncated or altered file is found before FAISS or BM25 read it."""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from pathlib import Path

from index.text import first_line

MANIFEST = "manifest.json"  # per generation: size and CRC-32 of every file


def fsync_tree(path: Path) -> None:
    """Flush every file under ``path``, then ``path`` itself, to disk."""
    for p in sorted(path.rglob("*"), reverse=True):
        with contextlib.suppress(OSError):
            if p.is_file():
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fsync_dir(path)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def write_manifest(gen_dir: Path) -> None:
    """Record the size and CRC-32 of every file of a generation (checked when it is loaded)."""
    files = {
        p.relative_to(gen_dir).as_posix(): [p.stat().st_size, _crc32(p)]
        for p in sorted(gen_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (gen_dir / MANIFEST).write_text(json.dumps({"format": 1, "files": files}), encoding="utf-8")


def manifest_problems(gen_dir: Path) -> list[str]:
    """Files of a generation that are missing, truncated or changed since it was written.

    Every write records a manifest, so a generation without one, or with files it does not
    list, is damaged too (deleting or emptying the manifest must not switch the check off).
    """
    path = gen_dir / MANIFEST
    if not path.exists():
        return [f"{MANIFEST}: missing"]
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        expected = [(str(rel), int(size), int(crc)) for rel, (size, crc) in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return [f"{MANIFEST} is unreadable ({first_line(e, 160)})"]
    listed = {rel for rel, _size, _crc in expected}
    problems = [
        f"{rel}: not in the manifest"
        for rel in sorted(
            p.relative_to(gen_dir).as_posix() for p in gen_dir.rglob("*") if p.is_file()
        )
        if rel != MANIFEST and rel not in listed
    ]
    if "vectors.faiss" not in listed and "vectors.faiss: not in the manifest" not in problems:
        problems.append("vectors.faiss: not in the manifest")
    for rel, size, crc in expected:
        f = gen_dir / rel
        try:
            actual = f.stat().st_size
            if actual != size:
                problems.append(f"{rel}: {actual} bytes, expected {size}")
            elif _crc32(f) != crc:
                problems.append(f"{rel}: checksum mismatch")
        except OSError:
            problems.append(f"{rel}: missing")
    return problems
