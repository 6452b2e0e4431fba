"""Ordered protocol detection over the first bytes of a connection or datagram.

Most specific signatures first (PROTOCOLS.md section 4): Teltonika's 17-byte IMEI
login, the `78 78`/`79 79` GT06 family, `7E` JT808, then the `*` text protocols
(Carscop's `*` + 12 digits + `U` before H02's `*XX,`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import carscop, gt06, h02, jt808, teltonika
from .base import Codec, Detection

CODECS: tuple[Codec, ...] = (teltonika.CODEC, gt06.CODEC, jt808.CODEC, carscop.CODEC, h02.CODEC)
BY_NAME: dict[str, Codec] = {c.name: c for c in CODECS}


@dataclass(frozen=True, slots=True)
class Verdict:
    codec: Codec | None  # the protocol, when decided
    more: bool  # no decision yet: some protocol needs more bytes

    @property
    def unknown(self) -> bool:
        return self.codec is None and not self.more


def detect(head: bytes, transport: str, codecs: Iterable[Codec] = CODECS) -> Verdict:
    """First YES wins; otherwise MORE if any codec could still match; otherwise unknown.
    For UDP a datagram is complete, so MORE means unknown."""
    more = False
    for codec in codecs:
        if transport not in codec.transports:
            continue
        verdict = codec.detect(head, transport)
        if verdict is Detection.YES:
            return Verdict(codec, False)
        if verdict is Detection.MORE:
            more = True
    return Verdict(None, more and transport == "tcp")


def get(name: str) -> Codec:
    return BY_NAME[name]
