"""Decoder options: what Traccar keeps per device (model override, time zone, speed unit,
custom formats), here per device in the registry, with protocol-wide defaults from the
environment.

Users write options as ``protocol.key=value`` (``jt808.model=JC371``) or, on a device,
``key=value`` (meaning the device's own protocol).  The decoder of protocol P receives
the options for P as ``key`` (and, for the decoders that read them so, ``P.key``);
device options override the environment's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ENV = "TRACKPIPE_DECODER_OPTIONS"  # comma-separated protocol.key=value


class OptionError(ValueError):
    pass


def parse(items: Iterable[str], *, need_protocol: bool) -> dict[str, str]:
    """`KEY=VALUE` texts to a dict; a readable OptionError for anything else."""
    out: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"option {item!r} is not KEY=VALUE")
        if need_protocol and "." not in key:
            raise OptionError(f"option {item!r} must name its protocol: PROTOCOL.KEY=VALUE (e.g. jt808.model=JC371)")
        out[key] = value.strip()
    return out


def parse_env(text: str) -> dict[str, str]:
    return parse(text.split(","), need_protocol=True)


def for_protocol(protocol: str, defaults: Mapping[str, str], device: Mapping[str, str] | None) -> dict[str, str]:
    """The options the decoder of `protocol` sees for one device."""
    merged: dict[str, str] = {}
    for source in (defaults, device or {}):
        for key, value in source.items():
            head, dot, rest = key.partition(".")
            if not dot:
                merged[key] = value
            elif head == protocol:
                merged[rest] = value
    return merged | {f"{protocol}.{k}": v for k, v in merged.items()}
