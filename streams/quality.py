"""Position quality, as Traccar's `filter.*`: which decoded fixes are not stored as positions.

A refused fix is not dropped: `process` keeps it as a dead letter (stage "filter", the reason
below, the frame's bytes), the device's status still counts the frame, and alarms it carried are
still events (at the receive time when the fix time is impossible).  Pure: no clock, no I/O.

Bounding the fix time also bounds what the store is asked to hold: `positions` and `events`
are partitioned by year of the fix time, so with the default `earliest` (2000) and `future`
(1 day) a batch touches at most (this year - 2000 + 2) partitions, far below ClickHouse's
100-partitions-per-INSERT limit, whatever the devices' clocks say.

Guards against decoder bugs: a zoneless fix time is refused (`ZONELESS_FIX`), a coordinate that
is no double is an invalid position, and `record_problem` names any value of a record that no
topic or table can hold (fuzzed: tests/test_fuzz.py, tests/fuzz_rows.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe.protocols.base import Record

#: dead-letter reasons (short and stable: the `deadletter.reason` column)
INVALID_POSITION = "invalid position"  # latitude/longitude out of range or not finite (always on)
ZERO_POSITION = "zero position"  # exactly (0, 0)               TRACKPIPE_FILTER_ZERO
EARLY_FIX = "fix time too early"  # before `earliest`           TRACKPIPE_FILTER_EARLIEST
FUTURE_FIX = "fix time in future"  # beyond receipt + `future`  TRACKPIPE_FILTER_FUTURE
PAST_FIX = "fix time too old"  # before receipt - `past`        TRACKPIPE_FILTER_PAST
INVALID_FIX = "invalid fix"  # device flagged the fix invalid   TRACKPIPE_FILTER_INVALID
ZONELESS_FIX = "fix time without zone"  # a naive datetime (a decoder bug): never guessed (always on)
INVALID_RECORD = "invalid record"  # a value no topic or table can hold (`record_problem`; a decoder bug)


@dataclass(frozen=True, slots=True)
class Filters:
    zero: bool = True  # refuse (0, 0)
    invalid: bool = False  # refuse fixes the device marks invalid (Traccar filter.invalid; off by default)
    earliest: datetime | None = datetime(2000, 1, 1, tzinfo=UTC)  # None: no lower bound
    future: float = 86400.0  # s a fix may be ahead of its receipt; 0: no bound
    past: float = 0.0  # s a fix may be behind its receipt (Traccar filter.past); 0: no bound


def time_problem(fix_time: datetime, received: datetime, filters: Filters) -> str | None:
    """The reason a fix time is impossible, or None."""
    if fix_time.utcoffset() is None:  # comparing it would raise; reading it as UTC could shift it by hours
        return ZONELESS_FIX
    if filters.earliest is not None and fix_time < filters.earliest:
        return EARLY_FIX
    if filters.future > 0 and fix_time > received + timedelta(seconds=filters.future):
        return FUTURE_FIX
    if filters.past > 0 and fix_time < received - timedelta(seconds=filters.past):
        return PAST_FIX
    return None


def position_problem(
    latitude: float,
    longitude: float,
    fix_time: datetime | None,
    valid: bool,
    received: datetime,
    filters: Filters,
) -> str | None:
    """The reason a fix is not stored as a position, or None (`fix_time` None: the receive time is used)."""
    problem = coordinate_problem(latitude, longitude, valid, filters)
    if problem is None and fix_time is not None:
        return time_problem(fix_time, received, filters)
    return problem


def coordinate_problem(latitude: float, longitude: float, valid: bool, filters: Filters) -> str | None:
    """The reason a fix is refused whatever its time (coordinates, validity), or None.
    `position_problem` is this, then `time_problem` of the fix time."""
    plain = type(latitude) is float and type(longitude) is float  # then the range check below suffices
    if not plain and not (_finite(latitude) and _finite(longitude)):
        return INVALID_POSITION
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):  # NaN and inf fail here too
        return INVALID_POSITION
    if filters.zero and latitude == 0.0 and longitude == 0.0:
        return ZERO_POSITION
    if filters.invalid and not valid:
        return INVALID_FIX
    return None


def _finite(value: Any) -> bool:
    """A finite number a double holds (not a bool, not an int beyond 1.8e308)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_NUMBERS = ("latitude", "longitude", "altitude", "speed", "course", "battery_level", "battery", "power", "odometer")
