"""Real device captures of every supported protocol through `trackpipe run`: each capture
that frames on its own and names its device is sent over a real loopback socket (every
transport its protocol serves), the replies the device waits for are checked byte for byte,
and the positions it decodes to must be rows.  Also: a listener pinned to one protocol
(`TRACKPIPE_PORTS`) takes frames no detection is asked about."""

from __future__ import annotations

import importlib
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, ProtocolError
from trackpipe.protocols.devices.gt06 import Device as Gt06Device
from trackpipe.streams.quality import DEFAULT_FILTERS, position_problem

from trackpipe import conformance
from trackpipe.simulate import track

from .. import vectors
from .conftest import Pipeline

pytestmark = pytest.mark.e2e
PER_CASE = 6
_NOW = datetime.now(UTC)  # what the filters compare fix times with (receipt: about now)
#: Traccar's frame decoders strip these before its decoder tests see a frame; on the wire they are there
TERMINATORS = (
    b"\r\n",
    b"\n",
    b"^",
    b"#",
    b"\x00",
    b";",
    b"$",
    b"*",
)  # captures per protocol and transport: enough to cover its message kinds, quick


def _frames(codec: Codec, data: bytes, transport: str) -> list[bytes] | None:
    """The frames of a capture as the edge would cut them, None unless all of it frames."""
    try:
        if transport == "udp":
            return codec.split_datagram(data)
        framer = codec.new_framer()
        framer.feed(data)
        frames = []
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
        return frames if frames and not framer.buffered else None
    except ProtocolError:
        return None


def _login(codec: Codec, transport: str, n: int) -> tuple[str, list[bytes]] | None:
    """A device id and the login frames of the protocol's device side, for captures whose
    frames rely on the connection (or UDP source) for the device's identity."""
    try:
        device_cls = importlib.import_module(f"trackpipe.protocols.devices.{codec.name}").Device
    except ModuleNotFoundError:
        return None
    prefix, length = device_cls.id_shape
    device_id = prefix + str(900 + n).zfill(length - len(prefix))
    frames = device_cls(device_id, transport).login()
    return (device_id, frames) if frames else None


def _usable(codec: Codec, record: dict[str, Any], transport: str, n: int) -> tuple[list[bytes], bytes, set] | None:
    """(what to send: one stream or the datagrams, replies expected, {(device, fix time)}) of a
    capture fit to send alone,
    after the device side's login where the capture itself names no device."""
    options = conformance.options_of(record, codec)
    if options:
        return None  # decoder options are per device in the registry; not set up here
    raw = conformance.payload(record)
    for data in (raw, *(raw + end for end in TERMINATORS if not raw.endswith(end))):
        found = _usable_as(codec, data, transport, n)
        if found is not None:
            return found
    return None


def _usable_as(codec: Codec, data: bytes, transport: str, n: int) -> tuple[list[bytes], bytes, set] | None:
    if registry.detect(data, transport).codec is not codec:
        return None
    for attempt in range(2):
        login = None if attempt == 0 else _login(codec, transport, n)
        if attempt and login is None:
            break
        sent = [*(login[1] if login else ()), data]
        # the edge frames the whole stream with one framer (framers may learn from a login)
        stream = [b"".join(sent)] if transport == "tcp" else sent
        framed = [_frames(codec, chunk, transport) for chunk in stream]
        if any(f is None for f in framed):
            continue
        got = _expect(codec, transport, [f for fs in framed for f in fs or ()], login)
        if got is not None:
            replies, points = got
            return stream, replies, points
    return None


