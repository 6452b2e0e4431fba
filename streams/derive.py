"""Derived events for the worker, pure: the glue between `streams.rules` and `streams.app`.

* `base_settings` / `settings_for`: the deployment's rule defaults (TRACKPIPE_OFFLINE_AFTER ...),
  a device's registry entry (`speed_limit`, `offline_after`) over them, and the geofences that
  apply to the device.
* `derive`: a batch's positions through `rules.on_position`, per device in fix-time order, then
  its latest contact through `rules.on_contact` (a heartbeat-only device goes online too).
* `tick`: `rules.on_tick` over devices (the offline timer).
* `StateBook`: states computed but not committed yet.  A state is written to the Faust table
  (its changelog) only once the events it raised are stored, so a crash in between re-derives
  the same events from the re-delivered frames (and their rows collapse) instead of losing them;
  meanwhile the next batch reads the newest state from the book.
* `with_key`: the `key` field of an event row: what tells apart events of one type at one time
  (the geofence id for geofence events), part of the `events` table's sorting key.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from .geofence import Geofence
from .rules import DeviceState, Event, RuleSettings, on_rows, on_tick


class RuleDefaults(Protocol):
    """What `base_settings` reads (trackpipe.config.Settings has it)."""

    offline_after: float
    speed_limit: float
    overspeed_duration: float
    motion_speed: float
    trip_distance: float
    trip_duration: float
    parking_duration: float
    unregistered: str  # store | flag | reject


class Fence(Protocol):
    """A fence with the devices it applies to (trackpipe.geofences.FenceRecord)."""

    fence: Geofence

    def applies_to(self, device_id: str) -> bool: ...


def base_settings(config: RuleDefaults) -> RuleSettings:
    """The deployment's defaults as RuleSettings (ValueError for an impossible value)."""
    return RuleSettings(
        speed_limit_kmh=config.speed_limit if config.speed_limit > 0 else None,
        overspeed_min_duration=timedelta(seconds=config.overspeed_duration),
        offline_timeout=timedelta(seconds=config.offline_after),
        motion_speed_kmh=config.motion_speed,
        min_trip_distance_m=config.trip_distance,
        min_trip_duration=timedelta(seconds=config.trip_duration),
        min_parking_duration=timedelta(seconds=config.parking_duration),
        flag_unknown=config.unregistered == "flag",
    )


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return float(value)


def settings_for(
    base: RuleSettings, device_id: str, entry: Mapping[str, Any] | None, fences: Iterable[Fence]
) -> RuleSettings:
    """`base` with the device's own speed limit / offline timeout (registry entry, if set) and
    the fences that apply to it."""
    entry = entry or {}
    limit = _positive(entry.get("speed_limit"))
    after = _positive(entry.get("offline_after"))
    own = tuple(f.fence for f in fences if f.applies_to(device_id))
    if limit is None and after is None and own == base.geofences:  # most devices: the defaults as they are
        return base
    return replace(
        base,
        speed_limit_kmh=limit if limit is not None else base.speed_limit_kmh,
        offline_timeout=timedelta(seconds=after) if after is not None else base.offline_timeout,
        geofences=own,
    )


def with_key(event: Event) -> Event:
    """The event with its `key` set ('' unless a geofence event: the geofence id)."""
    if event.get("key") is None:
        attributes = event.get("attributes") or {}
        event["key"] = str(attributes.get("geofenceId", "")) if event["type"].startswith("geofence") else ""
    return event


@dataclass(slots=True)
class Derived:
    """What a batch's positions raise: new states by device, events (each with the position
    row it came from), and rows the rules could not read."""

    states: dict[str, DeviceState] = field(default_factory=dict)
    events: list[tuple[Event, Mapping[str, Any]]] = field(default_factory=list)
    failures: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)


def _fix_order(row: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return row["fix_time"], row["server_time"]


def derive(
    positions: Iterable[Mapping[str, Any]],
    state_of: Callable[[str], DeviceState | None],
    settings_of: Callable[[str], RuleSettings],
    contacts: Iterable[Mapping[str, Any]] = (),
) -> Derived:
    """Every position through the rules, per device in fix-time order (then arrival order); then
    the device's latest contact of the batch (`device_status` rows: heartbeats count for online)."""
    out = Derived()
    by_device: dict[str, list[Mapping[str, Any]]] = {}
    last_contact: dict[str, Mapping[str, Any]] = {}
    for row in positions:
        device_id = row.get("device_id")
        if not isinstance(device_id, str) or not device_id:
            out.failures.append((row, f"position device_id must be a non-empty string, got {device_id!r}"))
            continue
        by_device.setdefault(device_id, []).append(row)
    for row in contacts:
        device_id = row.get("device_id")
        if isinstance(device_id, str) and device_id:  # a status row always has one (process makes it so)
            last_contact[device_id] = row
            by_device.setdefault(device_id, [])
    for device_id, rows in by_device.items():
        try:
            rows.sort(key=_fix_order)
        except (KeyError, TypeError):  # a row without comparable times: the rules tell which
            pass
        state, events, failures = on_rows(
            state_of(device_id), rows, last_contact.get(device_id), settings_of(device_id)
        )
        out.events += [(with_key(event), row) for event, row in events]
        out.failures += failures
        if state is not None:
            out.states[device_id] = state
    return out


def tick(
    states: Iterable[tuple[str, DeviceState]], now: datetime, settings_of: Callable[[str], RuleSettings]
) -> tuple[dict[str, DeviceState], list[Event]]:
    """The offline timer over `states`: the states that changed and their events."""
    changed: dict[str, DeviceState] = {}
    events: list[Event] = []
    for device_id, state in states:
        if not state.online:
            continue
        new, raised = on_tick(state, now, settings_of(device_id))
        if raised:
            changed[device_id] = new
            events += [with_key(event) for event in raised]
    return changed, events


Ticket = dict[str, tuple[int, DeviceState]]


class StateBook:
    """Device states staged (computed, their events not stored yet) over the committed ones.

    `stage` returns a ticket; `commit(ticket, write)` writes each state of the ticket unless a
    later-staged state of that device was committed already (commits may finish out of order:
    the timer's and decode's), and forgets a staged state once it is the one committed."""

    def __init__(self, load: Callable[[str], DeviceState | None]) -> None:
        self._load = load
        self._staged: Ticket = {}
        self._committed: dict[str, int] = {}
        self._seq = itertools.count(1)

    def get(self, device_id: str) -> DeviceState | None:
        staged = self._staged.get(device_id)
        return staged[1] if staged is not None else self._load(device_id)

    def staged_ids(self) -> set[str]:
        return set(self._staged)

    def stage(self, states: Mapping[str, DeviceState]) -> Ticket:
        ticket = {device_id: (next(self._seq), state) for device_id, state in states.items()}
        self._staged.update(ticket)
        return ticket

    def commit(self, ticket: Ticket, write: Callable[[str, DeviceState], None]) -> None:
        for device_id, (seq, state) in ticket.items():
            if seq > self._committed.get(device_id, 0):
                write(device_id, state)
                self._committed[device_id] = seq
            staged = self._staged.get(device_id)
            if staged is not None and staged[0] <= seq:
                del self._staged[device_id]

    def drop(self) -> None:
        """Forget what is staged (a rebalance: the committed table is the truth again)."""
        self._staged.clear()
        self._committed.clear()
