"""Position quality filters (`streams.quality`, Traccar's `filter.*`) and how `process` applies them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device
from trackpipe.streams import quality
from trackpipe.streams.process import process
from trackpipe.streams.quality import Filters, parse_earliest, position_problem

from trackpipe import schemas

from .test_process import RECEIVED, raw

IMEI = "358000000000001"
DEVICE = "358000000000001"


def _problem(
    lat: float, lon: float, when: datetime | None, valid: bool = True, f: Filters = quality.DEFAULT_FILTERS
) -> str | None:
    return position_problem(lat, lon, when, valid, RECEIVED, f)


@pytest.mark.parametrize(
    ("lat", "lon", "when", "reason"),
    [
        (50.1, 19.9, RECEIVED, None),
        (50.1, 19.9, None, None),  # no fix time: the receive time is used
        (0.0, 0.0, RECEIVED, quality.ZERO_POSITION),
        (0.0, 19.9, RECEIVED, None),  # on the equator is fine
        (90.5, 19.9, RECEIVED, quality.INVALID_POSITION),
        (50.1, -180.1, RECEIVED, quality.INVALID_POSITION),
        (float("nan"), 19.9, RECEIVED, quality.INVALID_POSITION),
        (50.1, float("inf"), RECEIVED, quality.INVALID_POSITION),
        (50.1, 19.9, datetime(1999, 12, 31, 23, 59, tzinfo=UTC), quality.EARLY_FIX),
        (50.1, 19.9, datetime(2000, 1, 1, tzinfo=UTC), None),
        (50.1, 19.9, RECEIVED + timedelta(hours=23), None),
        (50.1, 19.9, RECEIVED + timedelta(hours=25), quality.FUTURE_FIX),
        (50.1, 19.9, datetime(1970, 1, 1, tzinfo=UTC), quality.EARLY_FIX),
    ],
)
def test_default_filters(lat: float, lon: float, when: datetime | None, reason: str | None) -> None:
    assert _problem(lat, lon, when) == reason


def test_filters_are_configurable() -> None:
    off = Filters(zero=False, earliest=None, future=0)
    assert _problem(0.0, 0.0, RECEIVED, f=off) is None
    assert _problem(1.0, 1.0, datetime(1980, 1, 1, tzinfo=UTC), f=off) is None
    assert _problem(1.0, 1.0, RECEIVED + timedelta(days=400), f=off) is None
    assert _problem(91.0, 1.0, RECEIVED, f=off) == quality.INVALID_POSITION  # never configurable
    # Traccar's filter.invalid and filter.past, off by default
    assert _problem(1.0, 1.0, RECEIVED, valid=False) is None
    assert _problem(1.0, 1.0, RECEIVED, valid=False, f=Filters(invalid=True)) == quality.INVALID_FIX
    week_ago = RECEIVED - timedelta(days=7)
    assert _problem(1.0, 1.0, week_ago) is None
    assert _problem(1.0, 1.0, week_ago, f=Filters(past=86400)) == quality.PAST_FIX
    assert _problem(1.0, 1.0, RECEIVED + timedelta(minutes=5), f=Filters(future=60)) == quality.FUTURE_FIX


def test_parse_earliest() -> None:
    assert parse_earliest("2000-01-01") == datetime(2000, 1, 1, tzinfo=UTC)
    assert parse_earliest("2010-06-01T00:00:00+02:00") == datetime(2010, 5, 31, 22, tzinfo=UTC)
    assert parse_earliest("") is None and parse_earliest("0") is None


def _frames(*fixes: Fix, alarm: str | None = None) -> list[bytes]:
    device = Gt06Device(IMEI)
    frames = [device.position(f) for f in fixes]
    if alarm:
        frames.append(device.alarm(fixes[-1], alarm))
    return frames


def test_refused_fixes_are_dead_letters_with_reason_and_status_is_kept() -> None:
    good = Fix(RECEIVED - timedelta(minutes=1), 50.1, 19.9)
    zero = Fix(RECEIVED - timedelta(minutes=1), 0.0, 0.0)
    future = Fix(RECEIVED + timedelta(days=30), 50.1, 19.9)
    counts: dict[str, int] = {}
    stored = 0
    for frame in _frames(good, zero, future):
        out = process(raw(frame, DEVICE, protocol="gt06"), {}.get)
        stored += len(out.positions)
        for dead in out.deadletters:
            counts[dead["reason"]] = counts.get(dead["reason"], 0) + 1
            assert dead["stage"] == "filter" and dead["raw"] == frame and dead["device_id"] == DEVICE
            assert "lat=" in dead["detail"] and "fix_time=" in dead["detail"]
            schemas.encode("deadletter", dead)
        assert out.status is not None and out.status["last_seen"] == RECEIVED  # the device was heard
    assert stored == 1
    assert counts == {quality.ZERO_POSITION: 1, quality.FUTURE_FIX: 1}


def test_filters_can_be_relaxed_in_process() -> None:
    [frame] = _frames(Fix(RECEIVED - timedelta(minutes=1), 0.0, 0.0))
    assert process(raw(frame, DEVICE, protocol="gt06"), {}.get).positions == []
    relaxed = process(raw(frame, DEVICE, protocol="gt06"), {}.get, filters=Filters(zero=False))
    assert [(p["latitude"], p["longitude"]) for p in relaxed.positions] == [(0.0, 0.0)]
    [old] = _frames(Fix(datetime(2005, 3, 1, tzinfo=UTC), 50.1, 19.9))
    assert process(raw(old, DEVICE, protocol="gt06"), {}.get).positions  # 2005 is after 2000
    strict = process(
        raw(old, DEVICE, protocol="gt06"), {}.get, filters=Filters(earliest=datetime(2010, 1, 1, tzinfo=UTC))
    )
    assert [d["reason"] for d in strict.deadletters] == [quality.EARLY_FIX]


def test_alarm_with_an_impossible_fix_is_still_an_event_at_receive_time() -> None:
    future = Fix(RECEIVED + timedelta(days=30), 50.1, 19.9)
    frames = _frames(future, alarm="sos")
    out = process(raw(frames[-1], DEVICE, protocol="gt06"), {}.get)
    assert out.positions == []
    [event] = out.events
    assert event["alarm"] == "sos" and event["time"] == RECEIVED
    assert event["latitude"] is None and event["longitude"] is None
    assert [d["reason"] for d in out.deadletters] == [quality.FUTURE_FIX]
