"""Derived events per device, as pure functions: `(state, position) -> (state, events)`.

No Kafka, no Faust, no clock: the caller keeps one `DeviceState` per device (a Faust Table
value: `to_bytes` / `from_bytes`), feeds every normalized position row (`streams.process`,
`schemas/position.avsc`: degrees, km/h, UTC) to `on_position`, and calls `on_tick` from a timer
so a silent device goes offline without waiting for its next frame.  Event dicts have exactly
the keys of `schemas/event.avsc`; `type` is Traccar's event name, `alarm` is "" (these are not
alarms a device reported), `attributes` say what triggered the event (`trigger` plus details),
and `key` is the geofence id for geofence events ('' for the others).

Semantics (Traccar's, learnt from its event handlers; tested in tests/streams/test_rules.py):

* deviceOnline / deviceOffline follow the **arrival** clock (`server_time`): the first frame
  ever, or the first after the device went offline, is deviceOnline (archive points count: a
  device uploading its buffer is connected).  deviceOffline comes from `on_tick(now)` once no
  frame arrived for `offline_timeout`, or from the next frame if no tick saw the gap; its time is
  the moment the timeout elapsed (last arrival + timeout).  A re-delivered frame (arrival not
  after the last one) changes nothing.
* Every other transition follows the **fix** clock: a point whose `fix_time` is not after the
  state's last fix (re-sent, or a buffered point uploaded after newer live ones) raises nothing
  and changes no state.  Archive points that are in order do raise events, flagged `archive`.
  A fix the device marks invalid (`valid` false) only counts for ignition: its place and speed
  are not trusted for motion, overspeed or geofences.
* Motion: a fix is moving when `speed > motion_speed_kmh`.  A change of that state is only a
  candidate until confirmed: moving after `min_trip_duration` or `min_trip_distance_m` of
  travel since it started, stopped after `min_parking_duration` (or at once on ignition off when
  `stop_on_ignition_off`).  A candidate that flips back before confirmation is dropped, so a
  traffic light does not make deviceStopped + deviceMoving.  deviceMoving/deviceStopped carry
  the time and place the candidate started.  A moving device silent for `no_data_duration`
  (by fix time) gets deviceStopped at its last fix.
* deviceOverspeed: speed above the limit (`speedLimit` attribute of the position if positive,
  else `speed_limit_kmh`; times `overspeed_multiplier`) continuously for
  `overspeed_min_duration`; one event per episode, re-armed once the speed is back at or under
  the limit.  A fix without speed changes nothing.
* ignitionOn / ignitionOff: the position's `ignition` field (or attribute "true"/"false")
  differs from the last known value; the first value ever known raises nothing.
* geofenceEnter / geofenceExit: the set of `settings.geofences` containing the fix changed
  (exits first).  **Jump-over**: if the straight hop from the previous fix to this one crosses
  a fence while both fixes are outside it (`segment_crossing`, on by default), we emit
  geofenceEnter then geofenceExit, both at this fix, with `trigger: "segment"` and the previous
  fix in attributes.  (Traccar emits nothing by default, or one `geofenceCrossed` when
  `event.geofence.segmentCrossing` is set; a pair lets consumers that only know enter/exit
  count the visit.)  A fence removed from the settings is forgotten without an exit event.

Order of events for one position: deviceOffline (missed timeout), deviceOnline, deviceStopped
(no data), ignitionOn/Off, deviceMoving/Stopped, deviceOverspeed, geofenceExit, geofenceEnter,
jump-over pairs (geofences sorted by id).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import orjson

from .geofence import Geofence, contains, distance_m, json_object, segment_crosses

Event = dict[str, Any]

STATE_VERSION = 1
_TIME_FIELDS = frozenset({"last_seen", "fix_time", "motion_since", "overspeed_since"})


class RuleInputError(ValueError):
    """A position row the rules cannot use (missing or ill-typed field): dead-letter it."""


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Per-device settings (defaults: Traccar's `status.timeout`, `report.trip.*`,
    `event.motion.speedThreshold` = 0.01 kn)."""

    speed_limit_kmh: float | None = None  # None or <= 0: no overspeed (unless a position carries speedLimit)
    overspeed_min_duration: timedelta = timedelta(0)
    overspeed_multiplier: float = 1.0
    offline_timeout: timedelta = timedelta(minutes=10)
    motion_speed_kmh: float = 0.01 * 1.852
    min_trip_distance_m: float = 500.0
    min_trip_duration: timedelta = timedelta(minutes=5)
    min_parking_duration: timedelta = timedelta(minutes=5)
    no_data_duration: timedelta = timedelta(hours=1)
    stop_on_ignition_off: bool = False  # Traccar report.trip.useIgnition
    geofences: tuple[Geofence, ...] = ()
    segment_crossing: bool = True  # jump-over a fence between two fixes: enter + exit
    flag_unknown: bool = False  # deviceUnknown with the deviceOnline of an unregistered device (policy "flag")

    def __post_init__(self) -> None:
        for name in ("overspeed_min_duration", "offline_timeout", "min_trip_duration", "min_parking_duration"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ValueError(f"{name} must be a timedelta >= 0, got {value!r}")
        if not isinstance(self.no_data_duration, timedelta) or self.no_data_duration <= timedelta(0):
            raise ValueError(f"no_data_duration must be a timedelta > 0, got {self.no_data_duration!r}")
        if self.offline_timeout <= timedelta(0):
            raise ValueError("offline_timeout must be > 0")
        if self.overspeed_multiplier <= 0:
            raise ValueError(f"overspeed_multiplier must be > 0, got {self.overspeed_multiplier}")
        ids = [fence.id for fence in self.geofences]
        if len(set(ids)) != len(ids):
            raise ValueError(f"geofence ids must be unique, got {ids}")
        object.__setattr__(self, "geofences", tuple(sorted(self.geofences, key=lambda fence: fence.id)))


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the rules remember about one device between positions."""

    device_id: str = ""
    protocol: str = ""
    device_name: str = ""
    account: str = ""
    registered: bool = False
    online: bool = False
    last_seen: datetime | None = None  # latest arrival (server_time)
    fix_time: datetime | None = None  # latest fix applied to transitions
    latitude: float | None = None  # latest valid fix
    longitude: float | None = None
    total_distance: float = 0.0  # metres between valid fixes
    moving: bool = False  # confirmed motion
    motion: bool = False  # motion of the latest valid fix (candidate when != moving)
    motion_since: datetime | None = None  # candidate start (None: no pending change)
    motion_latitude: float | None = None
    motion_longitude: float | None = None
    motion_distance: float = 0.0  # total_distance at the candidate start
    overspeed: bool = False
    overspeed_since: datetime | None = None  # None once this episode's event was raised
    ignition: bool | None = None
    geofences: tuple[str, ...] = field(default=())  # ids of the fences the latest valid fix is in

    def to_bytes(self) -> bytes:
        """JSON; times as ISO 8601 (orjson writes a datetime as `isoformat` does)."""
        return orjson.dumps({"v": STATE_VERSION, **dict(zip(_STATE_FIELDS, _state_values(self), strict=True))})

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceState:
        """Unknown keys are ignored and missing ones take their default (state written by an
        older or newer version still loads); ValueError for anything that is not a state."""
        obj = json_object(data, "device state")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in obj or obj[f.name] is None:
                continue
            value = obj[f.name]
            try:
                if f.name in _TIME_FIELDS:
                    value = _utc(datetime.fromisoformat(value))
                elif f.name == "geofences":
                    value = tuple(str(item) for item in value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"device state field {f.name!r}: {exc}") from None
            kwargs[f.name] = value
        return cls(**kwargs)


_STATE_FIELDS = tuple(f.name for f in fields(DeviceState))
_state_values = attrgetter(*_STATE_FIELDS)  # a state's (or a draft's) field values, in field order


# --- input --------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """Aware datetimes as UTC; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(position: Mapping[str, Any], key: str) -> datetime:
    value = position.get(key)
    if not isinstance(value, datetime):
        raise RuleInputError(f"position {key} must be a datetime, got {value!r}")
    return _utc(value)


def _coordinate(position: Mapping[str, Any], key: str, bound: float) -> float:
    value = position.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > bound:
        raise RuleInputError(f"position {key} must be a number within ±{bound:g}, got {value!r}")
    return float(value)


def _speed(position: Mapping[str, Any]) -> float | None:
    value = position.get("speed")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _ignition(position: Mapping[str, Any]) -> bool | None:
    value = position.get("ignition")
    if isinstance(value, bool):
        return value
    text = _attributes(position).get("ignition")
    if isinstance(text, str) and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    return None


def _attributes(position: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = position.get("attributes")
    if type(attributes) is dict or isinstance(attributes, Mapping):  # a dict, nearly always: no ABC check
        return attributes
    return {}


def _speed_limit(position: Mapping[str, Any], settings: RuleSettings) -> float | None:
    text = _attributes(position).get("speedLimit")
    if text is not None:
        try:
            own = float(text)
        except (TypeError, ValueError):
            own = 0.0
        if math.isfinite(own) and own > 0:
            return own
    if settings.speed_limit_kmh is not None and settings.speed_limit_kmh > 0:
        return float(settings.speed_limit_kmh)
    return None


# --- events -------------------------------------------------------------------------------


def _number_text(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _event(
    state: DeviceState | _Draft,
    kind: str,
    time: datetime,
    server_time: datetime,
    latitude: float | None,
    longitude: float | None,
    archive: bool,
    attributes: Mapping[str, str],
) -> Event:
    return {
        "device_id": state.device_id,
        "protocol": state.protocol,
        "time": time,
        "server_time": server_time,
        "type": kind,
        "alarm": "",
        "latitude": latitude,
        "longitude": longitude,
        "archive": archive,
        "device_name": state.device_name,
        "account": state.account,
        "registered": state.registered,
        "attributes": dict(attributes),
        # what tells events of one type at one time apart (part of the events table's key)
        "key": str(attributes.get("geofenceId", "")) if kind.startswith("geofence") else "",
    }


def _offline(state: DeviceState | _Draft, detected: datetime, settings: RuleSettings) -> Event:
    assert state.last_seen is not None
    return _event(
        state,
        "deviceOffline",
        state.last_seen + settings.offline_timeout,
        detected,
        state.latitude,
        state.longitude,
        False,
        {
            "trigger": "timeout",
            "lastSeen": state.last_seen.isoformat(),
            "timeout": _number_text(settings.offline_timeout.total_seconds()),
        },
    )


# --- rules --------------------------------------------------------------------------------


def on_tick(state: DeviceState, now: datetime, settings: RuleSettings) -> tuple[DeviceState, list[Event]]:
    """The offline timer: deviceOffline once nothing arrived for `offline_timeout` before `now`."""
    now = _utc(now)
    if state.online and state.last_seen is not None and now - state.last_seen >= settings.offline_timeout:
        return replace(state, online=False), [_offline(state, now, settings)]
    return state, []


#: a mutable twin of DeviceState (same fields, in order) for the rules to work on: one draft per
#: device and batch, one frozen copy out (field values copied by `_state_values`, in C)
_DraftFields = make_dataclass("_DraftFields", [(f.name, Any) for f in fields(DeviceState)], slots=True)


class _Draft(_DraftFields):  # type: ignore[misc,valid-type]
    __slots__ = ()

    @classmethod
    def of(cls, state: DeviceState) -> _Draft:
        return cls(*_state_values(state))

    def freeze(self) -> DeviceState:
        return DeviceState(*_state_values(self))


class _Emitter:
    """Collects the events of one position: its fix time and place unless told otherwise."""

    __slots__ = ("archive", "draft", "events", "fix_time", "latitude", "longitude", "server_time")

    def __init__(
        self,
        draft: _Draft,
        fix_time: datetime,
        server_time: datetime,
        place: tuple[float | None, float | None],
        archive: bool,
    ) -> None:
        self.draft = draft
        self.events: list[Event] = []
        self.fix_time, self.server_time = fix_time, server_time
        self.latitude, self.longitude = place
        self.archive = archive

    def __call__(
        self,
        kind: str,
        attributes: Mapping[str, str],
        time: datetime | None = None,
        place: tuple[float | None, float | None] | None = None,
    ) -> None:
        lat, lon = place if place is not None else (self.latitude, self.longitude)
        event = _event(self.draft, kind, time or self.fix_time, self.server_time, lat, lon, self.archive, attributes)
        self.events.append(event)


def _identity(d: Any, row: Mapping[str, Any], what: str) -> str:
    """The row's device id; RuleInputError for a row without one or one of another device."""
    device_id = row.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise RuleInputError(f"{what} device_id must be a non-empty string, got {device_id!r}")
    if d.device_id and d.device_id != device_id:
        raise RuleInputError(f"{what} of {device_id!r} given the state of {d.device_id!r}")
    return device_id


def _identify(d: Any, device_id: str, row: Mapping[str, Any]) -> None:
    """The device's identity as the row tells it (what its events carry)."""
    d.device_id = device_id
    d.protocol = str(row.get("protocol") or d.protocol)
    d.device_name = str(row.get("device_name") or d.device_name)
    d.account = str(row.get("account") or d.account)
    d.registered = bool(row.get("registered", d.registered))


def _draft_of(state: DeviceState | None) -> Any:
    return _Draft.of(state if state is not None else _NEW)


_NEW = DeviceState()


def on_position(
    state: DeviceState | None, position: Mapping[str, Any], settings: RuleSettings
) -> tuple[DeviceState, list[Event]]:
    """The events one position raises and the state after it (`state` None: a device never seen).
    RuleInputError for a row the rules cannot read (the caller dead-letters it)."""
    d = _draft_of(state)
    events = _position(d, position, settings)
    return d.freeze(), events


def on_contact(
    state: DeviceState | None, contact: Mapping[str, Any], settings: RuleSettings
) -> tuple[DeviceState, list[Event]]:
    """A device's latest frame of any kind (a `device_status` row: heartbeat, login, status ...):
    online / offline follow it, so a unit that sends only heartbeats is online too.  Nothing of the
    fix clock changes; the events carry the device's last known place.  RuleInputError for a row
    the rules cannot read."""
    d = _draft_of(state)
    events = _contact(d, contact, settings)
    return d.freeze(), events


def on_rows(
    state: DeviceState | None,
    positions: Iterable[Mapping[str, Any]],
    contact: Mapping[str, Any] | None,
    settings: RuleSettings,
) -> tuple[DeviceState | None, list[tuple[Event, Mapping[str, Any]]], list[tuple[Mapping[str, Any], str]]]:
    """One device's positions (in the order given) through `on_position`, then its latest
    `contact` through `on_contact`, as one step: the state after them (None if no row was usable
    and there was none), each event with the row it came from, and the rows refused with why."""
    d = _draft_of(state)
    used = state is not None
    events: list[tuple[Event, Mapping[str, Any]]] = []
    failures: list[tuple[Mapping[str, Any], str]] = []
    steps: list[tuple[Callable[[Any, Mapping[str, Any], RuleSettings], list[Event]], Mapping[str, Any]]]
    steps = [(_position, row) for row in positions]
    if contact is not None:
        steps.append((_contact, contact))
    for step, row in steps:
        try:
            raised = step(d, row, settings)
        except RuleInputError as exc:  # refused before the draft was touched
            failures.append((row, str(exc)))
            continue
        used = True
        events += [(event, row) for event in raised]
    return (d.freeze() if used else None), events, failures


def _position(d: Any, position: Mapping[str, Any], settings: RuleSettings) -> list[Event]:
    """`on_position` on a draft: every check comes before the draft is changed."""
    device_id = _identity(d, position, "position")
    fix_time = _time(position, "fix_time")
    server_time = _time(position, "server_time")
    latitude = _coordinate(position, "latitude", 90.0)
    longitude = _coordinate(position, "longitude", 180.0)
    _identify(d, device_id, position)
    valid = position.get("valid", True) is not False
    emit = _Emitter(d, fix_time, server_time, (latitude, longitude), bool(position.get("archive", False)))

    _arrival(d, server_time, settings, emit)  # online / offline: the arrival clock

    # everything else: the fix clock
    if d.fix_time is not None and fix_time <= d.fix_time:
        return emit.events
    previous_fix, d.fix_time = d.fix_time, fix_time

    if d.moving and previous_fix is not None and fix_time - previous_fix >= settings.no_data_duration:
        gap = _number_text((fix_time - previous_fix).total_seconds())
        emit("deviceStopped", {"trigger": "noData", "gap": gap}, time=previous_fix, place=(d.latitude, d.longitude))
        d.moving, d.motion, d.motion_since = False, False, None

    ignition = _ignition(position)
    if ignition is not None:
        if d.ignition is not None and ignition != d.ignition:
            emit("ignitionOn" if ignition else "ignitionOff", {"trigger": "ignition"})
        d.ignition = ignition

    if not valid:
        return emit.events

    previous_place = (d.latitude, d.longitude)
    if d.latitude is not None and d.longitude is not None:
        d.total_distance += distance_m(d.latitude, d.longitude, latitude, longitude)
    d.latitude, d.longitude = latitude, longitude

    speed = _speed(position)
    if speed is not None:
        _motion(d, speed > settings.motion_speed_kmh, fix_time, ignition, settings, emit)
        _overspeed(d, speed, fix_time, _speed_limit(position, settings), settings, emit)
    _geofences(d, previous_place, settings, emit)
    return emit.events


def _arrival(d: Any, server_time: datetime, settings: RuleSettings, emit: _Emitter) -> None:
    """Online / offline follow arrivals (the server's clock), whatever the frame holds."""
    if d.last_seen is None or server_time > d.last_seen:
        if d.online and d.last_seen is not None and server_time - d.last_seen >= settings.offline_timeout:
            emit.events.append(_offline(d, server_time, settings))
            d.online = False
        if not d.online:
            emit("deviceOnline", {"trigger": "frame"}, time=server_time)
            if settings.flag_unknown and not d.registered:  # Traccar's deviceUnknown, once per online spell
                emit("deviceUnknown", {"trigger": "unregistered"}, time=server_time)
        d.online, d.last_seen = True, server_time


def _contact(d: Any, contact: Mapping[str, Any], settings: RuleSettings) -> list[Event]:
    """`on_contact` on a draft: every check comes before the draft is changed."""
    device_id = _identity(d, contact, "contact")
    seen = _time(contact, "last_seen")
    _identify(d, device_id, contact)
    emit = _Emitter(d, seen, seen, (d.latitude, d.longitude), False)
    _arrival(d, seen, settings, emit)
    return emit.events


def _motion(
    d: Any, moving: bool, fix_time: datetime, ignition: bool | None, settings: RuleSettings, emit: _Emitter
) -> None:
    if moving != d.motion:  # the fix changes the candidate
        d.motion = moving
        if moving == d.moving:  # back to the confirmed state before confirmation: no event
            d.motion_since = None
        else:
            d.motion_since, d.motion_latitude, d.motion_longitude = fix_time, d.latitude, d.longitude
            d.motion_distance = d.total_distance
        return
    if d.motion_since is None:
        return
    held = fix_time - d.motion_since
    travelled = d.total_distance - d.motion_distance
    if moving:
        confirmed = held >= settings.min_trip_duration or travelled >= settings.min_trip_distance_m
    else:
        confirmed = held >= settings.min_parking_duration or (settings.stop_on_ignition_off and ignition is False)
    if confirmed:
        details = {
            "trigger": "motion",
            "confirmedAt": fix_time.isoformat(),
            "duration": _number_text(held.total_seconds()),
            "distance": _number_text(travelled),
        }
        place = (d.motion_latitude, d.motion_longitude)
        emit("deviceMoving" if moving else "deviceStopped", details, time=d.motion_since, place=place)
        d.moving, d.motion_since = moving, None


def _overspeed(
    d: Any, speed: float, fix_time: datetime, limit: float | None, settings: RuleSettings, emit: _Emitter
) -> None:
    if limit is None or speed <= limit * settings.overspeed_multiplier:
        d.overspeed, d.overspeed_since = False, None
        return
    if not d.overspeed:
        d.overspeed, d.overspeed_since = True, fix_time
    if d.overspeed_since is not None and fix_time - d.overspeed_since >= settings.overspeed_min_duration:
        details = {
            "trigger": "speed",
            "speed": _number_text(speed),
            "speedLimit": _number_text(limit),
            "since": d.overspeed_since.isoformat(),
        }
        emit("deviceOverspeed", details)
        d.overspeed_since = None


def _geofences(d: Any, previous: tuple[float | None, float | None], settings: RuleSettings, emit: _Emitter) -> None:
    if not settings.geofences:
        d.geofences = ()
        return
    fences = {fence.id: fence for fence in settings.geofences}
    old = {fence_id for fence_id in d.geofences if fence_id in fences}
    new = {fence.id for fence in settings.geofences if contains(fence, d.latitude, d.longitude)}

    def attributes(fence: Geofence, trigger: str) -> dict[str, str]:
        return {"trigger": trigger, "geofenceId": fence.id, "geofence": fence.name}

    for fence_id in sorted(old - new):
        emit("geofenceExit", attributes(fences[fence_id], "geofence"))
    for fence_id in sorted(new - old):
        emit("geofenceEnter", attributes(fences[fence_id], "geofence"))
    lat0, lon0 = previous
    if settings.segment_crossing and lat0 is not None and lon0 is not None:
        for fence in settings.geofences:
            if fence.id in old or fence.id in new or contains(fence, lat0, lon0):
                continue
            if segment_crosses(fence, lat0, lon0, d.latitude, d.longitude):
                jump = attributes(fence, "segment") | {"fromLatitude": repr(lat0), "fromLongitude": repr(lon0)}
                emit("geofenceEnter", jump)
                emit("geofenceExit", jump)
    d.geofences = tuple(sorted(new))
