"""Derived events (`trackpipe.streams.rules`): tables of transitions on real coordinates,
pure (state, position) -> (state, events), no Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from trackpipe.streams.geofence import Circle, Geofence, Polygon
from trackpipe.streams.rules import (
    DeviceState,
    RuleInputError,
    RuleSettings,
    on_contact,
    on_position,
    on_rows,
    on_tick,
)

from trackpipe import schemas

T0 = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
DEVICE = "CC8011400042499"
EVENT_FIELDS = {
    f["name"] for f in json.loads((Path(__file__).parents[2] / "schemas" / "event.avsc").read_text())["fields"]
}

# Avenue des Champs-Élysées, from the Arc de Triomphe towards the Place de la Concorde
ARC = (48.87380, 2.29510)
CONCORDE = (48.86560, 2.32120)
# Place de l'Étoile (the roundabout round the Arc) and the Rond-Point des Champs-Élysées
ETOILE = Geofence("etoile", "Place de l'Étoile", Circle(48.87380, 2.29510, 150))
ROND_POINT = Geofence("rond-point", "Rond-Point", Circle(48.86900, 2.31050, 120))
# the avenue's eastern half as a polygon (overlaps the Rond-Point)
EAST_AVENUE = Geofence(
    "east-avenue",
    "Champs-Élysées east",
    Polygon(((48.8712, 2.3070), (48.8675, 2.3190), (48.8655, 2.3190), (48.8690, 2.3060))),
)


def along(fraction: float) -> tuple[float, float]:
    return ARC[0] + (CONCORDE[0] - ARC[0]) * fraction, ARC[1] + (CONCORDE[1] - ARC[1]) * fraction


def pos(
    seconds: float,
    where: tuple[float, float] = ARC,
    speed: float | None = 0.0,
    *,
    arrival: float | None = None,
    archive: bool = False,
    valid: bool = True,
    ignition: bool | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A normalized position row as `streams.process` builds it (fix `seconds` after T0)."""
    fix = T0 + timedelta(seconds=seconds)
    return {
        "device_id": DEVICE,
        "protocol": "carscop",
        "fix_time": fix,
        "server_time": T0 + timedelta(seconds=arrival) if arrival is not None else fix + timedelta(seconds=2),
        "valid": valid,
        "latitude": where[0],
        "longitude": where[1],
        "altitude": None,
        "speed": speed,
        "course": None,
        "satellites": 8,
        "archive": archive,
        "alarms": [],
        "battery_level": None,
        "battery": None,
        "power": None,
        "ignition": ignition,
        "odometer": None,
        "device_name": "Truck 7",
        "account": "acme",
        "registered": True,
        "attributes": attributes or {},
        "transport": "tcp",
        "edge_id": "edge-1",
        "connection_id": "edge-1-7",
    }