_MAX_SATELLITES = 65535  # the store's UInt16


def is_text(value: Any) -> bool:
    """A str that UTF-8 encodes (Avro and ClickHouse refuse lone surrogates)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: neither Avro nor ClickHouse takes it
        return False
    return True


def _plainly_fits(rec: Record) -> bool:
    """True when every value of `rec` is of the plain type its field declares (float, int in
    range, bool, aware-or-naive datetime, UTF-8 str): then `record_problem` finds nothing.  False
    says nothing; `record_problem` then looks field by field.  One pass of identity checks: every
    decoded record goes through it."""
    for value in (
        rec.latitude,
        rec.longitude,
        rec.altitude,
        rec.speed,
        rec.course,
        rec.battery_level,
        rec.battery,
        rec.power,
        rec.odometer,
    ):
        if value is not None and type(value) is not float:
            return False
    sats = rec.satellites
    if sats is not None and not (type(sats) is int and 0 <= sats <= _MAX_SATELLITES):
        return False
    ignition = rec.ignition
    if not (
        (rec.valid is True or rec.valid is False)
        and (rec.archive is True or rec.archive is False)
        and (ignition is None or ignition is True or ignition is False)
    ):
        return False
    if rec.fix_time is not None and type(rec.fix_time) is not datetime:
        return False
    device_id = rec.device_id
    if device_id is not None and type(device_id) is not str:
        return False
    try:  # every text of the record at once: join refuses a non-str, encode a lone surrogate
        text = "".join(rec.alarms) + "".join(rec.attributes) + "".join(rec.attributes.values()) + (device_id or "")
    except Exception:  # a decoder bug (a non-str, attributes no dict ...): record_problem names it
        return False
    return is_text(text)


def record_problem(rec: Record) -> str | None:
    """What in a decoded record no topic or table can hold (a value outside `Record`'s types:
    a decoder bug), as a dead-letter detail; None when every field fits.  Numbers may be NaN or
    infinite (the position check refuses those as coordinates); they must be numbers a double holds."""
    return None if _plainly_fits(rec) else field_problem(rec)


def field_problem(rec: Record) -> str | None:
    """`record_problem` field by field (what it falls back to when `_plainly_fits` is not sure)."""
    for name in _NUMBERS:
        value = getattr(rec, name)
        if value is not None and not (isinstance(value, float) or _finite(value)):  # NaN and inf are doubles
            return f"{name}: {type(value).__name__} {_brief(value)} is not a double"
    sats = rec.satellites
    if sats is not None and (isinstance(sats, bool) or not isinstance(sats, int) or not 0 <= sats <= _MAX_SATELLITES):
        return f"satellites: {_brief(sats)} is not a count 0..{_MAX_SATELLITES}"
    for name in ("valid", "archive", "ignition"):
        value = getattr(rec, name)
        if not isinstance(value, bool) and not (value is None and name == "ignition"):
            return f"{name}: {_brief(value)} is not a boolean"
    if rec.fix_time is not None and not isinstance(rec.fix_time, datetime):  # a naive one: filtered (alarms kept)
        return f"fix_time: {_brief(rec.fix_time)} is not a time"
    if rec.device_id is not None and not is_text(rec.device_id):
        return f"device_id: {_brief(rec.device_id)} is not UTF-8 text"
    if not all(is_text(alarm) for alarm in rec.alarms):
        return f"alarms: {_brief(rec.alarms)} are not all UTF-8 text"
    for key, value in rec.attributes.items():
        if not (is_text(key) and is_text(value)):
            return f"attributes: {_brief(key)} -> {_brief(value)} is not UTF-8 text to text"
    return None


def _brief(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else f"{text[:50]}...({len(text)} chars)"


def parse_earliest(text: str) -> datetime | None:
    """`2000-01-01` (or any ISO date/time, UTC unless given) -> datetime; empty or `0` -> no bound."""
    text = text.strip()
    if text in ("", "0"):
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


DEFAULT_FILTERS = Filters()


def filters_of(settings: Any) -> Filters:
    """The filters a deployment's settings (trackpipe.config.Settings) ask for."""
    return Filters(
        zero=settings.filter_zero,
        invalid=settings.filter_invalid,
        earliest=parse_earliest(settings.filter_earliest),
        future=settings.filter_future,
        past=settings.filter_past,
    )
