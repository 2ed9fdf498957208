"""Catalogues larger than one machine: deterministic shards of the labs, and what identifies a run.

``--shard I/N`` keeps the labs whose position in the catalogue, sorted by lab
id (the path relative to the folder given, without ``.toml``, ``/``-separated),
is I-1 modulo N: round-robin. Why round-robin and not a hash of the path:

- every shard of one CI run checks out the same commit, so what must be stable
  is the split of *one* catalogue across machines, which plain sorting gives
  (code-point order, no locale, no filesystem order);
- the shards come out even (sizes differ by one at most), where a hash splits
  38 labs over 4 shards unevenly by chance;
- neighbours in id order (the labs of one theme folder, which take similar
  time: the DNS timeouts are the slow ones) land on different shards.

A lab moves to another shard when labs are added before it; that is harmless
because shards are only ever merged with shards of the same catalogue, which
:class:`Catalogue` (ids and content hashes of every lab file) checks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` slices of a catalogue."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count} does not exist")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(index=2, count=4)``.

    Raises:
        ValueError: not ``I/N`` with 1 <= I <= N, in words fit for one error line.
    """
    m = _SHARD.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not I/N (e.g. --shard 2/4: the 2nd of 4 slices)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1:
        raise ValueError(f"{text!r}: N must be at least 1")
    if not 1 <= index <= count:
        raise ValueError(f"{text!r}: I must be between 1 and {count} (shards are numbered from 1)")
    return Shard(index=index, count=count)


def shard_ids(ids: Iterable[str], shard: Shard) -> list[str]:
    """The ids of ``shard``, in id order (see the module docstring for the rule)."""
    ordered = sorted(set(ids))
    return [ident for n, ident in enumerate(ordered) if n % shard.count == shard.index - 1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue:
    """What was run: every lab file's id and the SHA-256 of its text, in run order.

    Two runs are of the same catalogue when their digests are equal: same lab
    ids, same file contents (line ends normalised, so a Windows checkout with
    CRLF matches a Linux one).
    """

    labs: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for ident, sha in sorted(self.labs):
            h.update(f"{ident}\0{sha}\n".encode())
        return h.hexdigest()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(ident for ident, _ in self.labs)

    def differences(self, other: Catalogue) -> list[str]:
        """What differs from ``other``, one phrase each (for the merge refusal)."""
        mine, theirs = dict(self.labs), dict(other.labs)
        out = [f"{i} only in the first" for i in mine if i not in theirs]
        out += [f"{i} only in the other" for i in theirs if i not in mine]
        out += [f"{i} differs" for i in mine if i in theirs and mine[i] != theirs[i]]
        return out


def file_sha256(path: Path) -> str:
    """SHA-256 of a lab file's text with CRLF line ends read as LF."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def catalogue_of(labs: Sequence[tuple[str, Path]]) -> Catalogue:
    """The :class:`Catalogue` of ``(id, path)`` pairs, in the given order."""
    return Catalogue(labs=tuple((ident, file_sha256(path)) for ident, path in labs))


__all__ = ["Catalogue", "Shard", "catalogue_of", "file_sha256", "parse_shard", "shard_ids"]