def run(
    positions: Iterable[dict[str, Any]], settings: RuleSettings, state: DeviceState | None = None
) -> tuple[DeviceState, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    for position in positions:
        state, new = on_position(state, position, settings)
        events.extend(new)
    assert state is not None
    return state, events


def types(events: Sequence[dict[str, Any]], skip_online: bool = True) -> list[str]:
    return [e["type"] for e in events if not (skip_online and e["type"] == "deviceOnline")]


# --- shape of an event ----------------------------------------------------------------------


def test_event_has_exactly_the_schema_keys() -> None:
    _, events = on_position(None, pos(0), RuleSettings())
    assert [e["type"] for e in events] == ["deviceOnline"]
    event = events[0]
    assert set(event) == EVENT_FIELDS
    assert event["device_id"] == DEVICE
    assert event["protocol"] == "carscop"
    assert event["alarm"] == ""
    assert (event["device_name"], event["account"], event["registered"]) == ("Truck 7", "acme", True)
    assert event["time"] == T0 + timedelta(seconds=2)  # arrival: online is an arrival-clock event
    assert (event["latitude"], event["longitude"]) == ARC
    assert all(isinstance(v, str) for v in event["attributes"].values())


def test_events_encode_with_the_avro_schema() -> None:
    settings = RuleSettings(speed_limit_kmh=50, geofences=(ETOILE,))
    _, events = run([pos(0, ARC, 60, ignition=True), pos(10, along(0.1), 70, ignition=False)], settings)
    assert types(events, False) == [
        "deviceOnline",
        "deviceOverspeed",
        "geofenceEnter",
        "ignitionOff",  # still over the limit: one deviceOverspeed per episode
        "geofenceExit",
    ]
    for event in events:
        back = schemas.decode("events", schemas.encode("events", event))
        assert back == event


# --- online / offline -----------------------------------------------------------------------

TIMEOUT = RuleSettings(offline_timeout=timedelta(minutes=10))


def test_online_once_then_offline_by_tick() -> None:
    state, events = run([pos(0), pos(60), pos(120)], TIMEOUT)
    assert types(events, False) == ["deviceOnline"]
    last_seen = T0 + timedelta(seconds=122)
    state, events = on_tick(state, last_seen + timedelta(minutes=9, seconds=59), TIMEOUT)
    assert events == [] and state.online
    now = last_seen + timedelta(minutes=11)
    state, events = on_tick(state, now, TIMEOUT)
    assert types(events, False) == ["deviceOffline"]
    offline = events[0]
    assert offline["time"] == last_seen + timedelta(minutes=10)  # when the timeout elapsed
    assert offline["server_time"] == now  # when it was noticed
    assert (offline["latitude"], offline["longitude"]) == ARC
    assert offline["attributes"] == {"trigger": "timeout", "lastSeen": last_seen.isoformat(), "timeout": "600"}
    assert set(offline) == EVENT_FIELDS
    state, events = on_tick(state, now + timedelta(minutes=30), TIMEOUT)
    assert events == [] and not state.online  # offline once
    state, events = on_position(state, pos(3600), TIMEOUT)
    assert types(events, False) == ["deviceOnline"]


def test_offline_without_a_tick_comes_with_the_next_frame() -> None:
    _, events = run([pos(0), pos(1200)], TIMEOUT)  # 20 min of silence, no timer ran
    assert types(events, False) == ["deviceOnline", "deviceOffline", "deviceOnline"]
    assert events[1]["time"] == T0 + timedelta(seconds=2, minutes=10)
    assert events[2]["time"] == T0 + timedelta(seconds=1202)


def test_tick_on_a_device_never_seen_or_offline_does_nothing() -> None:
    state, events = on_tick(DeviceState(device_id=DEVICE), T0, TIMEOUT)
    assert events == [] and state == DeviceState(device_id=DEVICE)


def test_redelivered_old_frame_does_not_bring_a_device_online() -> None:
    state, _ = run([pos(0), pos(60)], TIMEOUT)
    state, events = on_tick(state, T0 + timedelta(hours=1), TIMEOUT)
    assert types(events, False) == ["deviceOffline"]
    # the worker restarted and re-reads a frame that arrived before the device went silent
    state, events = on_position(state, pos(30, arrival=32), TIMEOUT)
    assert events == [] and not state.online


def contact(seconds: float, kind: str = "heartbeat") -> dict[str, Any]:
    """A `device_status` row as `streams.process` builds it: the device's latest frame of a batch."""
    return {
        "device_id": DEVICE,
        "protocol": "carscop",
        "last_seen": T0 + timedelta(seconds=seconds),
        "kind": kind,
        "transport": "tcp",
        "peer": "10.0.0.7:40001",
        "battery_level": 80.0,
        "power": None,
        "ignition": None,
        "device_name": "Truck 7",
        "account": "acme",
        "registered": True,
    }


def test_heartbeats_alone_bring_a_device_online_and_keep_it_there() -> None:
    state, events = on_contact(None, contact(0), TIMEOUT)
    assert types(events, False) == ["deviceOnline"]
    assert events[0]["time"] == T0 and set(events[0]) == EVENT_FIELDS
    assert (events[0]["latitude"], events[0]["longitude"]) == (None, None)  # no place known yet
    assert (events[0]["device_name"], events[0]["registered"]) == ("Truck 7", True)
    for second in (300, 600, 900):  # heartbeats every 5 minutes: within the 10-minute timeout
        state, events = on_contact(state, contact(second), TIMEOUT)
        assert events == []
    state, events = on_tick(state, T0 + timedelta(seconds=900 + 599), TIMEOUT)
    assert events == [] and state.online
    state, events = on_tick(state, T0 + timedelta(seconds=900 + 601), TIMEOUT)
    assert types(events, False) == ["deviceOffline"]


def test_a_contact_after_silence_is_offline_then_online_at_the_last_place() -> None:
    state, _ = run([pos(0, CONCORDE)], TIMEOUT)
    state, events = on_contact(state, contact(1800), TIMEOUT)  # 30 min later, a heartbeat; no timer ran
    assert types(events, False) == ["deviceOffline", "deviceOnline"]
    assert (events[1]["latitude"], events[1]["longitude"]) == CONCORDE
    assert state.fix_time == T0  # the fix clock is untouched: motion, fences, ignition as they were


def test_a_contact_changes_nothing_of_the_fix_clock_and_no_second_online() -> None:
    moving = RuleSettings(offline_timeout=timedelta(minutes=10), min_trip_distance_m=100)
    state, _ = run([pos(0, ARC, 50), pos(30, along(0.2), 50), pos(60, along(0.4), 50)], moving)
    assert state.moving
    after, events = on_contact(state, contact(62), moving)  # the same arrival as the last position
    assert events == [] and after == state
    after, events = on_contact(state, contact(90), moving)
    assert events == [] and after.moving and after.last_seen == T0 + timedelta(seconds=90)
    assert after.fix_time == state.fix_time and after.total_distance == state.total_distance


def test_flag_policy_raises_device_unknown_with_each_online_spell_of_an_unregistered_device() -> None:
    flag = RuleSettings(offline_timeout=timedelta(minutes=10), flag_unknown=True)
    stranger = pos(0) | {"registered": False, "device_name": ""}
    state, events = on_position(None, stranger, flag)
    assert types(events, False) == ["deviceOnline", "deviceUnknown"]
    assert events[1]["attributes"] == {"trigger": "unregistered"} and events[1]["time"] == events[0]["time"]
    state, events = on_position(state, pos(60) | {"registered": False}, flag)
    assert events == []  # once per online spell, not per frame
    state, events = on_contact(state, contact(3600) | {"registered": False}, flag)
    assert types(events, False) == ["deviceOffline", "deviceOnline", "deviceUnknown"]
    _, events = on_position(None, pos(0), flag)  # registered: nothing to flag
    assert types(events, False) == ["deviceOnline"]
    _, events = on_position(None, stranger, TIMEOUT)  # policy "store": no flag
    assert types(events, False) == ["deviceOnline"]


@pytest.mark.parametrize(
    ("change", "message"),
    [({"device_id": ""}, "non-empty string"), ({"last_seen": None}, "last_seen"), ({"last_seen": "x"}, "last_seen")],
)
def test_bad_contact_rows_raise_rule_input_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleInputError, match=message):
        on_contact(None, contact(0) | change, TIMEOUT)


