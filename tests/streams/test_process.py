"""The decode/enrich step (`trackpipe.streams.process.process`) on real protocol frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.jt808 import Device as Jt808Device
from trackpipe.streams.process import process

from trackpipe import schemas, store

RECEIVED = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
REGISTRY = {"CC8011400042499": {"name": "Truck 7", "account": "acme"}}


def raw(frame: bytes, device_id: str | None = None, protocol: str = "carscop", **extra: Any) -> dict[str, Any]:
    return {
        "frame": frame,
        "protocol": protocol,
        "kind": "position",
        "device_id": device_id,
        "transport": "tcp",
        "peer_host": "203.0.113.5",
        "peer_port": 40001,
        "local_port": 8888,
        "connection_id": "edge-1-7",
        "edge_id": "edge-1",
        "received_at": RECEIVED,
        "seq": 3,
    } | extra


LOGIN = b"*150817160254UB05CC8011400042499160254A2106.8799S14910.2583E000.0150817158.3511111111L000000^"
LIVE = b"*261124115959UD00115959A5009.1747N01910.3829E000.0261124298.2811000000L000100^"
BUFFERED = b"*160728045706UD04045706A1202.7738S07658.6489W015.5160728247.8911111111L002626^"
ALARM = b"*261124115958UA012Hi-jack115958A2934.0133N10627.2544E000.0261124309.6200000000L000000^"
HEARTBEAT = b"*261124115959UB00HSO^"


def test_login_position_is_enriched_from_the_registry() -> None:
    out = process(raw(LOGIN, "CC8011400042499"), REGISTRY.get)
    [pos] = out.positions
    assert pos["device_id"] == "CC8011400042499"
    assert (pos["device_name"], pos["account"], pos["registered"]) == ("Truck 7", "acme", True)
    assert pos["latitude"] < 0 and pos["longitude"] > 0  # S / E hemispheres
    assert pos["server_time"] == RECEIVED and pos["protocol"] == "carscop"
    assert out.status is not None and out.status["kind"] == "login"
    # round trip through the topic schema
    assert schemas.decode("positions", schemas.encode("positions", pos))["device_id"] == "CC8011400042499"


def test_unknown_device_is_stored_unregistered() -> None:
    out = process(raw(LIVE, "CC0000000000001"), REGISTRY.get)
    [pos] = out.positions
    assert (pos["device_name"], pos["account"], pos["registered"]) == ("", "", False)
    assert pos["archive"] is False
    assert pos["fix_time"] == datetime(2026, 11, 24, 11, 59, 59, tzinfo=UTC)


def test_buffered_point_is_archive() -> None:
    out = process(raw(BUFFERED, "CC8011400042499"), REGISTRY.get)
    [pos] = out.positions
    assert pos["archive"] is True
    assert pos["fix_time"] == datetime(2016, 7, 28, 4, 57, 6, tzinfo=UTC)


def test_late_live_point_is_archive() -> None:
    late = process(raw(LIVE, "X1"), REGISTRY.get, late_after=timedelta(seconds=0.5))
    fresh = process(raw(LIVE, "X1"), REGISTRY.get, late_after=timedelta(minutes=10))
    assert late.positions[0]["archive"] is True
    assert fresh.positions[0]["archive"] is False


def test_alarm_becomes_an_event_with_time_position_and_device() -> None:
    out = process(raw(ALARM, "CC8011400042499"), REGISTRY.get)
    [event] = out.events
    assert event["alarm"] == "sos" and event["type"] == "alarm"
    assert event["device_id"] == "CC8011400042499" and event["device_name"] == "Truck 7"
    assert event["latitude"] == out.positions[0]["latitude"]
    assert event["time"] == datetime(2026, 11, 24, 11, 59, 58, tzinfo=UTC)
    assert event["attributes"].get("alarmText") == "2Hi-jack"
    assert out.positions[0]["alarms"] == ["sos"]
    schemas.encode("events", event)


def test_heartbeat_updates_status_only() -> None:
    out = process(raw(HEARTBEAT, "CC8011400042499"), REGISTRY.get)
    assert out.positions == [] and out.events == [] and out.deadletters == []
    assert out.status is not None and out.status["kind"] == "heartbeat"
    assert out.status["last_seen"] == RECEIVED
    assert set(out.status) == set(store.COLUMNS["device_status"])  # a device_status row as it is


def test_frame_without_a_known_device_is_dead_lettered() -> None:
    out = process(raw(LIVE, None), REGISTRY.get)
    assert out.positions == []
    [dead] = out.deadletters
    assert dead["reason"] == "unidentified" and dead["raw"] == LIVE and dead["stage"] == "decode"
    assert dead["peer"] == "203.0.113.5:40001"
    schemas.encode("deadletter", dead)


def test_undecodable_frame_is_dead_lettered_with_the_reason() -> None:
    out = process(raw(b"*261124115959UD00garbage^", "X1"), REGISTRY.get)
    [dead] = out.deadletters
    assert dead["reason"] != "" and dead["raw"] == b"*261124115959UD00garbage^"
    assert out.positions == []


def test_unknown_protocol_is_dead_lettered() -> None:
    out = process(raw(b"xyz", "X1", protocol="nosuch"), REGISTRY.get)
    assert [d["reason"] for d in out.deadletters] == ["unknown protocol"]


def test_impossible_coordinates_are_dead_lettered() -> None:
    # Carscop's decoder refuses a 95-degree latitude itself ...
    bad = b"*261124115959UD00115959A9509.1747N01910.3829E000.0261124298.2811000000L000100^"
    assert [d["reason"] for d in process(raw(bad, "X1"), REGISTRY.get).deadletters] == ["decode"]
    # ... JT808's integer micro-degrees can carry one, and the stream refuses it
    device = Jt808Device("013912345678", "tcp")
    frame = device.position(Fix(datetime(2026, 11, 24, 11, 0, 0, tzinfo=UTC), 95.0, 10.0))
    out = process(raw(frame, "13912345678", protocol="jt808"), REGISTRY.get)
    assert out.positions == []
    assert [d["reason"] for d in out.deadletters] == ["invalid position"]


def test_device_options_reach_the_decoder() -> None:
    """Carscop speed in knots by default; `speed_unit=kmh` on the device (or protocol-wide
    in the environment) changes what the decoder reports."""
    fast = b"*261124115959UD00115959A5009.1747N01910.3829E050.0261124298.2811000000L000100^"
    default = process(raw(fast, "CC8011400042499"), REGISTRY.get).positions[0]["speed"]
    assert default == 50.0 * 1.852
    per_device = {"CC8011400042499": REGISTRY["CC8011400042499"] | {"options": {"speed_unit": "kmh"}}}
    assert process(raw(fast, "CC8011400042499"), per_device.get).positions[0]["speed"] == 50.0
    env_wide = {"carscop.speed_unit": "kmh", "jt808.timezone": "0"}
    assert process(raw(fast, "CC8011400042499"), REGISTRY.get, options=env_wide).positions[0]["speed"] == 50.0
    # the device's own setting wins over the protocol-wide default
    knots = {"CC8011400042499": {"name": "T", "account": "", "options": {"carscop.speed_unit": "knots"}}}
    assert process(raw(fast, "CC8011400042499"), knots.get, options=env_wide).positions[0]["speed"] == default


def test_bad_device_option_is_a_dead_letter() -> None:
    bad = {"CC8011400042499": {"name": "T", "account": "", "options": {"speed_unit": "furlongs"}}}
    out = process(raw(LIVE, "CC8011400042499"), bad.get)
    assert not out.positions
    assert [d["reason"] for d in out.deadletters] == ["config"]
