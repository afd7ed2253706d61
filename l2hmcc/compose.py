"""Spec composition: ``extends "base.l2h"`` chains, read and merged into one syntax tree.

A spec may start with ``extends "PATH"`` (a path relative to the file that says it). The
chain main → base → base of base … is read file by file (each parsed on its own, so every
message points into the right file), and then merged from the far end: each spec's blocks
are laid over its base's. The merge works on syntax trees, before lowering, so the merged
tree keeps every node's span in the file it came from. The rules:

* a top-level block the base lacks is added; an attribute replaces the base's attribute of
  the same key (the value as a whole: a list replaces a list, a call a call);
* blocks of the same kind merge key by key, recursively (``network { conv { } }``,
  ``job { env { } }``); the child's label wins when it has one, else the base's stays, so
  ``job { nodes = 4 }`` adjusts the base's ``job polaris { ... }``;
* except a block whose label selects a variant (`VARIANT_BLOCKS`: ``distributed``, ``job``,
  ``network``): under a *different* label it replaces the base's block whole
  (``distributed ddp { }`` over ``distributed deepspeed { zero_stage = 2 }`` drops
  ``zero_stage``; ``network none { }`` over ``network { hidden = [16] }``, whose missing
  label stands for ``l2hmc`` (`UNLABELLED`), drops ``hidden``);
* a key cannot be removed, only set (to its default, if that is what is meant).

A file that appears twice in a chain is a cycle (E017); so is a chain deeper than
`MAX_CHAIN`. A base that cannot be read is E016 at its ``extends`` line.

How files are found is a `Reader`: `DiskReader` resolves paths against the including
file's directory; ``l2hmcc verify`` reads the copies a job directory carries instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Protocol

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.source import Source, SourceError, Span, decode_source, read_file
from l2hmcc.syntax import Attribute, Block, Item, SpecFile, parse

#: Blocks whose label selects a variant: under another label they replace the base's block.
#: (The same blocks `l2hmcc.blocks.BLOCKS` marks ``variant``; a test keeps them equal.)
VARIANT_BLOCKS = frozenset({"distributed", "job", "network"})

#: The label an unlabelled variant block stands for (`l2hmcc.blocks.BLOCKS`' ``label_default``).
UNLABELLED = {"network": "l2hmc"}

#: At most this many files in a chain (the main spec included).
MAX_CHAIN = 16


@dataclass(frozen=True)
class ChainFile:
    """One file of a chain: its name in messages, the ``extends`` string that led to it (None
    for the main spec), its bytes and parsed tree."""

    name: str
    written: str | None
    data: bytes
    source: Source
    tree: SpecFile


class Reader(Protocol):
    def locate(self, including: str, written: str) -> str:
        """The name of the file that ``extends "written"`` in ``including`` refers to."""
        ...

    def identity(self, name: str) -> str:
        """A key that is equal for two names of the same file (cycle detection)."""
        ...

    def read(self, name: str) -> tuple[bytes, Source]:
        """The file's bytes and text. Raises `SourceError`."""
        ...


class DiskReader:
    """Files on disk; a base path is relative to the directory of the file that names it."""

    def locate(self, including: str, written: str) -> str:
        if os.path.isabs(written):
            return os.path.normpath(written)
        return os.path.normpath(os.path.join(os.path.dirname(including), written))

    def identity(self, name: str) -> str:
        return os.path.realpath(name)

    def read(self, name: str) -> tuple[bytes, Source]:
        return read_file(name)  # read once: a pipe gives its bytes only once


class MemoryReader:
    """Files given as bytes: ``name → data``, and for each file the name its ``extends``
    leads to (how a job directory's recorded chain is read back)."""

    def __init__(
        self,
        files: dict[str, bytes],
        bases: dict[str, tuple[str, str]],
        unreadable: dict[str, str] | None = None,
    ) -> None:
        self.files = files
        self.bases = bases  # including name → (written, base name)
        self.unreadable = unreadable or {}  # name → why it is not among the files

    def locate(self, including: str, written: str) -> str:
        recorded = self.bases.get(including)
        if recorded is None or recorded[0] != written:
            raise SourceError(
                "E016",
                f"the record has no base `{written}` for `{including}`",
                help="the spec copy and the manifest disagree; the job directory was edited",
            )
        return recorded[1]

    def identity(self, name: str) -> str:
        return name

    def read(self, name: str) -> tuple[bytes, Source]:
        data = self.files.get(name)
        if data is None:
            why = self.unreadable.get(name, "no such file")
            raise SourceError("E010", f"cannot read `{name}`: {why}")
        return data, decode_source(name, data)