def test_archive_frames_count_as_online() -> None:
    _, events = run([pos(-7200, archive=True, arrival=0)], TIMEOUT)
    assert types(events, False) == ["deviceOnline"]
    assert events[0]["archive"] is True


# --- motion ---------------------------------------------------------------------------------

MOTION = RuleSettings(
    motion_speed_kmh=5, min_trip_distance_m=500, min_trip_duration=timedelta(minutes=5),
    min_parking_duration=timedelta(minutes=5),
)  # fmt: skip


def drive(start: float, stop: float, step: float, first: float, last: float, speed: float) -> list[dict[str, Any]]:
    """Fixes every `step` s from `start` to `stop` s, moving evenly from fraction `first` to `last`."""
    count = round((stop - start) / step)
    return [
        pos(start + n * step, along(first + (last - first) * n / count), speed) for n in range(count + 1)
    ]  # fmt: skip


def test_moving_confirmed_by_distance_at_the_start_of_the_move() -> None:
    parked = [pos(0, ARC, 0), pos(60, ARC, 0)]
    # ~2.1 km in 4 minutes: 500 m is reached on the third fix after starting
    moving = drive(120, 360, 30, 0.0, 1.0, 32)
    state, events = run(parked + moving, MOTION)
    assert types(events) == ["deviceMoving"]
    event = next(e for e in events if e["type"] == "deviceMoving")
    assert event["time"] == T0 + timedelta(seconds=120)  # the first moving fix
    assert (event["latitude"], event["longitude"]) == ARC
    assert event["attributes"]["trigger"] == "motion"
    assert float(event["attributes"]["distance"]) >= 500
    assert state.moving


