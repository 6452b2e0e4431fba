"""Geofence geometry, pure: circles and polygons, point containment, segment crossing,
parsing from the CLI syntax and to/from JSON bytes (a record of a compacted topic).

Geometry decisions (tested in tests/streams/test_geofence.py):

* Circle: a point is inside when its great-circle (haversine) distance to the centre is at
  most the radius **plus 1 cm** (`EDGE_TOLERANCE_M`), so a point on the circle counts as inside
  whatever the rounding of the trigonometry.
* Polygon: vertices are (latitude, longitude); every edge is a straight line in the
  latitude/longitude plane (as Traccar's polygons) and goes the **short way round** in longitude,
  so a polygon whose vertices sit on both sides of ±180° covers the antimeridian instead of
  wrapping round the globe.  An edge spanning exactly 180° of longitude is ambiguous and refused,
  as is a polygon that encircles a pole, one with fewer than 3 distinct vertices, and one with no
  area.  Inside is decided by the even-odd rule (a self-crossing outline has holes).  A point on
  an edge or a vertex (within `EDGE_TOLERANCE_DEG`, about 0.1 mm) counts as **inside**.
* `segment_crosses`: does the straight hop between two fixes touch the fence?  For a circle the
  hop is straight in a local equirectangular projection around the centre (accurate for the
  kilometre hops between fixes); for a polygon it is straight in the lat/lon plane, short way round.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
EDGE_TOLERANCE_M = 0.01  # a point this close outside a circle is still on its edge
EDGE_TOLERANCE_DEG = 1e-9  # a point this close to a polygon edge (degrees) is on it

Vertex = tuple[float, float]  # (latitude, longitude)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _check_lat_lon(latitude: float, longitude: float, where: str = "") -> None:
    if not -90.0 <= latitude <= 90.0:
        raise ValueError(f"latitude {latitude}{where} out of range [-90, 90]")
    if not -180.0 <= longitude <= 180.0:
        raise ValueError(f"longitude {longitude}{where} out of range [-180, 180]")


def wrap_longitude(delta: float) -> float:
    """A longitude difference brought into [-180, 180)."""
    return (delta + 180.0) % 360.0 - 180.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat = p2 - p1
    dlon = math.radians(lon2 - lon1)
    h = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Circle:
    latitude: float
    longitude: float
    radius_m: float

    def __post_init__(self) -> None:
        lat = _number(self.latitude, "circle latitude")
        lon = _number(self.longitude, "circle longitude")
        radius = _number(self.radius_m, "circle radius")
        _check_lat_lon(lat, lon, " of the circle centre")
        if radius <= 0:
            raise ValueError(f"circle radius must be > 0 metres, got {radius:g}")
        object.__setattr__(self, "latitude", lat)
        object.__setattr__(self, "longitude", lon)
        object.__setattr__(self, "radius_m", radius)


@dataclass(frozen=True, slots=True)
class Polygon:
    vertices: tuple[Vertex, ...]
    # derived in __post_init__: the ring as continuous (x=lon, y=lat) points and its bounding box
    ring: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)
    box: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.vertices, str | bytes) or not isinstance(self.vertices, Iterable):
            raise ValueError("polygon vertices must be a list of (latitude, longitude) pairs")
        points: list[Vertex] = []
        for n, vertex in enumerate(self.vertices, 1):
            if isinstance(vertex, str | bytes) or not isinstance(vertex, Sequence) or len(vertex) != 2:
                raise ValueError(f"polygon vertex {n} must be a (latitude, longitude) pair, got {vertex!r}")
            lat = _number(vertex[0], f"latitude of polygon vertex {n}")
            lon = _number(vertex[1], f"longitude of polygon vertex {n}")
            _check_lat_lon(lat, lon, f" of polygon vertex {n}")
            if not points or points[-1] != (lat, lon):  # repeated vertices add nothing
                points.append((lat, lon))
        if len(points) > 1 and points[0] == points[-1]:  # a closed ring (WKT style) repeats the first vertex
            points.pop()
        if len(points) < 3:
            raise ValueError(f"polygon needs at least 3 distinct vertices, got {len(points)}")
        object.__setattr__(self, "vertices", tuple(points))
        ring = _unwrapped(self.vertices)  # raises on the ambiguous shapes
        if abs(_area(ring)) < 1e-12:
            raise ValueError("polygon has no area (its vertices are on one line)")
        xs, ys = [x for x, _ in ring], [y for _, y in ring]
        object.__setattr__(self, "ring", tuple(ring))
        pad = EDGE_TOLERANCE_DEG
        object.__setattr__(self, "box", (min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad))

    def near(self, x1: float, y1: float, x2: float, y2: float) -> bool:
        """Does the box from (x1, y1) to (x2, y2) (continuous longitudes) meet the polygon's box?"""
        min_x, max_x, min_y, max_y = self.box
        return min(x1, x2) <= max_x and max(x1, x2) >= min_x and min(y1, y2) <= max_y and max(y1, y2) >= min_y


