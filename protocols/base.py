"""The surface every protocol module implements: sans-I/O, bytes in, records out.

Nothing here touches a socket, Kafka or the clock.  The edge uses `detect`, a
`Framer` (TCP) or `split_datagram` (UDP) and `inspect` (device id + reply); the
stream workers use `decode`.  A protocol module subclasses `Codec` once and the
registry (`trackpipe.protocols.registry`) orders detection across them.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar


class Detection(enum.Enum):
    """Outcome of looking at the first bytes of a connection or datagram."""

    YES = "yes"  # this protocol, for sure (signature and first-frame checks pass)
    NO = "no"  # certainly not this protocol
    MORE = "more"  # the bytes so far are a prefix of this protocol's first frame


class ProtocolError(Exception):
    """A frame or byte run that cannot be used.  `reason` is short and stable
    (it lands in the dead-letter table); `detail` is free text for the log."""

    reason: ClassVar[str] = "protocol error"

    def __init__(self, detail: str = "", *, reason: str | None = None) -> None:
        super().__init__(detail or self.reason)
        if reason is not None:
            self.reason = reason
        self.detail = detail


class FramingError(ProtocolError):
    """The byte stream does not frame.  `discarded` holds the bytes the framer
    dropped (they go to the dead-letter topic).  When `fatal` the connection
    cannot be re-synchronised and must be closed (e.g. an oversized frame)."""

    reason = "framing"

    def __init__(
        self, detail: str = "", *, discarded: bytes = b"", fatal: bool = False, reason: str | None = None
    ) -> None:
        super().__init__(detail, reason=reason)
        self.discarded = discarded
        self.fatal = fatal


class ChecksumError(ProtocolError):
    reason = "checksum"


class DecodeError(ProtocolError):
    reason = "decode"


@dataclass(slots=True)
class FrameInfo:
    """What the edge needs from one frame, without decoding positions."""

    kind: str  # login | heartbeat | position | alarm | status | batch | other
    device_id: str | None = None  # id carried by this frame itself, if any
    reply: bytes | None = None  # bytes the device expects once the frame is durable
    clock_reply: bool = False  # the reply needs the server's clock: the edge calls Codec.reply_at


@dataclass(slots=True)
class Context:
    """What a decoder may know beyond the frame: nothing it must read from the world."""

    transport: str = "tcp"  # "tcp" | "udp"
    device_id: str | None = None  # identity learned by the edge (e.g. Carscop UB05, GT06 login)
    received_at: datetime | None = None  # edge receive time (UTC), for frames without a date
    options: Mapping[str, str] = field(default_factory=dict)  # per-protocol settings


@dataclass(slots=True)
class Record:
    """One normalized report.  Units: degrees WGS84, km/h, metres, volts, percent, UTC.

    `latitude`/`longitude` are None for a status-only report (heartbeat with
    battery level, alarm without a fix).  Alarm names use Traccar's vocabulary
    (`sos`, `vibration`, `powerCut`, `lowBattery`, `overspeed`, `tampering`,
    `movement`, `geofenceEnter`, `geofenceExit`, `hardBraking`, `general` ...).
    """

    fix_time: datetime | None = None  # timezone-aware UTC
    valid: bool = False
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    speed: float | None = None  # km/h
    course: float | None = None  # degrees
    satellites: int | None = None
    archive: bool = False  # buffered/offline point uploaded late
    alarms: list[str] = field(default_factory=list)
    battery_level: float | None = None  # percent
    battery: float | None = None  # volts (internal battery)
    power: float | None = None  # volts (external power)
    ignition: bool | None = None
    odometer: float | None = None  # metres
    attributes: dict[str, str] = field(default_factory=dict)  # protocol-specific, as text
    device_id: str | None = None  # set when the frame names a device other than the context's

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None


@dataclass(slots=True)
class Decoded:
    """Everything one frame says."""

    kind: str  # as FrameInfo.kind
    device_id: str | None = None  # id carried by the frame (None: use the context's)
    records: list[Record] = field(default_factory=list)


class Framer(ABC):
    """Incremental framer for a TCP byte stream (h11 `ReceiveBuffer` style).

    `feed` appends bytes; `next_frame` returns one whole frame or None when more
    bytes are needed.  A framer never rescans bytes it already searched: keep a
    scan offset so a slow or hostile sender costs O(bytes).  On garbage it raises
    `FramingError` after dropping the offending bytes (returned in `discarded`),
    so the caller can dead-letter them and call `next_frame` again; an oversized
    frame raises with `fatal=True`.
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @abstractmethod
    def next_frame(self) -> bytes | None: ...

    def take_rest(self) -> bytes:
        """Drop and return whatever is buffered (an incomplete frame at close)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


class Codec(ABC):
    """One tracker protocol.  Instances are stateless and shared.

    A module defines ``CODEC = MyCodec()`` and the registry finds it: `first_bytes`
    indexes it for detection (only codecs listed under a connection's first byte are
    asked), `priority` orders codecs sharing a first byte (lower first: the more
    specific signature), `aliases` are other corpus/Traccar names of the same wire
    format, `replies` says whether a device waits for answers, and `decoder_args`
    names Traccar's positional decoder arguments as option keys (None: ignored).
    """

    name: ClassVar[str]
    transports: ClassVar[frozenset[str]] = frozenset({"tcp", "udp"})
    #: the largest legitimate frame; bigger ones are rejected as hostile
    max_frame: ClassVar[int] = 4096
    #: every byte a first frame of this protocol can start with
    first_bytes: ClassVar[bytes] = b""
    priority: ClassVar[int] = 50
    aliases: ClassVar[tuple[str, ...]] = ()
    replies: ClassVar[bool] = False
    decoder_args: ClassVar[tuple[str | None, ...]] = ()

    @abstractmethod
    def detect(self, head: bytes, transport: str) -> Detection:
        """Decide from the first bytes of a TCP connection (or one UDP datagram)."""

    @abstractmethod
    def new_framer(self) -> Framer:
        """A fresh incremental framer for one TCP connection."""

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """The frames carried by one UDP datagram (raise FramingError if none)."""
        return [datagram]

    @abstractmethod
    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        """Cheap look at one whole frame: kind, id, reply.  Raises ChecksumError /
        DecodeError for frames that must not be acknowledged."""

    @abstractmethod
    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        """Full decode into normalized records.  Raises ProtocolError subclasses."""

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        """The reply to a frame whose FrameInfo has `clock_reply` (e.g. a time request),
        built with the time the caller passes in: codecs never read the clock."""
        return None


@dataclass(slots=True)
class Fix:
    """A position for device simulators to encode (see `DeviceSession`)."""

    time: datetime
    latitude: float
    longitude: float
    speed: float = 0.0  # km/h
    course: float = 0.0
    altitude: float = 0.0
    satellites: int = 8
    valid: bool = True


class DeviceSession(ABC):
    """Device side of a protocol, for `trackpipe simulate` and tests: it builds the
    frames a real unit sends.  Sans-I/O like the rest."""

    #: how this protocol's device ids look, for the simulator: (prefix, total length)
    id_shape: ClassVar[tuple[str, int]] = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        self.device_id = device_id
        self.transport = transport

    @abstractmethod
    def login(self) -> list[bytes]:
        """Frames sent right after connecting (may be empty)."""

    @abstractmethod
    def heartbeat(self) -> bytes: ...

    @abstractmethod
    def position(self, fix: Fix) -> bytes:
        """A live position report."""

    @abstractmethod
    def batch(self, fixes: list[Fix]) -> list[bytes]:
        """Buffered points uploaded late (archive=true when decoded)."""

    @abstractmethod
    def alarm(self, fix: Fix, alarm: str) -> bytes:
        """An alarm report; `alarm` is a normalized name such as 'sos'."""

    def expects_reply(self, frame: bytes) -> bool:
        """True when a real unit waits for the server's answer to `frame`."""
        return False

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        """True when `reply` is the right answer to `frame`."""
        return True