def test_moving_confirmed_by_duration_when_slow() -> None:
    # a lorry crawling 1/500 of the avenue (~4 m) per 30 s at 6 km/h: only the 5 minutes confirm it
    crawl = [pos(n * 30, along(n / 500), 6) for n in range(12)]
    _, events = run(crawl, MOTION)
    assert types(events) == ["deviceMoving"]
    moving = next(e for e in events if e["type"] == "deviceMoving")
    assert moving["time"] == T0
    assert moving["attributes"]["confirmedAt"] == (T0 + timedelta(seconds=300)).isoformat()


def test_traffic_light_does_not_flap() -> None:
    route = drive(0, 300, 30, 0.0, 0.5, 40)
    # a 90 s red light at 50 % of the avenue, then on
    light = [pos(330, along(0.5), 0), pos(360, along(0.5), 0), pos(390, along(0.5), 0)]
    on = drive(420, 600, 30, 0.5, 1.0, 40)
    _, events = run(route + light + on, MOTION)
    assert types(events) == ["deviceMoving"]


def test_stopped_confirmed_after_parking_duration() -> None:
    route = drive(0, 300, 30, 0.0, 1.0, 40)
    parked = [pos(330 + n * 60, CONCORDE, 0) for n in range(7)]
    _, events = run(route + parked, MOTION)
    assert types(events) == ["deviceMoving", "deviceStopped"]
    stopped = events[-1]
    assert stopped["time"] == T0 + timedelta(seconds=330)  # when it stopped, not when confirmed
    assert (stopped["latitude"], stopped["longitude"]) == CONCORDE
    assert stopped["attributes"]["confirmedAt"] == (T0 + timedelta(seconds=330 + 300)).isoformat()


def test_stop_on_ignition_off() -> None:
    settings = RuleSettings(motion_speed_kmh=5, stop_on_ignition_off=True)
    route = [pos(n * 30, along(n / 10), 40, ignition=True) for n in range(11)]
    park = [pos(330, CONCORDE, 0, ignition=True), pos(360, CONCORDE, 0, ignition=False)]
    _, events = run(route + park, settings)
    assert types(events) == ["deviceMoving", "ignitionOff", "deviceStopped"]
    assert events[-1]["time"] == T0 + timedelta(seconds=330)


def test_no_data_gap_stops_a_moving_device_at_its_last_fix() -> None:
    route = drive(0, 300, 30, 0.0, 1.0, 40)
    state, events = run([*route, pos(300 + 7200, CONCORDE, 0)], MOTION)
    assert types(events, False) == ["deviceOnline", "deviceMoving", "deviceOffline", "deviceOnline", "deviceStopped"]
    stopped = events[-1]
    assert stopped["time"] == T0 + timedelta(seconds=300)
    assert stopped["attributes"] == {"trigger": "noData", "gap": "7200"}
    assert not state.moving


def test_fix_without_speed_or_invalid_changes_no_motion() -> None:
    route = drive(0, 300, 30, 0.0, 1.0, 40)
    idle = [pos(330 + n * 60, CONCORDE, None) for n in range(10)]
    invalid = [pos(930 + n * 60, CONCORDE, 0, valid=False) for n in range(10)]
    state, events = run(route + idle + invalid, MOTION)
    assert types(events) == ["deviceMoving"]
    assert state.moving


# --- overspeed ------------------------------------------------------------------------------

OVERSPEED = RuleSettings(speed_limit_kmh=50, overspeed_min_duration=timedelta(seconds=30))


@pytest.mark.parametrize(
    ("speeds", "expected"),
    [
        # (seconds, km/h): over the limit for 30 s -> one event, at the fix that completes 30 s
        ([(0, 55), (10, 60), (20, 58), (30, 57), (40, 70), (50, 65)], [30]),
        # never over for 30 s in a row: no event
        ([(0, 60), (20, 62), (25, 45), (40, 61), (60, 63), (65, 50)], []),
        # exactly at the limit is not over it
        ([(0, 50), (30, 50), (60, 50)], []),
        # two episodes, two events
        ([(0, 70), (30, 70), (60, 40), (90, 80), (100, 80), (120, 80)], [30, 120]),
        # a long episode raises one event
        ([(n * 10, 90) for n in range(30)], [30]),
    ],
)
def test_overspeed_minimal_duration(speeds: list[tuple[int, float]], expected: list[int]) -> None:
    _, events = run([pos(t, ARC, v) for t, v in speeds], OVERSPEED)
    raised = [e for e in events if e["type"] == "deviceOverspeed"]
    assert [e["time"] for e in raised] == [T0 + timedelta(seconds=t) for t in expected]
    assert types(events) == ["deviceOverspeed"] * len(expected)
    for event in raised:
        assert event["attributes"]["speedLimit"] == "50"
        assert float(event["attributes"]["speed"]) > 50


