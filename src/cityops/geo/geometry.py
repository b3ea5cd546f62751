"""Plain geometry on longitude/latitude, without a geometry library: distances, point in polygon.

Good enough for what cityops asks of it — which commune centroid is nearest, whether a place lies in (or within a
few kilometres of) the province's simplified boundary. Coordinates are GeoJSON's: [longitude, latitude].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180

Ring = Sequence[Sequence[float]]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def polygons(geometry: dict[str, Any]) -> list[list[Ring]]:
    """The polygons of a GeoJSON Polygon or MultiPolygon, each a list of rings (outer ring first)."""
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"not a polygon: {geometry.get('type')!r}")


def _ring_contains(ring: Ring, x: float, y: float) -> bool:
    inside = False
    previous = ring[-1]
    for current in ring:
        (x1, y1), (x2, y2) = previous[:2], current[:2]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        previous = current
    return inside


def contains(geometry: dict[str, Any], lon: float, lat: float) -> bool:
    """Whether the point lies inside the polygon (inside an outer ring and outside its holes)."""
    for polygon in polygons(geometry):
        if _ring_contains(polygon[0], lon, lat) and not any(_ring_contains(hole, lon, lat) for hole in polygon[1:]):
            return True
    return False


def _segments(geometry: dict[str, Any]) -> Iterator[tuple[Sequence[float], Sequence[float]]]:
    for polygon in polygons(geometry):
        for ring in polygon:
            yield from itertools.pairwise(ring)


def distance_km(geometry: dict[str, Any], lon: float, lat: float) -> float:
    """How far the point lies outside the polygon, in kilometres (0 inside); approximate, exact enough nearby."""
    if contains(geometry, lon, lat):
        return 0.0
    scale_x = math.cos(math.radians(lat)) * KM_PER_DEGREE
    best = math.inf
    for start, end in _segments(geometry):
        ax, ay = (start[0] - lon) * scale_x, (start[1] - lat) * KM_PER_DEGREE
        bx, by = (end[0] - lon) * scale_x, (end[1] - lat) * KM_PER_DEGREE
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best
