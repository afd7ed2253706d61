"""Source text and spans: where every later message points.

A `Source` is the text of one spec (or of one ``--set`` override) with a name to show in
messages. A `Span` is a half-open range of that text, kept both as character offsets (for
slicing) and as 1-based line/column pairs (for people). Reading a file never raises anything
but `SourceError`, which the driver turns into a diagnostic.
"""

from __future__ import annotations

import bisect
import os
import select
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: Specs are small; anything larger is almost certainly the wrong file.
MAX_SOURCE_BYTES = 1 << 20


@dataclass(frozen=True)
class Span:
    """A range of a source: 1-based ``line``/``col`` of its first character, ``end_line``/
    ``end_col`` one past its last character, and the same range as 0-based character offsets."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int
    end: int

    def __str__(self) -> str:
        return self.file if self.line == 0 else f"{self.file}:{self.line}:{self.col}"

    @classmethod
    def whole_file(cls, file: str) -> Span:
        """A span for the file as a whole (line 0): messages show the path, no source line."""
        return cls(file, 0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Source:
    """The text of one spec, with its name as shown in messages (a path or ``--set``)."""

    name: str
    text: str
    _line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        object.__setattr__(self, "_line_starts", tuple(starts))

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        """The span of characters ``[start, end)``."""
        line, col = self.position(start)
        end_line, end_col = self.position(max(start, end))
        return Span(self.name, line, col, end_line, end_col, start, max(start, end))

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    @property
    def start_span(self) -> Span:
        """A zero-width span at the very start (for messages about the file as a whole)."""
        return self.span(0, 0)


class SourceError(Exception):
    """A file that cannot be a spec: missing, unreadable, not a file or a pipe, binary, empty
    or too large."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


#: How long to wait for a pipe's writer to write something before giving up.
PIPE_WAIT_S = 30.0


def _kind(mode: int) -> str:
    for test, what in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def read_file(path: str | Path, *, max_bytes: int = MAX_SOURCE_BYTES) -> tuple[bytes, Source]:
    """Read a spec once: its bytes as read (for the job's copy and digest) and its text.

    A regular file or a pipe (``/dev/stdin``, ``<(...)``, a FIFO) is read; anything else
    (a directory, a device such as ``/dev/zero``, a socket) is refused. A pipe is read only
    once, so a spec given through one is the same text in every later stage. Raises
    `SourceError` (never `OSError`) on bad input."""
    name = str(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SourceError("E010", f"`{name}` is a directory, not a spec file")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise SourceError(
                "E018",
                f"`{name}` is {_kind(mode)}, not a spec file",
                help="give a regular file (or a pipe)",
            )
        # Non-blocking: opening a FIFO without a writer must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                ready, _, _ = select.select([fd], [], [], PIPE_WAIT_S)
                if not ready:
                    raise SourceError(
                        "E018",
                        f"`{name}` is a pipe and nothing was written to it"
                        f" within {PIPE_WAIT_S:g} s",
                        help="start the program that writes the spec first",
                    )
            os.set_blocking(fd, True)
            data = _read_up_to(fd, max_bytes + 1)
        finally:
            os.close(fd)
    except SourceError:
        raise
    except FileNotFoundError:
        raise SourceError("E010", f"cannot read `{name}`: no such file") from None
    except PermissionError:
        raise SourceError("E010", f"cannot read `{name}`: permission denied") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise SourceError(
            "E010", f"cannot read `{name}`: {getattr(e, 'strerror', None) or e}"
        ) from None
    return data, decode_source(name, data, max_bytes=max_bytes)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_source(path: str | Path, *, max_bytes: int = MAX_SOURCE_BYTES) -> Source:
    """Read a spec file as UTF-8 text (`read_file` without the bytes)."""
    return read_file(path, max_bytes=max_bytes)[1]


def decode_source(name: str, data: bytes, *, max_bytes: int = MAX_SOURCE_BYTES) -> Source:
    """Turn raw bytes into a `Source`, rejecting binary, empty and oversized input."""
    if len(data) > max_bytes:
        raise SourceError(
            "E013",
            f"`{name}` is larger than {max_bytes // (1 << 20)} MiB; a spec is a few KiB",
            help="check that this is the spec file you meant",
        )
    if b"\x00" in data:
        raise SourceError("E011", f"`{name}` is a binary file, not a spec (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(
            "E011",
            f"`{name}` is not UTF-8 text (invalid byte at offset {e.start})",
            help="save the spec as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise SourceError(
            "E012",
            f"`{name}` is empty",
            help="a spec needs at least a `lattice { ... }` block; see `specs/u1-smoke.l2h`",
        )
    return Source(name, text)