def test_overspeed_without_duration_fires_on_the_first_fix() -> None:
    _, events = run([pos(0, ARC, 51.5)], RuleSettings(speed_limit_kmh=50))
    assert types(events) == ["deviceOverspeed"]
    assert events[-1]["attributes"] == {
        "trigger": "speed",
        "speed": "51.5",
        "speedLimit": "50",
        "since": T0.isoformat(),
    }


def test_overspeed_limit_from_the_position_and_multiplier() -> None:
    limited = [pos(0, ARC, 40, attributes={"speedLimit": "30"})]
    assert types(run(limited, RuleSettings())[1]) == ["deviceOverspeed"]
    assert types(run(limited, RuleSettings(speed_limit_kmh=90))[1]) == ["deviceOverspeed"]  # the road's limit wins
    assert types(run([pos(0, ARC, 54)], RuleSettings(speed_limit_kmh=50, overspeed_multiplier=1.1))[1]) == []
    assert types(run([pos(0, ARC, 56)], RuleSettings(speed_limit_kmh=50, overspeed_multiplier=1.1))[1]) == [
        "deviceOverspeed"
    ]
    assert types(run([pos(0, ARC, 250)], RuleSettings())[1]) == []  # no limit anywhere
    assert types(run([pos(0, ARC, 40, attributes={"speedLimit": "fast"})], RuleSettings())[1]) == []


def test_invalid_fix_or_unknown_speed_raise_no_overspeed() -> None:
    settings = RuleSettings(speed_limit_kmh=50)
    assert types(run([pos(0, ARC, 120, valid=False)], settings)[1]) == []
    assert types(run([pos(0, ARC, None)], settings)[1]) == []


# --- ignition -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, True, False, False, True], ["ignitionOff", "ignitionOn"]),
        ([None, False, None, True, None], ["ignitionOn"]),  # positions without ignition keep the last value
        ([True], []),  # the first value known raises nothing
        ([None, None], []),
        ([False, True, False, True], ["ignitionOn", "ignitionOff", "ignitionOn"]),
    ],
)
def test_ignition_transitions(values: list[bool | None], expected: list[str]) -> None:
    _, events = run([pos(n * 10, ignition=v) for n, v in enumerate(values)], RuleSettings())
    assert types(events) == expected


def test_ignition_from_attributes_and_on_invalid_fixes() -> None:
    positions = [
        pos(0, attributes={"ignition": "true"}),
        pos(10, attributes={"ignition": "FALSE"}, valid=False),
        pos(20, attributes={"ignition": "maybe"}),
        pos(30, attributes={"ignition": "true"}),
    ]
    _, events = run(positions, RuleSettings())
    assert types(events) == ["ignitionOff", "ignitionOn"]
    assert events[-1]["attributes"] == {"trigger": "ignition"}
    assert events[-1]["time"] == T0 + timedelta(seconds=30)


# --- fix order and archive ------------------------------------------------------------------


def test_points_older_than_the_last_fix_raise_nothing() -> None:
    settings = RuleSettings(speed_limit_kmh=50, geofences=(ETOILE, ROND_POINT))
    state, _ = run([pos(100, ARC, 0, ignition=True)], settings)
    # buffered points uploaded after the live one: other ignition, another fence, speeding
    late = [
        pos(40, (48.86900, 2.31050), 120, archive=True, ignition=False),
        pos(50, CONCORDE, 120, archive=True, ignition=False),
        pos(100, CONCORDE, 120, ignition=False),  # the same fix time again
    ]
    after, events = run(late, settings, state)
    assert events == []
    assert after.fix_time == state.fix_time and after.geofences == ("etoile",)
    assert (after.latitude, after.longitude, after.ignition, after.overspeed) == (*ARC, True, False)
    # the next live point is judged against the live one, not the buffered ones
    _, events = on_position(after, pos(160, ARC, 0, ignition=True), settings)
    assert events == []