Shape = Circle | Polygon


@dataclass(frozen=True, slots=True)
class Geofence:
    id: str
    name: str
    shape: Shape

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"geofence id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"geofence name must be a string, got {self.name!r}")
        if not isinstance(self.shape, Circle | Polygon):
            raise ValueError(f"geofence shape must be a Circle or a Polygon, got {type(self.shape).__name__}")


# --- polygon plane geometry -------------------------------------------------------------


def _unwrapped(vertices: Sequence[Vertex]) -> list[tuple[float, float]]:
    """The ring as (x=longitude, y=latitude) points with continuous longitudes (each edge the
    short way round; may leave [-180, 180])."""
    ring = [(vertices[0][1], vertices[0][0])]
    for n in range(1, len(vertices) + 1):
        lat, lon = vertices[n % len(vertices)]
        step = wrap_longitude(lon - vertices[n - 1][1])
        if abs(abs(step) - 180.0) < 1e-12:
            raise ValueError(
                f"polygon edge {n} spans 180 degrees of longitude: which way round is ambiguous, add a vertex"
            )
        x = ring[-1][0] + step
        if n < len(vertices):
            ring.append((x, lat))
        elif abs(x - ring[0][0]) > 1e-6:
            raise ValueError("polygon encircles a pole: not supported, split it")
    return ring


def _area(ring: Sequence[tuple[float, float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True)) / 2


def _on_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> bool:
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    if length == 0:
        return math.hypot(px - ax, py - ay) <= EDGE_TOLERANCE_DEG
    if abs(dx * (py - ay) - dy * (px - ax)) / length > EDGE_TOLERANCE_DEG:
        return False
    along = (dx * (px - ax) + dy * (py - ay)) / length
    return -EDGE_TOLERANCE_DEG <= along <= length + EDGE_TOLERANCE_DEG


def _ring_contains(ring: Sequence[tuple[float, float]], px: float, py: float) -> bool:
    inside = False
    for (ax, ay), (bx, by) in zip(ring, [*ring[1:], ring[0]], strict=True):
        if _on_segment(px, py, ax, ay, bx, by):
            return True
        if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def _orientation(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    if abs(cross) <= 1e-15:
        return 0
    return 1 if cross > 0 else -1


def _segments_touch(
    p1: tuple[float, float], p2: tuple[float, float], q1: tuple[float, float], q2: tuple[float, float]
) -> bool:
    o1 = _orientation(*p1, *p2, *q1)
    o2 = _orientation(*p1, *p2, *q2)
    o3 = _orientation(*q1, *q2, *p1)
    o4 = _orientation(*q1, *q2, *p2)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True
    return (
        _on_segment(*q1, *p1, *p2)
        or _on_segment(*q2, *p1, *p2)
        or _on_segment(*p1, *q1, *q2)
        or _on_segment(*p2, *q1, *q2)
    )


# --- public geometry --------------------------------------------------------------------


def contains(fence: Geofence | Shape, latitude: float, longitude: float) -> bool:
    """Is the point inside the fence (its edge included)?"""
    shape = fence.shape if isinstance(fence, Geofence) else fence
    if isinstance(shape, Circle):
        return distance_m(shape.latitude, shape.longitude, latitude, longitude) <= shape.radius_m + EDGE_TOLERANCE_M
    return any(
        shape.near(x, latitude, x, latitude) and _ring_contains(shape.ring, x, latitude)
        for x in (longitude, longitude + 360.0, longitude - 360.0)
    )


def segment_crosses(fence: Geofence | Shape, lat1: float, lon1: float, lat2: float, lon2: float) -> bool:
    """Does the straight hop from fix 1 to fix 2 touch the fence (either end inside included)?"""
    shape = fence.shape if isinstance(fence, Geofence) else fence
    if isinstance(shape, Circle):
        scale = math.cos(math.radians(shape.latitude))

        def project(lat: float, lon: float) -> tuple[float, float]:
            x = math.radians(wrap_longitude(lon - shape.longitude)) * scale * EARTH_RADIUS_M
            return x, math.radians(lat - shape.latitude) * EARTH_RADIUS_M

        (ax, ay), (bx, by) = project(lat1, lon1), project(lat2, lon2)
        if abs(bx - ax) > math.pi * scale * EARTH_RADIUS_M:  # the hop goes the other way round
            bx += math.copysign(2 * math.pi * scale * EARTH_RADIUS_M, ax - bx)
        dx, dy = bx - ax, by - ay
        span = dx * dx + dy * dy
        t = 0.0 if span == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / span))
        return math.hypot(ax + t * dx, ay + t * dy) <= shape.radius_m + EDGE_TOLERANCE_M
    ring = shape.ring
    end_x = lon1 + wrap_longitude(lon2 - lon1)
    for shift in (0.0, 360.0, -360.0):
        p1, p2 = (lon1 + shift, lat1), (end_x + shift, lat2)
        if not shape.near(*p1, *p2):
            continue
        if _ring_contains(ring, *p1) or _ring_contains(ring, *p2):
            return True
        if any(_segments_touch(p1, p2, a, b) for a, b in zip(ring, [*ring[1:], ring[0]], strict=True)):
            return True
    return False


