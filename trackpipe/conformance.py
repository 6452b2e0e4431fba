"""`trackpipe conformance`: replay captured device traffic exactly as the edge and the
worker would, and say per record what came out and whether it is what was expected.

Input: JSON lines in the corpus format (`protocol`, `kind`, `encoding` hex|text|http,
`data`, `expected`, `decoder_config`, `decoder_args` ...).  Each record goes through:

1. detection on its bytes through the registry (unless a protocol is forced), over the
   record's transport: UDP where the protocol is UDP-only or the record is connectionless;
2. framing: raw wire captures (`kind` = frame, or multi-part captures) through the
   codec's framer; records of Traccar's *decoder* tests hold what its frame decoder hands
   on (a delimiter may be stripped), so they are one frame as they stand;
3. `inspect` of every frame (device id, checksum) as the edge does, then `decode` with a
   receive time and the record's decoder options.

The verdict per record follows the kind of check Traccar's test made (verifyPosition,
verifyAttribute ...), with the expected values where the record has them.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, ProtocolError, Record
from trackpipe.protocols.kit.keys import RECORD_FIELDS

#: Traccar decoder setters -> our option keys (others: `setFooBar` -> `fooBar`)
OPTION_NAMES = {"setModelOverride": "model"}
COORDINATE_DELTA = 1e-5  # Traccar's assertEquals delta for latitude/longitude
KINDS_WITH_POSITION = ("verifyPosition", "verifyPositions")


# ------------------------------------------------------------------ record access


def payload(record: Mapping[str, Any]) -> bytes:
    """The bytes a device sent, whatever the record's encoding."""
    if "parts" in record:
        return b"".join(payload(p) for p in record["parts"])
    if record.get("data_hex"):
        return bytes.fromhex(record["data_hex"])
    if record.get("encoding") == "hex":
        return bytes.fromhex(record["data"])
    return text_bytes(record["data"])


def text_bytes(data: str) -> bytes:
    """Text samples are byte strings in Java; a few hold characters beyond latin-1 (UTF-8 on the wire)."""
    try:
        return data.encode("latin-1")
    except UnicodeEncodeError:
        return data.encode("utf-8")


def sample_key(record: Mapping[str, Any]) -> str:
    """`Test:line:seq`, the key of a record in a protocol's known-deviation file."""
    return f"{record.get('test')}:{record.get('line')}:{record.get('seq')}"


def options_of(record: Mapping[str, Any], codec: Codec | None) -> dict[str, str]:
    """The record's decoder configuration as decoder options (text values)."""
    out: dict[str, str] = {}
    for setter, value in (record.get("decoder_config") or {}).items():
        if value is None:
            continue
        key = OPTION_NAMES.get(setter) or (setter[3:4].lower() + setter[4:] if setter.startswith("set") else setter)
        out[key] = _text(value)
    if codec is not None:
        for name, value in zip(codec.decoder_args, record.get("decoder_args") or (), strict=False):
            if name is not None and value is not None:
                out[name] = _text(value)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------ replay


@dataclass
class Outcome:
    index: int
    protocol: str
    kind: str
    detected: str | None = None
    error: str | None = None
    frames: list[bytes] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    decoded: bool = False  # every frame decoded without a protocol error
    right: bool = False
    why: str = ""  # what did not match, when not right

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "detected": self.detected,
            "error": self.error,
            "frames": [f.hex() for f in self.frames],
            "records": [record_json(r) for r in self.records],
        }


def record_json(r: Record) -> dict[str, Any]:
    return {
        "fix_time": r.fix_time.astimezone(UTC).isoformat().replace("+00:00", "Z") if r.fix_time else None,
        "valid": r.valid,
        "latitude": r.latitude,
        "longitude": r.longitude,
        "altitude": r.altitude,
        "speed": r.speed,
        "course": r.course,
        "satellites": r.satellites,
        "archive": r.archive,
        "alarms": list(r.alarms),
        "battery_level": r.battery_level,
        "battery": r.battery,
        "power": r.power,
        "ignition": r.ignition,
        "odometer": r.odometer,
        "attributes": dict(r.attributes),
    }


def transport_of(record: Mapping[str, Any], codec: Codec | None, options: Mapping[str, str]) -> str:
    if codec is not None and "tcp" not in codec.transports:
        return "udp"
    if options.get("connectionless") == "true":
        return "udp"
    return "tcp"


def _wire_capture(record: Mapping[str, Any]) -> bool:
    return record.get("kind") == "frame" or "parts" in record