def test_archive_points_in_order_raise_events_flagged_archive() -> None:
    settings = RuleSettings(geofences=(ETOILE,))
    state, _ = run([pos(0, ARC, 0, ignition=True)], settings)
    # a tunnel: the unit buffered these and uploads them in order a while later
    buffered = [
        pos(60, along(0.3), 0, archive=True, arrival=300, ignition=False),
        pos(120, ARC, 0, archive=True, arrival=301, ignition=True),
    ]
    _, events = run(buffered, settings, state)
    assert types(events) == ["ignitionOff", "geofenceExit", "ignitionOn", "geofenceEnter"]
    assert all(e["archive"] for e in events)
    assert [e["time"] for e in events] == [T0 + timedelta(seconds=t) for t in (60, 60, 120, 120)]


def test_out_of_order_state_follows_fix_time_not_arrival() -> None:
    # the same points in two arrival orders: the later fix wins, the earlier one is ignored after it
    a = pos(10, ARC, 0, ignition=True)
    b = pos(20, ARC, 0, ignition=False)
    state_ab, events_ab = run([a, b], RuleSettings())
    state_ba, events_ba = run([b, a], RuleSettings())
    assert types(events_ab) == ["ignitionOff"]
    assert types(events_ba) == []
    assert state_ab.ignition is False and state_ba.ignition is False


# --- geofences ------------------------------------------------------------------------------

FENCES = RuleSettings(geofences=(ETOILE, ROND_POINT, EAST_AVENUE))


def fence_events(events: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["attributes"]["geofenceId"], e["attributes"]["trigger"])
        for e in events
        if e["type"].startswith("geofence")
    ]


def test_drive_down_the_avenue_through_several_fences() -> None:
    # a fix every 10 % of the avenue (~210 m apart), from the Arc to the Concorde and back to the Arc
    out = [pos(n * 20, along(n / 10), 40) for n in range(11)]
    back = [pos(220 + n * 20, along(1 - n / 10), 40) for n in range(11)]
    state, events = run(out + back, FENCES)
    assert fence_events(events) == [
        ("geofenceEnter", "etoile", "geofence"),  # first fix, at the Arc
        ("geofenceExit", "etoile", "geofence"),
        ("geofenceEnter", "east-avenue", "geofence"),  # the polygon starts between 40 % and 50 %
        ("geofenceEnter", "rond-point", "geofence"),  # inside both at 60 %
        ("geofenceExit", "rond-point", "geofence"),
        ("geofenceExit", "east-avenue", "geofence"),  # the Concorde is east of it
        ("geofenceEnter", "east-avenue", "geofence"),  # on the way back
        ("geofenceEnter", "rond-point", "geofence"),
        ("geofenceExit", "rond-point", "geofence"),
        ("geofenceExit", "east-avenue", "geofence"),
        ("geofenceEnter", "etoile", "geofence"),
    ]
    assert [e["time"] for e in events if e["type"].startswith("geofence")] == [
        T0 + timedelta(seconds=t) for t in (0, 20, 100, 120, 140, 200, 240, 300, 320, 340, 420)
    ]
    assert state.geofences == ("etoile",)
    enter = next(e for e in events if e["type"] == "geofenceEnter" and e["attributes"]["geofenceId"] == "rond-point")
    assert enter["attributes"]["geofence"] == "Rond-Point"
    assert (enter["latitude"], enter["longitude"]) == along(0.6)


def test_exits_come_before_enters_on_one_fix() -> None:
    # from the Arc straight to the Rond-Point (a 1.2 km hop along the avenue, no fence jumped)
    _, events = run([pos(0, ARC, 60), pos(60, (48.86900, 2.31050), 60)], FENCES)
    assert fence_events(events) == [
        ("geofenceEnter", "etoile", "geofence"),
        ("geofenceExit", "etoile", "geofence"),
        ("geofenceEnter", "east-avenue", "geofence"),
        ("geofenceEnter", "rond-point", "geofence"),
    ]


def test_point_on_a_fence_edge_is_inside() -> None:
    # the south-west corner of the east-avenue polygon, exactly
    _, events = run([pos(0, (48.8690, 2.3060), 0)], FENCES)
    assert fence_events(events) == [("geofenceEnter", "east-avenue", "geofence")]