# --- parsing (CLI syntax) and JSON ------------------------------------------------------


def parse_circle(text: str) -> Circle:
    """`LAT,LON,METRES`, e.g. `48.8584,2.2945,250`."""
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a circle is LAT,LON,METRES (e.g. 48.8584,2.2945,250), got {text!r}")
    return Circle(
        _number(parts[0], "circle latitude"), _number(parts[1], "circle longitude"), _number(parts[2], "circle radius")
    )


def parse_polygon(text: str) -> Polygon:
    """`"LAT LON, LAT LON, LAT LON, ..."` (at least 3 vertices; a repeated first vertex closing
    the ring is allowed)."""
    vertices: list[Vertex] = []
    for n, part in enumerate(str(text).split(","), 1):
        numbers = part.split()
        if len(numbers) != 2:
            raise ValueError(f"polygon vertex {n} must be 'LAT LON', got {part.strip()!r}")
        vertices.append(
            (
                _number(numbers[0], f"latitude of polygon vertex {n}"),
                _number(numbers[1], f"longitude of polygon vertex {n}"),
            )
        )
    return Polygon(tuple(vertices))


def shape_to_dict(shape: Shape) -> dict[str, Any]:
    if isinstance(shape, Circle):
        return {"type": "circle", "latitude": shape.latitude, "longitude": shape.longitude, "radius": shape.radius_m}
    return {"type": "polygon", "vertices": [list(vertex) for vertex in shape.vertices]}


def shape_from_dict(data: Any) -> Shape:
    if not isinstance(data, dict):
        raise ValueError(f"geofence shape must be an object, got {data!r}")
    kind = data.get("type")
    try:
        if kind == "circle":
            return Circle(data["latitude"], data["longitude"], data["radius"])
        if kind == "polygon":
            return Polygon(data["vertices"])
    except KeyError as exc:
        raise ValueError(f"{kind} geofence shape without {exc.args[0]!r}") from None
    raise ValueError(f"geofence shape type must be 'circle' or 'polygon', got {kind!r}")


def to_json(fence: Geofence) -> bytes:
    """The fence as JSON bytes: `{"id", "name", "shape": {"type": "circle", "latitude",
    "longitude", "radius"} | {"type": "polygon", "vertices": [[lat, lon], ...]}}`."""
    return orjson.dumps({"id": fence.id, "name": fence.name, "shape": shape_to_dict(fence.shape)})


def json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """`data` as a JSON object; ValueError naming `what` for anything else."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def from_json(data: bytes | str) -> Geofence:
    """The inverse of `to_json`; ValueError (with the reason) for anything else."""
    obj = json_object(data, "geofence record")
    if "id" not in obj or "shape" not in obj:
        raise ValueError("geofence record needs 'id' and 'shape'")
    return Geofence(obj["id"], obj.get("name", ""), shape_from_dict(obj["shape"]))
