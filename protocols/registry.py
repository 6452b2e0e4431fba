"""Protocol detection over the first bytes of a connection or datagram.

Every module of this package that defines ``CODEC`` is a protocol: the registry imports
them all (no hand-kept list) and indexes each codec under the bytes its first frame can
start with (`Codec.first_bytes`), so detection asks only the few codecs filed under the
first byte, whatever the number of protocols.  On TCP a second level narrows that by the
first two bytes: a codec that answers NO to a two-byte head can never match a longer head
that starts with it (a TCP first segment may be that short, so every codec must answer
MORE, not NO, to a prefix of its first frame; `tests/test_detection_corpus.py` holds them
to it), and is not asked.  Codecs sharing the bytes are asked in `Codec.priority` order
(the more specific signature first, PROTOCOLS.md sections 4 and 7d); the first YES wins.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass

from .base import Codec, Detection

#: modules of this package that are not protocols
_NOT_PROTOCOLS = frozenset({"base", "registry", "kit", "devices", "known"})


def _discover() -> tuple[Codec, ...]:
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if info.name in _NOT_PROTOCOLS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        codec = getattr(module, "CODEC", None)
        if isinstance(codec, Codec):
            found.append(codec)
    return tuple(sorted(found, key=lambda c: (c.priority, c.name)))


CODECS: tuple[Codec, ...] = _discover()
BY_NAME: dict[str, Codec] = {c.name: c for c in CODECS}
ALIASES: dict[str, Codec] = {alias: c for c in CODECS for alias in c.aliases}


def index(codecs: Iterable[Codec]) -> dict[int, tuple[Codec, ...]]:
    """First byte -> the codecs filed under it, in priority order."""
    ordered = sorted(codecs, key=lambda c: (c.priority, c.name))
    return {byte: tuple(c for c in ordered if byte in c.first_bytes) for byte in range(256)}


_BY_FIRST = index(CODECS)
_BY_TWO: dict[bytes, tuple[Codec, ...]] = {}  # filled on demand: at most 65,536 short tuples


def _tcp_candidates(head: bytes) -> tuple[Codec, ...]:
    two = head[:2]
    found = _BY_TWO.get(two)
    if found is None:
        found = tuple(
            c for c in _BY_FIRST[two[0]] if "tcp" in c.transports and c.detect(two, "tcp") is not Detection.NO
        )
        _BY_TWO[two] = found
    return found


@dataclass(frozen=True, slots=True)
class Verdict:
    codec: Codec | None  # the protocol, when decided
    more: bool  # no decision yet: some protocol needs more bytes

    @property
    def unknown(self) -> bool:
        return self.codec is None and not self.more


def candidates(
    head: bytes, by_first: dict[int, tuple[Codec, ...]] | None = None, transport: str | None = None
) -> tuple[Codec, ...]:
    """The codecs asked about `head`: those filed under its first byte (all of them for an
    empty head), narrowed by the first two bytes on TCP."""
    if not head:
        return CODECS
    if transport == "tcp" and len(head) >= 2 and by_first is None:
        return _tcp_candidates(head)
    return (by_first or _BY_FIRST)[head[0]]


def detect(
    head: bytes,
    transport: str,
    codecs: Iterable[Codec] | None = None,
    by_first: dict[int, tuple[Codec, ...]] | None = None,
) -> Verdict:
    """First YES wins; otherwise MORE if any codec could still match; otherwise unknown.
    For UDP a datagram is complete, so MORE means unknown.  `codecs` asks exactly those
    (in that order); `by_first` is another index (`index(...)`, e.g. for a benchmark)."""
    if not head:
        return Verdict(None, transport == "tcp")
    more = False
    for codec in candidates(head, by_first, transport) if codecs is None else codecs:
        if transport not in codec.transports:
            continue
        verdict = codec.detect(head, transport)
        if verdict is Detection.YES:
            return Verdict(codec, False)
        if verdict is Detection.MORE:
            more = True
    return Verdict(None, more and transport == "tcp")


def get(name: str) -> Codec:
    """A codec by its name or one of its aliases (KeyError otherwise)."""
    codec = BY_NAME.get(name) or ALIASES.get(name)
    if codec is None:
        raise KeyError(name)
    return codec


def supported(name: str) -> bool:
    return name in BY_NAME or name in ALIASES
