"""The decode step as a pure function: one `tracker.raw` record in; the positions,
events, dead letters and status it yields out.  No Kafka, no Faust, no clock —
the agents in `trackpipe.streams.app` are thin loops around `process`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trackpipe.protocols import registry
from trackpipe.protocols.base import Context, ProtocolError, Record

from trackpipe import options as decoder_options

from .quality import (
    DEFAULT_FILTERS,
    INVALID_RECORD,
    Filters,
    coordinate_problem,
    is_text,
    record_problem,
    time_problem,
)

#: device registry lookup: device id -> {"name": ..., "account": ...} or None
Lookup = Callable[[str], Mapping[str, Any] | None]


@dataclass(slots=True)
class Output:
    positions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None


def deadletter(
    raw: Mapping[str, Any], reason: str, detail: str, device_id: str | None = None, stage: str = "decode"
) -> dict[str, Any]:
    """A dead letter for the frame in `raw`; stage: decode | filter (position quality) | store."""
    return {
        "time": raw["received_at"],
        "reason": reason,
        "detail": detail,
        "stage": stage,
        "protocol": raw.get("protocol"),
        "transport": raw["transport"],
        "peer": f"{raw['peer_host']}:{raw['peer_port']}",
        "local_port": raw["local_port"],
        "device_id": device_id or raw.get("device_id"),
        "edge_id": raw["edge_id"],
        "connection_id": raw["connection_id"],
        "raw": raw["frame"],
    }


def _filtered(raw: Mapping[str, Any], rec: Record, device_id: str, reason: str) -> dict[str, Any]:
    when = rec.fix_time.isoformat() if rec.fix_time else "none"
    detail = f"lat={rec.latitude} lon={rec.longitude} fix_time={when} valid={rec.valid}"
    return deadletter(raw, reason, detail, device_id, stage="filter")


def process(
    raw: Mapping[str, Any],
    lookup: Lookup,
    *,
    late_after: timedelta = timedelta(minutes=10),
    options: Mapping[str, str] | None = None,
    filters: Filters = DEFAULT_FILTERS,
) -> Output:
    """`options`: protocol-wide decoder defaults (`protocol.key` -> value); the device's own
    registry options override them (`trackpipe.options.for_protocol`).  `filters`: which fixes
    are refused as positions (`streams.quality`); a refused fix is a dead letter (stage "filter").

    Every row is built as one dict literal (no merging), every check runs once per record, and
    the registry is asked once per device per frame: this runs for every frame the worker takes."""
    out = Output()
    received: datetime = raw["received_at"]
    try:
        codec = registry.get(raw["protocol"])
    except KeyError:
        out.deadletters.append(deadletter(raw, "unknown protocol", f"no decoder named {raw['protocol']!r}"))
        return out
    entries: dict[str, Mapping[str, Any] | None] = {}  # one registry lookup per device per frame

    known_device = raw.get("device_id")
    device_options = None
    if known_device:
        entries[known_device] = known_entry = lookup(known_device)
        device_options = (known_entry or {}).get("options")
    merged = (
        decoder_options.for_protocol(codec.name, options or {}, device_options) if options or device_options else {}
    )
    ctx = Context(transport=raw["transport"], device_id=known_device, received_at=received, options=merged)
    try:
        decoded = codec.decode(raw["frame"], ctx)
    except ProtocolError as exc:
        out.deadletters.append(deadletter(raw, exc.reason, exc.detail or str(exc)))
        return out
    except Exception as exc:  # a decoder bug must not stop the stream: keep the bytes and the reason
        out.deadletters.append(deadletter(raw, "decoder failure", f"{type(exc).__name__}: {exc}"))
        return out

    if decoded.device_id is not None and not is_text(decoded.device_id):  # a decoder bug: no topic takes it
        out.deadletters.append(deadletter(raw, INVALID_RECORD, f"device id {decoded.device_id!r:.80}"))
        return out
    frame_device = decoded.device_id or known_device
    protocol = codec.name
    transport = raw["transport"]
    identities: dict[str, tuple[str, str, bool]] = {}

    def identity(device_id: str) -> tuple[str, str, bool]:
        """(device_name, account, registered) of a device, from its registry entry."""
        who = identities.get(device_id)
        if who is None:
            device = entries[device_id] if device_id in entries else entries.setdefault(device_id, lookup(device_id))
            who = identities[device_id] = (
                (device.get("name", ""), device.get("account", ""), True) if device else ("", "", False)
            )
        return who

    battery_level = power = ignition = None  # the frame's latest status values, for device_status
    for rec in decoded.records:
        if (problem := record_problem(rec)) is not None:  # a value no topic or table can hold
            out.deadletters.append(deadletter(raw, INVALID_RECORD, problem))
            continue
        device_id = rec.device_id or frame_device
        if not device_id:
            out.deadletters.append(deadletter(raw, "unidentified", f"{decoded.kind} frame with no known device id"))
            continue
        name, account, registered = identity(device_id)
        if rec.battery_level is not None:
            battery_level = rec.battery_level
        if rec.power is not None:
            power = rec.power
        if rec.ignition is not None:
            ignition = rec.ignition
        fix_time = rec.fix_time
        bad_time = None if fix_time is None else time_problem(fix_time, received, filters)
        when = received if bad_time is not None or fix_time is None else fix_time
        archive = rec.archive or (received - when > late_after)
        latitude, longitude = rec.latitude, rec.longitude
        stored_position = latitude is not None and longitude is not None
        if stored_position:
            problem = coordinate_problem(latitude, longitude, rec.valid, filters) or bad_time  # type: ignore[arg-type]
            if problem is not None:
                out.deadletters.append(_filtered(raw, rec, device_id, problem))
                stored_position = False
        if stored_position:
            attributes = dict(rec.attributes)
            if fix_time is None:
                attributes["timeSource"] = "server"
            out.positions.append(
                {
                    "protocol": protocol,
                    "server_time": received,
                    "transport": transport,
                    "edge_id": raw["edge_id"],
                    "connection_id": raw["connection_id"],
                    "device_name": name,
                    "account": account,
                    "registered": registered,
                    "device_id": device_id,
                    "fix_time": when,
                    "valid": rec.valid,
                    "latitude": latitude,
                    "longitude": longitude,
                    "altitude": rec.altitude,
                    "speed": rec.speed,
                    "course": rec.course,
                    "satellites": rec.satellites,
                    "archive": archive,
                    "alarms": list(rec.alarms),
                    "battery_level": rec.battery_level,
                    "battery": rec.battery,
                    "power": rec.power,
                    "ignition": rec.ignition,
                    "odometer": rec.odometer,
                    "attributes": attributes,
                }
            )
        for alarm in rec.alarms:
            out.events.append(
                {
                    "device_name": name,
                    "account": account,
                    "registered": registered,
                    "device_id": device_id,
                    "protocol": protocol,
                    "time": when,
                    "server_time": received,
                    "type": "alarm",
                    "alarm": alarm,
                    "latitude": latitude if stored_position else None,
                    "longitude": longitude if stored_position else None,
                    "archive": archive,
                    "attributes": {k: v for k, v in rec.attributes.items() if k in _EVENT_ATTRIBUTES},
                }
            )
    if frame_device:
        name, account, registered = identity(frame_device)
        out.status = {
            "device_name": name,
            "account": account,
            "registered": registered,
            "device_id": frame_device,
            "protocol": protocol,
            "last_seen": received,
            "kind": decoded.kind,
            "transport": transport,
            "peer": f"{raw['peer_host']}:{raw['peer_port']}",
            "battery_level": battery_level,
            "power": power,
            "ignition": ignition,
        }
    return out


#: the record attributes an alarm event carries
_EVENT_ATTRIBUTES = frozenset(("alarmText", "status", "event"))


@dataclass(slots=True)
class Batch:
    """What a batch of raw frames yields, gathered for one publish and one INSERT per table."""

    positions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    deadletters: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)  # (key, letter)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)  # one row per device: its latest contact
    sources: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # id(row) -> the raw frame it came from
    frames: list[dict[str, Any]] = field(default_factory=list)  # raw_frames rows: every frame, decoded or not

    def add(self, raw: Mapping[str, Any], out: Output, key: bytes) -> None:
        row = frame_row(raw, out)
        self.frames.append(row)
        sources = self.sources
        sources[id(row)] = raw
        if out.positions:
            self.positions += out.positions
            for row in out.positions:
                sources[id(row)] = raw
        if out.events:
            self.events += out.events
            for row in out.events:
                sources[id(row)] = raw
        if out.deadletters:
            self.deadletters += [(key, letter) for letter in out.deadletters]
        if out.status is not None:
            self.status[out.status["device_id"]] = out.status
            sources[id(out.status)] = raw

    def merge(self, other: Batch) -> None:
        """`other`'s rows after this batch's (one store batch gathered from several decoded ones)."""
        self.positions += other.positions
        self.events += other.events
        self.deadletters += other.deadletters
        self.status.update(other.status)  # a device's latest contact wins
        self.sources.update(other.sources)
        self.frames += other.frames

    def tables(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(ClickHouse table, rows) in INSERT order."""
        return [
            ("raw_frames", self.frames),
            ("positions", self.positions),
            ("events", self.events),
            ("device_status", list(self.status.values())),
        ]


def frame_device(raw: Mapping[str, Any], out: Output) -> str:
    """The device a frame's rows went to: its own or its connection's id, else its first row's."""
    if out.status is not None:
        return str(out.status["device_id"])
    for row in out.positions or out.events:
        return str(row["device_id"])
    return raw.get("device_id") or ""


def frame_row(raw: Mapping[str, Any], out: Output) -> dict[str, Any]:
    """The `raw_frames` row of a consumed frame (what `trackpipe replay` re-decodes)."""
    return {
        "received_at": raw["received_at"],
        "device_id": frame_device(raw, out),
        "protocol": raw["protocol"],
        "kind": raw["kind"],
        "transport": raw["transport"],
        "peer_host": raw["peer_host"],
        "peer_port": raw["peer_port"],
        "local_port": raw["local_port"],
        "edge_id": raw["edge_id"],
        "connection_id": raw["connection_id"],
        "seq": raw["seq"],
        "frame": raw["frame"],
    }