def replay(
    record: Mapping[str, Any], index: int = 0, protocol: str | None = None, received_at: datetime | None = None
) -> Outcome:
    """One record through detect -> frame -> inspect -> decode, with its verdict."""
    name = record.get("protocol", "")
    out = Outcome(index, name, record.get("kind", ""))
    try:
        data = payload(record)
    except (ValueError, KeyError) as exc:
        out.error = f"unreadable record: {exc}"
        return _judge(record, out, None)
    own = registry.get(name) if registry.supported(name) else None
    forced = registry.get(protocol) if protocol else None
    options = options_of(record, forced or own)
    transport = transport_of(record, forced or own, options)
    if forced is not None:
        codec: Codec | None = forced
    else:
        verdict = registry.detect(data, transport)
        codec = verdict.codec
        if codec is None:
            out.error = "not detected: " + (
                "the bytes are a prefix of some protocol's first frame" if verdict.more else "no protocol claims them"
            )
            return _judge(record, out, own)
    assert codec is not None
    out.detected = codec.name
    options = options_of(record, codec)
    try:
        if _wire_capture(record):
            if transport == "udp":
                frames = codec.split_datagram(data)
            else:
                framer = codec.new_framer()
                framer.feed(data)
                frames = []
                while (frame := framer.next_frame()) is not None:
                    frames.append(frame)
        else:
            frames = [data]
    except ProtocolError as exc:
        out.error = f"framing: {exc.reason}: {exc}"
        return _judge(record, out, own)
    out.frames = frames
    when = received_at or datetime.now(UTC).replace(microsecond=0)
    device_id: str | None = None
    out.decoded = bool(frames)
    for frame in frames:
        try:
            info = codec.inspect(frame, transport)
            device_id = info.device_id or device_id
            decoded = codec.decode(frame, Context(transport, device_id, when, options))
        except ProtocolError as exc:
            out.decoded = False
            out.error = f"{exc.reason}: {exc}"
            continue
        device_id = decoded.device_id or device_id
        out.records.extend(decoded.records)
    return _judge(record, out, own)


# ------------------------------------------------------------------ verdicts


def _judge(record: Mapping[str, Any], out: Outcome, own: Codec | None) -> Outcome:
    if own is None or out.detected != own.name:
        out.right = False
        out.why = f"detected as {out.detected}" if out.detected else (out.error or "not detected")
        return out
    kind = out.kind
    expected = record.get("expected") or {}
    records = out.records
    positioned = [r for r in records if r.has_position]
    if kind == "frame":
        want = expected_frame(record)
        ok = want is not None and any(_same_frame(f, want) for f in out.frames)
        return _verdict(out, ok, "framer did not yield the expected frame")
    if kind == "verifyNull":
        return _verdict(out, not positioned, "decoded a position where none is expected")
    if kind == "verifyNotNull":
        return _verdict(out, bool(records), out.error or "decoded nothing")
    if kind == "verifyAttributes":
        return _verdict(out, bool(records), out.error or "decoded nothing")
    if kind == "verifyAttribute":
        if not records:
            return _verdict(out, False, out.error or "decoded nothing")
        key = expected.get("key", "")
        got = attribute(records[0], key)
        return _verdict(out, same_value(got, expected.get("value")), f"{key}: {got!r} != {expected.get('value')!r}")
    if kind in KINDS_WITH_POSITION:
        check_location = record.get("check_location", True)
        pool = positioned if check_location else records
        if not pool:
            return _verdict(out, False, out.error or "no position decoded")
        if expected:
            why = position_mismatch(pool[0], expected)
            return _verdict(out, why is None, why or "")
        return _verdict(out, True, "")
    return _verdict(out, bool(records) or out.decoded, out.error or "decoded nothing")


def _verdict(out: Outcome, ok: bool, why: str) -> Outcome:
    out.right = ok
    out.why = "" if ok else why
    return out


def expected_frame(record: Mapping[str, Any]) -> bytes | None:
    exp = record.get("expected") or {}
    if "frame" not in exp:
        return None
    return bytes.fromhex(exp["frame"]) if exp.get("frame_encoding") == "hex" else text_bytes(exp["frame"])


def _same_frame(ours: bytes, want: bytes) -> bool:
    """Equal, or ours is the expected frame with its delimiters kept (Traccar strips them)."""
    if ours == want:
        return True
    i = ours.find(want)
    return i >= 0 and len(ours) - len(want) <= 4


def attribute(record: Record, key: str) -> Any:
    if key == "alarm":
        return ",".join(record.alarms) or None
    if key in RECORD_FIELDS:
        return getattr(record, RECORD_FIELDS[key])
    return record.attributes.get(key)


