"""A bundle: the files of one job directory, in order, before they touch the disk.

Targets build a `Bundle`; `l2hmcc.emit` writes it atomically. Keeping the files in memory
first makes compile all-or-nothing and lets the manifest record every file's digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class BundleFile:
    data: bytes
    executable: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class Bundle:
    """An ordered mapping ``relative path → BundleFile``."""

    def __init__(self) -> None:
        self._files: dict[str, BundleFile] = {}

    def add(self, path: str, data: bytes | str, *, executable: bool = False) -> None:
        """Add a file; ``path`` is relative, with ``/`` separators, and new to the bundle."""
        p = PurePosixPath(path)
        if p.is_absolute() or not p.parts or ".." in p.parts or str(p) != path:
            raise ValueError(f"bundle paths are normalised relative paths, got {path!r}")
        if path in self._files:
            raise ValueError(f"{path!r} is already in the bundle")
        raw = data.encode("utf-8") if isinstance(data, str) else data
        self._files[path] = BundleFile(raw, executable)

    def update(self, other: Bundle) -> None:
        for path, f in other.items():
            self.add(path, f.data, executable=f.executable)

    def __getitem__(self, path: str) -> BundleFile:
        return self._files[path]

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def items(self) -> Iterator[tuple[str, BundleFile]]:
        return iter(self._files.items())

    def digest(self) -> str:
        """sha256 over every path, mode and content, in order: equal bundles, equal digest."""
        h = hashlib.sha256()
        for path, f in self._files.items():
            h.update(f"{path}\0{int(f.executable)}\0{len(f.data)}\0".encode())
            h.update(f.data)
        return h.hexdigest()
