"""Geofences as the compacted `tracker.geofences` topic holds them, and the CLI's view of them.

One record per fence, keyed by its name (UTF-8); a null value (tombstone) removes the fence.
The value is JSON (not Avro): `streams.geofence.to_json`'s object (`id` = the name, `name`,
`shape`) plus `devices` (the device ids the fence applies to; empty: every device) and
`updated_at` (ISO time).  `streams.geofence.from_json` reads the shape part of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from trackpipe.streams.geofence import Circle, Geofence, from_json, shape_to_dict

from .devices import read_compacted


@dataclass(frozen=True, slots=True)
class FenceRecord:
    """One fence of the topic: the shape and the devices it applies to (empty: all)."""

    fence: Geofence
    devices: frozenset[str] = frozenset()
    updated_at: str = ""

    def applies_to(self, device_id: str) -> bool:
        return not self.devices or device_id in self.devices


def parse_devices(text: str | None) -> frozenset[str]:
    """`--devices ID,ID,...` -> the ids (blank items dropped); None or blank: every device."""
    return frozenset(item.strip() for item in (text or "").split(",") if item.strip())


def encode_record(record: FenceRecord) -> bytes:
    fence = record.fence
    return orjson.dumps(
        {
            "id": fence.id,
            "name": fence.name,
            "shape": shape_to_dict(fence.shape),
            "devices": sorted(record.devices),
            "updated_at": record.updated_at,
        }
    )


def decode_record(data: bytes) -> FenceRecord:
    """ValueError (with the reason) for a value that is not a fence record."""
    fence = from_json(data)
    obj = orjson.loads(data)
    devices = obj.get("devices") or []
    if not isinstance(devices, list) or not all(isinstance(d, str) and d for d in devices):
        raise ValueError(f"geofence {fence.id!r}: devices must be a list of device ids, got {devices!r}")
    updated = obj.get("updated_at") or ""
    return FenceRecord(fence, frozenset(devices), str(updated))


def new_record(name: str, shape: Any, devices: Iterable[str], now: datetime) -> FenceRecord:
    """The record `geofences add` writes (ValueError for an empty name)."""
    name = name.strip()
    if not name:
        raise ValueError("geofence name must not be empty")
    return FenceRecord(Geofence(name, name, shape), frozenset(devices), now.isoformat())


async def read_geofences(bootstrap: str, topic: str) -> dict[str, FenceRecord]:
    """Every fence the compacted topic holds now, by name (tombstoned ones left out)."""
    return await read_compacted(bootstrap, topic, decode_record, "geofence")


LIST_COLUMNS = ["name", "type", "shape", "devices", "updated_at"]


def describe_shape(fence: Geofence) -> tuple[str, str]:
    shape = fence.shape
    if isinstance(shape, Circle):
        return "circle", f"{shape.latitude:g},{shape.longitude:g} r={shape.radius_m:g} m"
    return "polygon", ", ".join(f"{lat:g} {lon:g}" for lat, lon in shape.vertices)


def list_row(record: FenceRecord) -> list[str]:
    kind, shape = describe_shape(record.fence)
    return [record.fence.name, kind, shape, ",".join(sorted(record.devices)) or "(all)", record.updated_at or "-"]


def json_view(record: FenceRecord) -> dict[str, Any]:
    return {
        "name": record.fence.name,
        "shape": shape_to_dict(record.fence.shape),
        "devices": sorted(record.devices),
        "updated_at": record.updated_at,
    }