def test_jump_over_a_fence_between_two_fixes() -> None:
    # one fix west of the Place de l'Étoile, the next east of it: the hop crosses the circle
    west, east = (48.87380, 2.28900), (48.87380, 2.30120)
    _, events = run([pos(0, west, 60), pos(30, east, 60)], FENCES)
    jump = [e for e in events if e["type"].startswith("geofence")]
    assert fence_events(jump) == [("geofenceEnter", "etoile", "segment"), ("geofenceExit", "etoile", "segment")]
    assert all(e["time"] == T0 + timedelta(seconds=30) for e in jump)
    assert jump[0]["attributes"]["fromLongitude"] == "2.289"
    # Traccar's default: nothing
    _, events = run(
        [pos(0, west, 60), pos(30, east, 60)], RuleSettings(geofences=FENCES.geofences, segment_crossing=False)
    )
    assert fence_events(events) == []
    # passing well north of it: nothing
    _, events = run([pos(0, (48.8770, 2.2890), 60), pos(30, (48.8770, 2.3012), 60)], FENCES)
    assert fence_events(events) == []


def test_geofence_across_the_antimeridian() -> None:
    fiji = Geofence("fiji", "Fiji", Polygon(((-16.0, 179.0), (-16.0, -179.0), (-18.0, -179.0), (-18.0, 179.0))))
    settings = RuleSettings(geofences=(fiji,))
    # a ship sailing east along 17 S, across the date line
    track = [(-17.0, 178.5), (-17.0, 179.5), (-17.0, -179.9), (-17.0, -178.5)]
    _, events = run([pos(n * 3600, p, 20) for n, p in enumerate(track)], settings)
    assert fence_events(events) == [("geofenceEnter", "fiji", "geofence"), ("geofenceExit", "fiji", "geofence")]
    # the same voyage with fixes only on either side: a jump-over
    _, events = run([pos(0, (-17.0, 178.5), 20), pos(36000, (-17.0, -178.5), 20)], settings)
    assert fence_events(events) == [("geofenceEnter", "fiji", "segment"), ("geofenceExit", "fiji", "segment")]


def test_invalid_fix_inside_a_fence_raises_nothing() -> None:
    _, events = run([pos(0, CONCORDE, 0), pos(10, ARC, 0, valid=False)], FENCES)
    assert fence_events(events) == []


def test_fence_removed_from_settings_is_forgotten() -> None:
    state, events = run([pos(0, ARC, 0)], FENCES)
    assert state.geofences == ("etoile",)
    without = RuleSettings(geofences=(ROND_POINT,))
    state, events = run([pos(10, ARC, 0)], without, state)
    assert fence_events(events) == [] and state.geofences == ()


# --- state serialisation --------------------------------------------------------------------


def test_state_round_trips_through_bytes_mid_journey() -> None:
    settings = RuleSettings(
        speed_limit_kmh=50, overspeed_min_duration=timedelta(seconds=60), geofences=FENCES.geofences
    )
    journey = [pos(n * 20, along(n / 20), 45 + n, ignition=True) for n in range(21)]
    journey += [pos(420 + n * 60, CONCORDE, 0, ignition=n < 2) for n in range(8)]
    whole_state, whole = run(journey, settings)
    state, first = run(journey[:9], settings)
    data = state.to_bytes()
    assert isinstance(data, bytes)
    restored = DeviceState.from_bytes(data)
    assert restored == state
    resumed_state, rest = run(journey[9:], settings, restored)
    assert first + rest == whole
    assert resumed_state == whole_state
    assert DeviceState.from_bytes(whole_state.to_bytes()) == whole_state
    assert {"deviceMoving", "deviceOverspeed", "geofenceEnter", "ignitionOff", "deviceStopped"} <= set(types(whole))


def test_state_bytes_tolerate_old_and_new_fields() -> None:
    state, _ = run([pos(0, ARC, 0, ignition=True)], FENCES)
    data = orjson.loads(state.to_bytes())
    data["a_future_field"] = 1
    del data["total_distance"]
    restored = DeviceState.from_bytes(orjson.dumps(data))
    assert restored == state  # total_distance was 0.0, its default
    assert DeviceState.from_bytes(b"{}") == DeviceState()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"last_seen": "yesterday"}', "last_seen"),
        (b'{"geofences": 5}', "geofences"),
    ],
)
def test_state_bytes_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceState.from_bytes(data)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device_id": None}, "device_id"),
        ({"device_id": ""}, "device_id"),
        ({"fix_time": "2026-11-24T08:00:00Z"}, "fix_time must be a datetime"),
        ({"server_time": None}, "server_time must be a datetime"),
        ({"latitude": 91.0}, "latitude"),
        ({"longitude": float("nan")}, "longitude"),
        ({"longitude": "2.3"}, "longitude"),
    ],
)
def test_bad_position_rows_raise_rule_input_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleInputError, match=message):
        on_position(None, pos(0) | change, RuleSettings())