def _expect(
    codec: Codec, transport: str, frames: list[bytes], login: tuple[str, list[bytes]] | None
) -> tuple[bytes, set] | None:
    """(replies, {(device, fix time)}) the edge and worker must give for these frames."""
    replies, points = b"", set()
    device = login[0] if login else None
    login_frames = set(login[1]) if login else set()
    first, second = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    for frame in frames:
        try:
            info = codec.inspect(frame, transport)
            device = info.device_id or device
            decoded = codec.decode(frame, Context(transport, device, first, {}))
            again = codec.decode(frame, Context(transport, device, second, {}))
        except ProtocolError:
            return None
        if info.clock_reply:
            return None  # the reply carries the edge's clock
        replies += info.reply or b""
        device = decoded.device_id or device
        if frame in login_frames:
            continue
        for rec, rec2 in zip(decoded.records, again.records, strict=True):
            who = rec.device_id or device
            if rec.has_position:
                if who is None or rec.fix_time is None or rec.fix_time != rec2.fix_time:
                    return None  # no identity, or a fix time taken from the receive time
                if position_problem(rec.latitude, rec.longitude, rec.fix_time, rec.valid, _NOW, DEFAULT_FILTERS):
                    return None  # refused by the position filters (streams.quality): a dead letter, no row
                points.add((who, rec.fix_time.replace(microsecond=rec.fix_time.microsecond // 1000 * 1000)))
    return (replies, points) if points else None


def _cases() -> list[tuple[str, str]]:
    return [(c.name, t) for c in registry.CODECS for t in sorted(c.transports)]


def _exchange(
    pipeline: Pipeline, transport: str, chunks: list[bytes], replies: bytes, port: int | None = None
) -> bytes:
    """Send the chunks (TCP: on one connection; UDP: as datagrams from one source) and read the replies."""
    port = port or pipeline.port
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(10)
            for datagram in chunks:
                sock.sendto(datagram, (pipeline.host, port))
            got = b""
            while len(got) < len(replies):
                got += sock.recv(65536)
            return got
    with socket.create_connection((pipeline.host, port), timeout=10) as sock:
        sock.sendall(b"".join(chunks))
        got = b""
        while len(got) < len(replies):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


@pytest.mark.parametrize(("protocol", "transport"), _cases(), ids=[f"{p}-{t}" for p, t in _cases()])
def test_real_captures_stored_and_answered(pipeline: Pipeline, protocol: str, transport: str) -> None:
    vectors.require()
    codec = registry.get(protocol)
    usable = []
    for record in vectors.samples():
        if registry.supported(record["protocol"]) and registry.get(record["protocol"]) is codec:
            case = _usable(codec, record, transport, len(usable))
            if case is not None and all(case[2].isdisjoint(u[2]) for u in usable):
                usable.append(case)
        if len(usable) >= PER_CASE:
            break
    if not usable:
        pytest.skip(f"no {protocol} capture frames alone over {transport} with a device id and a dated fix")
    expected = set()
    for data, replies, points in usable:
        assert _exchange(pipeline, transport, data, replies) == replies
        expected |= points
    ids = ", ".join(f"'{d}'" for d in sorted({d for d, _ in expected}))
    rows = pipeline.wait_rows(
        f"SELECT device_id, fix_time FROM positions FINAL WHERE protocol = '{codec.name}' AND device_id IN ({ids})",
        lambda r: {(x["device_id"], _utc(x["fix_time"])) for x in r} >= expected,
    )
    assert {(x["device_id"], _utc(x["fix_time"])) for x in rows} >= expected


def _utc(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def test_pinned_port_takes_its_protocol_without_detection(pipeline: Pipeline) -> None:
    port = pipeline.pinned_gt06  # type: ignore[attr-defined]
    device = Gt06Device("359000000009001", "tcp")
    login = device.login()[0]
    fix = track(9, 1, datetime.now(UTC))
    position = device.position(fix)
    codec = registry.get("gt06")
    want = (codec.inspect(login, "tcp").reply or b"") + (codec.inspect(position, "tcp").reply or b"")
    assert _exchange(pipeline, "tcp", [login + position], want, port=port) == want
    rows = pipeline.wait_rows(
        "SELECT device_id FROM positions FINAL WHERE device_id = '359000000009001'", lambda r: len(r) >= 1
    )
    assert [r["device_id"] for r in rows] == ["359000000009001"]
    # bytes of another protocol on the pinned port are GT06 garbage (dead-lettered), never re-detected
    with socket.create_connection((pipeline.host, port), timeout=10) as sock:
        sock.sendall(b"*HQ,4106011660,V1,#")
        dead = pipeline.wait_rows(
            f"SELECT reason, protocol FROM deadletter WHERE local_port = {port}", lambda r: len(r) >= 1
        )
    assert [(d["reason"], d["protocol"]) for d in dead] == [("garbage", "gt06")]
