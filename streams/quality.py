"""Position quality, as Traccar's `filter.*`: which decoded fixes are not stored as positions.

A refused fix is not dropped: `process` keeps it as a dead letter (stage "filter", the reason
below, the frame's bytes), the device's status still counts the frame, and alarms it carried are
still events (at the receive time when the fix time is impossible).  Pure: no clock, no I/O.

Bounding the fix time also bounds what the store is asked to hold: `positions` and `events`
are partitioned by year of the fix time, so with the default `earliest` (2000) and `future`
(1 day) a batch touches at most (this year - 2000 + 2) partitions, far below ClickHouse's
100-partitions-per-INSERT limit, whatever the devices' clocks say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: dead-letter reasons (short and stable: the `deadletter.reason` column)
INVALID_POSITION = "invalid position"  # latitude/longitude out of range or not finite (always on)
ZERO_POSITION = "zero position"  # exactly (0, 0)               TRACKPIPE_FILTER_ZERO
EARLY_FIX = "fix time too early"  # before `earliest`           TRACKPIPE_FILTER_EARLIEST
FUTURE_FIX = "fix time in future"  # beyond receipt + `future`  TRACKPIPE_FILTER_FUTURE
PAST_FIX = "fix time too old"  # before receipt - `past`        TRACKPIPE_FILTER_PAST
INVALID_FIX = "invalid fix"  # device flagged the fix invalid   TRACKPIPE_FILTER_INVALID


@dataclass(frozen=True, slots=True)
class Filters:
    zero: bool = True  # refuse (0, 0)
    invalid: bool = False  # refuse fixes the device marks invalid (Traccar filter.invalid; off by default)
    earliest: datetime | None = datetime(2000, 1, 1, tzinfo=UTC)  # None: no lower bound
    future: float = 86400.0  # s a fix may be ahead of its receipt; 0: no bound
    past: float = 0.0  # s a fix may be behind its receipt (Traccar filter.past); 0: no bound


def time_problem(fix_time: datetime, received: datetime, filters: Filters) -> str | None:
    """The reason a fix time is impossible, or None."""
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
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return INVALID_POSITION
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return INVALID_POSITION
    if filters.zero and latitude == 0.0 and longitude == 0.0:
        return ZERO_POSITION
    if filters.invalid and not valid:
        return INVALID_FIX
    if fix_time is not None:
        return time_problem(fix_time, received, filters)
    return None


def parse_earliest(text: str) -> datetime | None:
    """`2000-01-01` (or any ISO date/time, UTC unless given) -> datetime; empty or `0` -> no bound."""
    text = text.strip()
    if text in ("", "0"):
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


DEFAULT_FILTERS = Filters()
