"""Geofence geometry (`trackpipe.streams.geofence`) on real places: edges, the antimeridian,
jump-over segments, CLI parsing and JSON records."""

from __future__ import annotations

import math

import orjson
import pytest
from trackpipe.streams.geofence import (
    EARTH_RADIUS_M,
    Circle,
    Geofence,
    Polygon,
    contains,
    distance_m,
    from_json,
    parse_circle,
    parse_polygon,
    segment_crosses,
    to_json,
)

EIFFEL = (48.85837, 2.29448)
# Central Park, Manhattan: Columbus Circle, 5th Av/59th, 5th Av/110th, Central Park West/110th
CENTRAL_PARK = Polygon(((40.7681, -73.9819), (40.7644, -73.9730), (40.7968, -73.9492), (40.8005, -73.9581)))
# Around the antimeridian east of Fiji (Taveuni, Qamea): lon 179 E .. 179 W
FIJI = Polygon(((-16.0, 179.0), (-16.0, -179.0), (-18.0, -179.0), (-18.0, 179.0)))


def destination(lat: float, lon: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point `metres` away on a great circle (spherical, same Earth radius as the module)."""
    d = metres / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def test_haversine_paris_london() -> None:
    # Notre-Dame to the Tower of London: about 344 km
    assert distance_m(48.8530, 2.3499, 51.5081, -0.0759) == pytest.approx(344_000, rel=0.01)


@pytest.mark.parametrize(
    ("metres", "bearing", "inside"),
    [
        (0, 0, True),
        (100, 45, True),
        (249.5, 90, True),
        (250.0, 90, True),  # exactly on the edge: inside
        (250.0, 0, True),
        (250.0, 213, True),
        (250.5, 90, False),
        (251, 180, False),
        (5000, 270, False),
    ],
)
def test_circle_contains(metres: float, bearing: float, inside: bool) -> None:
    fence = Circle(*EIFFEL, 250)
    lat, lon = destination(*EIFFEL, bearing, metres)
    assert contains(fence, lat, lon) is inside


def test_circle_across_the_antimeridian() -> None:
    fence = Circle(-17.0, 180.0, 20_000)  # 20 km round a point on the date line
    assert contains(fence, -17.0, 179.9)  # ~10.6 km west
    assert contains(fence, -17.0, -179.9)  # ~10.6 km east
    assert not contains(fence, -17.0, 179.7)
    assert not contains(fence, -17.0, 0.0)


@pytest.mark.parametrize(
    ("lat", "lon", "inside", "what"),
    [
        (40.7740, -73.9708, True, "Bethesda Fountain"),
        (40.7829, -73.9654, True, "the Great Lawn"),
        (40.7580, -73.9855, False, "Times Square"),
        (40.7830, -73.9590, False, "the Guggenheim, across 5th Avenue"),
        (40.7681, -73.9819, True, "a vertex"),
        ((40.7681 + 40.7644) / 2, (-73.9819 + -73.9730) / 2, True, "midpoint of the 59th Street edge"),
        ((40.7968 + 40.8005) / 2, (-73.9492 + -73.9581) / 2, True, "midpoint of the 110th Street edge"),
        (40.7644 - 1e-6, -73.9730, False, "10 cm south of the 5th Av/59th corner"),
    ],
)
def test_polygon_contains(lat: float, lon: float, inside: bool, what: str) -> None:
    assert contains(CENTRAL_PARK, lat, lon) is inside, what


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (-17.0, 179.5, True),
        (-17.0, -179.5, True),
        (-17.0, 180.0, True),
        (-17.0, -180.0, True),
        (-16.0, 180.0, True),  # on the northern edge, on the date line
        (-16.0, 179.0, True),  # a vertex
        (-17.0, 178.5, False),
        (-17.0, -178.5, False),
        (-17.0, 0.0, False),  # what a polygon wrapping the long way round would contain
        (-15.5, 179.5, False),
    ],
)
def test_polygon_across_the_antimeridian(lat: float, lon: float, inside: bool) -> None:
    assert contains(FIJI, lat, lon) is inside


def test_polygon_with_vertices_beyond_180_in_any_order() -> None:
    # the same area, listed from the east side and counter-clockwise
    same = Polygon(((-18.0, -179.0), (-16.0, -179.0), (-16.0, 179.0), (-18.0, 179.0)))
    for lat, lon in [(-17.0, 179.5), (-17.0, -179.5), (-17.0, 178.5), (-17.0, 0.0)]:
        assert contains(same, lat, lon) is contains(FIJI, lat, lon)


def test_concave_polygon() -> None:
    # a U round the Louvre's Cour Napoléon: the courtyard between the wings is outside
    u = Polygon(
        ((48.8606, 2.3320), (48.8625, 2.3320), (48.8625, 2.3400), (48.8606, 2.3400), (48.8606, 2.3380),
         (48.8618, 2.3380), (48.8618, 2.3340), (48.8606, 2.3340))
    )  # fmt: skip
    assert contains(u, 48.8610, 2.3330)  # west wing
    assert contains(u, 48.8610, 2.3390)  # east wing
    assert contains(u, 48.8621, 2.3360)  # north wing
    assert not contains(u, 48.8610, 2.3360)  # the courtyard


@pytest.mark.parametrize(
    ("start", "end", "crosses"),
    [
        # due west to due east of the tower, 1 km each side: the hop goes through the circle
        ((EIFFEL[0], 2.2810), (EIFFEL[0], 2.3080), True),
        # the same hop 500 m north of the tower: misses a 250 m circle
        ((EIFFEL[0] + 0.0045, 2.2810), (EIFFEL[0] + 0.0045, 2.3080), False),
        # grazes it: 200 m north
        ((EIFFEL[0] + 0.0018, 2.2810), (EIFFEL[0] + 0.0018, 2.3080), True),
        # stops short of it
        ((EIFFEL[0], 2.2810), (EIFFEL[0], 2.2880), False),
    ],
)
def test_circle_segment(start: tuple[float, float], end: tuple[float, float], crosses: bool) -> None:
    assert segment_crosses(Circle(*EIFFEL, 250), *start, *end) is crosses


@pytest.mark.parametrize(
    ("start", "end", "crosses"),
    [
        ((40.7800, -73.9900), (40.7800, -73.9400), True),  # Upper West Side to Upper East Side
        ((40.7580, -73.9855), (40.7550, -73.9700), False),  # Midtown, south of the park
        ((40.7740, -73.9708), (40.7580, -73.9855), True),  # from inside out
        ((40.7600, -73.9900), (40.7681, -73.9819), True),  # ends on a vertex
    ],
)
def test_polygon_segment(start: tuple[float, float], end: tuple[float, float], crosses: bool) -> None:
    assert segment_crosses(CENTRAL_PARK, *start, *end) is crosses


def test_segment_across_the_antimeridian() -> None:
    assert segment_crosses(FIJI, -17.0, 178.5, -17.0, -178.5)  # short way: over the date line, through Fiji
    assert segment_crosses(FIJI, -17.0, -178.5, -17.0, 178.5)
    assert not segment_crosses(FIJI, -17.0, 178.5, -17.0, 170.0)
    assert not segment_crosses(FIJI, -15.0, 178.5, -15.0, -178.5)  # north of it
    assert segment_crosses(Circle(-17.0, 180.0, 5_000), -17.0, 179.5, -17.0, -179.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48.85837,2.29448,250", Circle(48.85837, 2.29448, 250.0)),
        (" -17 , 180 , 1e3 ", Circle(-17.0, 180.0, 1000.0)),
    ],
)
def test_parse_circle(text: str, expected: Circle) -> None:
    assert parse_circle(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("48.8,2.29", "LAT,LON,METRES"),
        ("48.8,2.29,250,1", "LAT,LON,METRES"),
        ("48.8,,250", "LAT,LON,METRES"),
        ("north,2.29,250", "circle latitude must be a number"),
        ("91,2.29,250", "latitude 91.0 of the circle centre out of range"),
        ("48.8,180.5,250", "longitude 180.5 of the circle centre out of range"),
        ("48.8,2.29,0", "radius must be > 0"),
        ("48.8,2.29,-5", "radius must be > 0"),
        ("48.8,2.29,nan", "finite"),
        ("48.8,2.29,inf", "finite"),
    ],
)
def test_parse_circle_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_circle(text)


def test_parse_polygon() -> None:
    text = "40.7681 -73.9819, 40.7644 -73.9730, 40.7968 -73.9492, 40.8005 -73.9581"
    assert parse_polygon(text) == CENTRAL_PARK
    closed = text + ", 40.7681 -73.9819"  # a closed ring repeats the first vertex
    assert parse_polygon(closed) == CENTRAL_PARK


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("40.7681 -73.9819, 40.7644 -73.9730", "at least 3 distinct vertices, got 2"),
        ("40.7681 -73.9819, 40.7644 -73.9730, 40.7681 -73.9819", "at least 3 distinct vertices, got 2"),
        ("", "vertex 1 must be 'LAT LON'"),
        ("40.7681 -73.9819, 40.7644, 40.7968 -73.9492", "vertex 2 must be 'LAT LON'"),
        ("40.7681,-73.9819,40.7644,-73.9730", "vertex 1 must be 'LAT LON'"),
        ("40.7681 -73.9819, 40.7644 x, 40.7968 -73.9492", "longitude of polygon vertex 2 must be a number"),
        ("95 -73.9819, 40.7644 -73.9730, 40.7968 -73.9492", "latitude 95.0 of polygon vertex 1 out of range"),
        ("40 -73, 40 -190, 41 -73", "longitude -190.0 of polygon vertex 2 out of range"),
        ("40 -73, 40.5 -72.5, 41 -72", "no area"),
        ("10 0, 10 180, -10 90", "spans 180 degrees"),
        ("80 0, 80 120, 80 -120", "encircles a pole"),
    ],
)
def test_parse_polygon_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_polygon(text)


@pytest.mark.parametrize(
    "fence",
    [
        Geofence("eiffel", "Tour Eiffel", Circle(*EIFFEL, 250)),
        Geofence("cp", "Central Park", CENTRAL_PARK),
        Geofence("fiji", "Fiji / date line", FIJI),
    ],
)
def test_json_round_trip(fence: Geofence) -> None:
    data = to_json(fence)
    assert isinstance(data, bytes)
    assert from_json(data) == fence
    assert contains(from_json(data), -17.0, -179.5) is contains(fence, -17.0, -179.5)


def test_json_layout() -> None:
    record = orjson.loads(to_json(Geofence("eiffel", "Tour Eiffel", Circle(48.85837, 2.29448, 250))))
    assert record == {
        "id": "eiffel",
        "name": "Tour Eiffel",
        "shape": {"type": "circle", "latitude": 48.85837, "longitude": 2.29448, "radius": 250.0},
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"name": "x"}', "needs 'id' and 'shape'"),
        (b'{"id": "", "shape": {"type": "circle", "latitude": 1, "longitude": 1, "radius": 5}}', "non-empty"),
        (b'{"id": "a", "shape": {"type": "square"}}', "'circle' or 'polygon'"),
        (b'{"id": "a", "shape": {"type": "circle", "latitude": 1, "longitude": 1}}', "without 'radius'"),
        (b'{"id": "a", "shape": {"type": "circle", "latitude": true, "longitude": 1, "radius": 5}}', "a number"),
        (b'{"id": "a", "shape": {"type": "polygon", "vertices": [[1, 1], [2, 2]]}}', "at least 3"),
        (b'{"id": "a", "shape": {"type": "polygon", "vertices": [[1, 1, 1], [2, 2], [3, 1]]}}', "pair"),
        (b'{"id": "a", "shape": {"type": "polygon", "vertices": "1 1, 2 2, 3 1"}}', "list of"),
        (b'{"id": "a", "shape": []}', "must be an object"),
    ],
)
def test_json_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(data)