@dataclass
class Chain:
    """The files of a chain, main spec first, and what reading them found."""

    files: list[ChainFile]
    diagnostics: list[Diagnostic]
    sources: dict[str, Source]
    """Every file read (including one that did not parse), for messages."""


def load_chain(path: str, reader: Reader) -> Chain:
    """Read and parse ``path`` and every spec it extends, nearest first. Stops at the first
    problem (a file that cannot be read or parsed, a cycle), which is in ``diagnostics``."""
    chain = Chain([], [], {})
    name, written, via = path, None, None
    seen: dict[str, int] = {}
    while True:
        try:
            data, src = reader.read(name)
        except SourceError as e:
            if via is None:
                chain.diagnostics.append(
                    error(e.code, e.message, Span.whole_file(name), help=e.help)
                )
            else:
                chain.diagnostics.append(_unreadable_base(e, via, name))
            return chain
        chain.sources[src.name] = src
        result = parse(src)
        chain.diagnostics.extend(result.diagnostics)
        if result.tree is None:
            return chain
        key = reader.identity(name)
        file = ChainFile(name, written, data, src, result.tree)
        if key in seen:
            chain.diagnostics.append(_cycle(chain.files, seen[key], file))
            return chain
        seen[key] = len(chain.files)
        chain.files.append(file)
        ext = result.tree.extends
        if ext is None:
            return chain
        if len(chain.files) >= MAX_CHAIN:
            chain.diagnostics.append(
                error(
                    "E017",
                    f"`extends` chain deeper than {MAX_CHAIN} files",
                    ext.span,
                    "one too many",
                    help="shorten the chain of base specs",
                )
            )
            return chain
        written, via = ext.path.value, file
        try:
            name = reader.locate(file.name, written)
        except SourceError as e:
            chain.diagnostics.append(_unreadable_base(e, file, written))
            return chain


def _unreadable_base(e: SourceError, via: ChainFile, name: str) -> Diagnostic:
    ext = via.tree.extends
    assert ext is not None
    reason = e.message.removeprefix(f"cannot read `{name}`: ")
    return error(
        "E016",
        f"cannot read the base spec `{ext.path.value}`: {reason}",
        ext.path.span,
        "base spec",
        help=e.help or f"the path is relative to `{via.name}`'s directory (here: `{name}`)",
    )


def _cycle(files: list[ChainFile], first: int, again: ChainFile) -> Diagnostic:
    loop = [*files[first:], again]
    shown = " → ".join(f"`{f.name}`" for f in loop)
    closing = files[-1].tree.extends
    assert closing is not None
    others = [
        Label(ext.span, "extends") for f in files[first:-1] if (ext := f.tree.extends) is not None
    ]
    return error(
        "E017",
        f"`extends` cycle: {shown}",
        closing.span,
        "closes the cycle",
        secondary=others,
        help="a spec cannot extend itself, directly or through its bases",
    )


# ---------------------------------------------------------------------------------------------
# Merging


def merge_chain(files: list[ChainFile]) -> SpecFile:
    """The main spec with every base merged under it (``files`` main first)."""
    tree = files[-1].tree
    for f in reversed(files[:-1]):
        tree = merge(tree, f.tree)
    return tree


def merge(base: SpecFile, child: SpecFile) -> SpecFile:
    """``child``'s items laid over ``base``'s (see the module docstring)."""
    return SpecFile(child.span, _merge_items(base.items, child.items, top=True), ())


def _key(item: Item) -> tuple[bool, str]:
    """What an item is matched by: attributes by key, blocks by kind."""
    return (True, item.key.text) if isinstance(item, Attribute) else (False, item.kind.text)


def _merge_items(base: tuple[Item, ...], child: tuple[Item, ...], *, top: bool) -> tuple[Item, ...]:
    out: list[Item] = list(base)
    from_child: set[int] = set()
    for item in child:
        key = _key(item)
        # The first base item that matches. A second occurrence in the child is appended, so
        # that lowering reports the duplicate with both places in the child.
        i = next((j for j, it in enumerate(out) if _key(it) == key), None)
        if i is not None and i in from_child:
            i = None
        if i is None:
            from_child.add(len(out))
            out.append(item)
            continue
        from_child.add(i)
        old = out[i]
        out[i] = _merge_block(old, item, top=top) if isinstance(item, Block) else item
    return tuple(out)


def _merge_block(base: Item, child: Block, *, top: bool) -> Block:
    assert isinstance(base, Block)
    base_label = base.label.text if base.label is not None else UNLABELLED.get(base.kind.text)
    relabelled = (
        child.label is not None and base_label is not None and child.label.text != base_label
    )
    if top and relabelled and child.kind.text in VARIANT_BLOCKS:
        return child
    return replace(
        child,
        label=child.label or base.label,
        items=_merge_items(base.items, child.items, top=False),
    )
