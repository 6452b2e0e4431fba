"""`trackpipe geofences`: the topic record format and the CLI's checks before Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from trackpipe.streams.geofence import Circle, Polygon, contains, from_json

from trackpipe import cli
from trackpipe.geofences import decode_record, encode_record, list_row, new_record, parse_devices

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_record_round_trip_with_devices() -> None:
    record = new_record(" depot ", Circle(48.85, 2.35, 250.0), parse_devices("A1, ,B2"), NOW)
    data = encode_record(record)
    back = decode_record(data)
    assert back == record and back.fence.id == "depot" and back.devices == {"A1", "B2"}
    assert from_json(data).shape == record.fence.shape  # the shape part is geofence.to_json's
    assert back.applies_to("A1") and not back.applies_to("C3")
    assert list_row(back)[:2] == ["depot", "circle"] and list_row(back)[3] == "A1,B2"


def test_no_devices_means_every_device() -> None:
    record = new_record("zone", Polygon(((48.0, 2.0), (48.0, 2.1), (48.1, 2.1))), parse_devices(None), NOW)
    back = decode_record(encode_record(record))
    assert back.applies_to("anyone") and list_row(back)[3] == "(all)"
    assert contains(back.fence, 48.01, 2.09)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"id": "x"}', orjson.dumps({"id": "x", "shape": {"type": "circle"}}),
     orjson.dumps({"id": "x", "shape": {"type": "circle", "latitude": 1, "longitude": 2, "radius": 3},
                   "devices": "A1"})],
)  # fmt: skip
def test_garbage_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(data)


@pytest.mark.parametrize(
    "argv",
    [
        ["geofences", "add", "x", "--circle", "48,2"],
        ["geofences", "add", "x", "--circle", "91,2,10"],
        ["geofences", "add", "x", "--circle", "48,2,-5"],
        ["geofences", "add", "x", "--polygon", "48 2, 48 3"],
        ["geofences", "add", " ", "--circle", "48,2,10"],
    ],
)
def test_bad_shapes_exit_2_before_kafka(argv: list[str], tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trackpipe: error:") and "Kafka" not in err


def test_a_shape_is_required(tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["geofences", "add", "x", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2