def same_value(got: Any, want: Any) -> bool:
    if got is None:
        return want is None
    if isinstance(want, bool):
        return got is want or str(got).lower() == str(want).lower()
    if isinstance(want, (int, float)):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return False
        return math.isclose(value, float(want), rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(want, str) and isinstance(got, str) and "," in want:
        return sorted(want.split(",")) == sorted(got.split(","))
    return str(got) == str(want)


def position_mismatch(r: Record, expected: Mapping[str, Any]) -> str | None:
    if "time" in expected:
        want = datetime.fromisoformat(expected["time"]).replace(tzinfo=UTC)
        if r.fix_time is None or abs((r.fix_time - want).total_seconds()) > 0.001:
            return f"time {r.fix_time and r.fix_time.isoformat()} != {want.isoformat()}"
    if "valid" in expected and r.valid is not expected["valid"]:
        return f"valid {r.valid} != {expected['valid']}"
    for key, got in (("lat", r.latitude), ("lon", r.longitude)):
        if key in expected and (got is None or abs(got - expected[key]) > COORDINATE_DELTA):
            return f"{key} {got} != {expected[key]}"
    return None


# ------------------------------------------------------------------ known deviations


def known(protocol: str) -> dict[str, str]:
    """`Test:line:seq` -> reason: the documented deviations of one protocol
    (`trackpipe/protocols/known/<name>.toml`; malformed captures, vendor extensions)."""
    codec = registry.get(protocol) if registry.supported(protocol) else None
    if codec is None:
        return {}
    spot = resources.files("trackpipe.protocols").joinpath("known", f"{codec.name}.toml")
    if not spot.is_file():
        return {}
    table = tomllib.loads(spot.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in table.get(protocol, table.get(codec.name, {})).items()}


# ------------------------------------------------------------------ the command


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON record ({exc.msg})") from None


@dataclass
class Row:
    records: int = 0
    detected: int = 0
    decoded: int = 0
    right: int = 0
    known: int = 0


def table(outcomes: Iterable[tuple[Outcome, bool]]) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for out, is_known in outcomes:
        row = rows.setdefault(out.protocol, Row())
        row.records += 1
        row.detected += out.detected is not None and registry.supported(out.protocol)
        row.decoded += out.decoded
        row.right += out.right
        row.known += is_known and not out.right
    return rows


def format_table(rows: Mapping[str, Row], supported_only: bool) -> list[str]:
    lines = [f"{'protocol':<14} {'records':>7} {'detected':>8} {'decoded':>7} {'right':>6} {'%':>6} {'known':>5}"]
    total = Row()
    for name in sorted(rows):
        row = rows[name]
        if supported_only and not registry.supported(name):
            continue
        lines.append(
            f"{name:<14} {row.records:>7} {row.detected:>8} {row.decoded:>7} {row.right:>6}"
            f" {100 * row.right / row.records:>5.1f}% {row.known:>5}"
        )
        for attr in ("records", "detected", "decoded", "right", "known"):
            setattr(total, attr, getattr(total, attr) + getattr(row, attr))
    if total.records:
        lines.append(
            f"{'total':<14} {total.records:>7} {total.detected:>8} {total.decoded:>7} {total.right:>6}"
            f" {100 * total.right / total.records:>5.1f}% {total.known:>5}"
        )
    return lines


def run(
    path: Path, protocol: str | None, json_out: Path | None, show_all: bool = False, failures: bool = False
) -> list[str]:
    """The conformance table (lines) for a JSONL file; per-record JSON to `json_out`; with
    `failures`, one line per record of a supported protocol that is not right, saying why."""
    if protocol is not None and not registry.supported(protocol):
        raise ValueError(f"unknown protocol {protocol!r} (see `trackpipe protocols`)")
    outcomes: list[tuple[Outcome, bool]] = []
    failed: list[str] = []
    foreign_claims = 0
    sink = json_out.open("w", encoding="utf-8") if json_out else None
    try:
        for i, record in enumerate(read_records(path)):
            if protocol is not None and record.get("protocol") != protocol and not _alias_of(record, protocol):
                continue
            out = replay(record, i, protocol)
            if sink:
                sink.write(json.dumps(out.as_json()) + "\n")
            if not registry.supported(out.protocol):
                foreign_claims += out.detected is not None
            is_known = sample_key(record) in known(out.protocol)
            outcomes.append((out, is_known))
            if failures and not out.right and registry.supported(out.protocol):
                note = " (known)" if is_known else ""
                failed.append(f"#{i} {out.protocol} {sample_key(record)} {out.kind}{note}: {out.why}")
    finally:
        if sink:
            sink.close()
    rows = table(outcomes)
    lines = failed + format_table(rows, supported_only=not show_all)
    others = sum(r.records for n, r in rows.items() if not registry.supported(n))
    if protocol is None:
        lines.append(f"other protocols' records: {others}, claimed by one of ours: {foreign_claims}")
    return lines


def _alias_of(record: Mapping[str, Any], protocol: str) -> bool:
    name = record.get("protocol", "")
    return registry.supported(name) and registry.get(name) is registry.get(protocol)