def test_state_of_another_device_is_refused() -> None:
    with pytest.raises(RuleInputError, match="given the state of"):
        on_position(DeviceState(device_id="OTHER"), pos(0), RuleSettings())


def test_odd_optional_fields_do_not_crash() -> None:
    row = pos(0, ARC, 0) | {"speed": "fast", "attributes": None, "ignition": "yes"}
    state, events = on_position(None, row, RuleSettings(speed_limit_kmh=10))
    assert types(events, False) == ["deviceOnline"]
    naive = pos(10) | {"fix_time": datetime(2026, 11, 24, 8, 0, 10), "server_time": datetime(2026, 11, 24, 8, 0, 12)}
    state, events = on_position(state, naive, RuleSettings())  # naive datetimes are taken as UTC
    assert state.fix_time == T0 + timedelta(seconds=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offline_timeout": timedelta(0)}, "offline_timeout"),
        ({"overspeed_min_duration": timedelta(seconds=-1)}, "overspeed_min_duration"),
        ({"min_parking_duration": 300}, "min_parking_duration"),
        ({"no_data_duration": timedelta(0)}, "no_data_duration"),
        ({"overspeed_multiplier": 0}, "overspeed_multiplier"),
        ({"geofences": (ETOILE, ETOILE)}, "unique"),
    ],
)
def test_settings_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleSettings(**kwargs)


# --- one device's batch in one step (what `derive` runs) -------------------------------------


def _one_by_one(
    state: DeviceState | None, rows: list[dict[str, Any]], last: dict[str, Any] | None, settings: RuleSettings
) -> tuple[DeviceState | None, list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]]]:
    events, failures = [], []
    steps = [(on_position, row) for row in rows] + ([(on_contact, last)] if last is not None else [])
    for rule, row in steps:
        try:
            state, raised = rule(state, row, settings)
        except RuleInputError:
            failures.append(row)
            continue
        events += [(event, row) for event in raised]
    return state, events, failures


def test_a_device_batch_in_one_step_is_the_rows_one_by_one() -> None:
    fence = RuleSettings(offline_timeout=timedelta(minutes=5), geofences=(ETOILE, ROND_POINT), speed_limit_kmh=50)
    rows = drive(0, 600, 20, 0.0, 1.0, 70.0)  # moving, overspeed, out of the Etoile, through the Rond-Point
    rows[3] = dict(rows[3], latitude=123.0, protocol="other")  # refused: changes nothing, not even identity
    rows[5] = dict(rows[5], ignition=True)
    rows[6] = dict(rows[6], ignition=False)
    rows.insert(8, dict(rows[7]))  # re-delivered
    rows.append(dict(rows[-1], fix_time="not a time"))  # refused
    last = contact(700)
    for start in (None, run([pos(-900)], fence)[0]):  # a new device; one offline since
        state, events, failures = on_rows(start, rows, last, fence)
        want_state, want_events, want_failures = _one_by_one(start, rows, last, fence)
        assert state == want_state and state is not None and state.protocol == "carscop"
        assert events == want_events and len(events) > 5
        assert [row for row, _ in failures] == want_failures == [rows[3], rows[-1]]
        assert "latitude" in failures[0][1] and "fix_time" in failures[1][1]


def test_a_device_batch_of_refused_rows_leaves_no_state() -> None:
    bad = dict(pos(0), longitude=None)
    assert on_rows(None, [bad], None, TIMEOUT)[0] is None
    known = run([pos(-60)], TIMEOUT)[0]
    state, events, failures = on_rows(known, [bad], dict(contact(10), last_seen=None), TIMEOUT)
    assert state == known and events == [] and len(failures) == 2


def test_state_bytes_round_trip_with_times_and_fences() -> None:
    state, _ = run(drive(0, 300, 20, 0.0, 0.5, 70.0), RuleSettings(geofences=(ETOILE, ROND_POINT)))
    data = orjson.loads(state.to_bytes())
    assert data["v"] == 1 and data["last_seen"] == state.last_seen.isoformat()
    assert DeviceState.from_bytes(state.to_bytes()) == state
