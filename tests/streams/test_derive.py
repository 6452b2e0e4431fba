"""The worker's glue around the rules (streams/derive.py): settings per device, fix-time order
within a batch, the event key, the offline tick and the staged/committed state book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe.streams import derive
from trackpipe.streams.geofence import Circle, Geofence
from trackpipe.streams.rules import DeviceState, RuleSettings

from trackpipe.config import Settings
from trackpipe.geofences import FenceRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _row(device: str, second: float, lat: float = 48.0, lon: float = 2.0, **extra: Any) -> dict[str, Any]:
    when = T0 + timedelta(seconds=second)
    row = {
        "device_id": device,
        "protocol": "gt06",
        "fix_time": when,
        "server_time": extra.pop("server_time", when),
        "valid": True,
        "latitude": lat,
        "longitude": lon,
        "speed": 0.0,
        "archive": False,
        "attributes": {},
    }
    return row | extra


def test_base_settings_follow_the_configuration() -> None:
    config = Settings(offline_after=30.0, speed_limit=90.0, trip_duration=10.0, parking_duration=20.0)
    base = derive.base_settings(config)
    assert base.offline_timeout == timedelta(seconds=30)
    assert base.speed_limit_kmh == 90.0
    assert base.min_trip_duration == timedelta(seconds=10)
    assert base.min_parking_duration == timedelta(seconds=20)
    assert derive.base_settings(Settings()).speed_limit_kmh is None  # 0: no limit


def test_registry_entry_wins_and_fences_are_filtered_by_device() -> None:
    base = RuleSettings(speed_limit_kmh=100.0, offline_timeout=timedelta(seconds=600))
    everywhere = FenceRecord(Geofence("depot", "depot", Circle(48.0, 2.0, 100.0)))
    only_b = FenceRecord(Geofence("yard", "yard", Circle(48.5, 2.5, 100.0)), frozenset({"B"}))
    a = derive.settings_for(base, "A", {"speed_limit": 50.0, "offline_after": 5.0}, [everywhere, only_b])
    assert a.speed_limit_kmh == 50.0 and a.offline_timeout == timedelta(seconds=5)
    assert [f.id for f in a.geofences] == ["depot"]
    b = derive.settings_for(base, "B", {"speed_limit": None}, [everywhere, only_b])
    assert b.speed_limit_kmh == 100.0 and b.offline_timeout == timedelta(seconds=600)
    assert [f.id for f in b.geofences] == ["depot", "yard"]
    unregistered = derive.settings_for(base, "C", None, [])
    assert unregistered.geofences == () and unregistered.speed_limit_kmh == 100.0


def test_batch_is_applied_in_fix_time_order_per_device() -> None:
    """Rows arrive out of fix order within a batch (a buffer upload beside live points): sorted
    per device, a fence entered then left gives enter before exit, no duplicate transitions."""
    fence = Geofence("depot", "depot", Circle(48.0, 2.0, 200.0))
    settings = RuleSettings(geofences=(fence,), segment_crossing=False)
    rows = [_row("A", 20, lat=48.1), _row("A", 0, lat=48.1), _row("A", 10, lat=48.0), _row("B", 5)]
    out = derive.derive(rows, lambda _d: None, lambda _d: settings)
    kinds = [(e["device_id"], e["type"]) for e, _ in out.events]
    assert kinds == [
        ("A", "deviceOnline"),
        ("A", "geofenceEnter"),
        ("A", "geofenceExit"),
        ("B", "deviceOnline"),
        ("B", "geofenceEnter"),
    ]
    enter = next(e for e, _ in out.events if e["type"] == "geofenceEnter" and e["device_id"] == "A")
    assert enter["key"] == "depot" and enter["time"] == T0 + timedelta(seconds=10)
    assert all(e["key"] == "" for e, _ in out.events if not e["type"].startswith("geofence"))
    assert out.states["A"].fix_time == T0 + timedelta(seconds=20)
    source = next(row for e, row in out.events if e["type"] == "geofenceExit")
    assert source["fix_time"] == T0 + timedelta(seconds=20)  # each event keeps the row that raised it


def test_state_carries_over_between_batches_and_bad_rows_are_failures() -> None:
    settings = RuleSettings()
    first = derive.derive([_row("A", 0)], lambda _d: None, lambda _d: settings)
    state = first.states["A"]
    bad = _row("A", 10)
    bad["latitude"] = "north"
    second = derive.derive([bad, _row("A", 20)], lambda _d: state, lambda _d: settings)
    assert [e["type"] for e, _ in second.events] == []  # online already: no second deviceOnline
    assert len(second.failures) == 1 and "latitude" in second.failures[0][1]
    assert second.states["A"].fix_time == T0 + timedelta(seconds=20)
    nameless = derive.derive([_row("", 0)], lambda _d: None, lambda _d: settings)
    assert nameless.failures and not nameless.events


def test_heartbeat_only_devices_go_online_from_their_contact_row() -> None:
    settings = RuleSettings()
    beat = {"device_id": "H", "protocol": "gt06", "last_seen": T0, "device_name": "", "registered": False}
    both = {"device_id": "A", "protocol": "gt06", "last_seen": T0 + timedelta(seconds=5)}
    out = derive.derive([_row("A", 0)], lambda _d: None, lambda _d: settings, [beat, both])
    assert sorted((e["device_id"], e["type"]) for e, _ in out.events) == [("A", "deviceOnline"), ("H", "deviceOnline")]
    source = next(row for e, row in out.events if e["device_id"] == "H")
    assert source is beat  # the event keeps the row (and so the frame) that raised it
    assert out.states["H"].online and out.states["A"].last_seen == T0 + timedelta(seconds=5)
    bad = derive.derive([], lambda _d: None, lambda _d: settings, [beat | {"last_seen": None}])
    assert bad.failures and not bad.events


def test_tick_raises_offline_once_the_timeout_elapsed() -> None:
    settings = RuleSettings(offline_timeout=timedelta(seconds=30))
    state = derive.derive([_row("A", 0)], lambda _d: None, lambda _d: settings).states["A"]
    changed, events = derive.tick([("A", state)], T0 + timedelta(seconds=29), lambda _d: settings)
    assert changed == {} and events == []
    changed, events = derive.tick([("A", state)], T0 + timedelta(seconds=31), lambda _d: settings)
    assert [e["type"] for e in events] == ["deviceOffline"] and events[0]["key"] == ""
    assert events[0]["time"] == T0 + timedelta(seconds=30)
    assert changed["A"].online is False
    again, more = derive.tick(changed.items(), T0 + timedelta(seconds=90), lambda _d: settings)
    assert again == {} and more == []


@dataclass
class _Table:
    data: dict[str, DeviceState]

    def write(self, device_id: str, state: DeviceState) -> None:
        self.data[device_id] = state


def test_state_book_commits_in_stage_order_whatever_the_finish_order() -> None:
    committed = _Table({"A": DeviceState(device_id="A", online=False)})
    book = derive.StateBook(committed.data.get)
    assert book.get("A") is committed.data["A"]
    first = book.stage({"A": DeviceState(device_id="A", online=True)})
    second = book.stage({"A": DeviceState(device_id="A", online=False, protocol="x")})
    assert book.get("A").protocol == "x"  # the newest staged state, before any commit
    assert committed.data["A"].online is False  # nothing written before the events are stored
    book.commit(second, committed.write)
    book.commit(first, committed.write)  # finished later, staged earlier: must not win
    assert committed.data["A"].protocol == "x"
    assert book.staged_ids() == set()
    third = book.stage({"B": DeviceState(device_id="B")})
    assert book.staged_ids() == {"B"} and "B" not in committed.data
    book.commit(third, committed.write)
    assert "B" in committed.data
