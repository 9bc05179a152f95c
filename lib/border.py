"""Is a point in Brazil? Its real border (Natural Earth, simplified: lib/brasil_fronteira.json,
made by scripts/brazil_border.py), a point-in-polygon test, and a small margin at sea only."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "brasil_fronteira.json"
# The data is precise to about 1 km: a point that close beyond a land border gets the benefit of the
# doubt (twin towns on a dry border, e.g. Ponta Porã / Pedro Juan Caballero, cannot be told apart;
# Chuí, 0.3 km outside the simplified line, is in). A beach address geocoded a little offshore is
# still Brazil: the margin at sea is larger.
LAND_MARGIN_KM = 1.0
SEA_MARGIN_KM = 5.0
KM_PER_DEGREE = 111.2

Ring = list[tuple[float, float]]  # (longitude, latitude)


@dataclass(frozen=True)
class _Shape:
    rings: list[tuple[tuple[float, float, float, float], Ring]]  # (bbox, ring)
    coast: list[tuple[tuple[float, float, float, float], Ring]]


def _bbox(points: Ring) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


@lru_cache(maxsize=1)
def _shape() -> _Shape:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    rings = [[(float(x), float(y)) for x, y in ring] for ring in data["aneis"]]
    coast = [[(float(x), float(y)) for x, y in line] for line in data["costa"]]
    return _Shape([(_bbox(ring), ring) for ring in rings], [(_bbox(line), line) for line in coast])


def _inside(lng: float, lat: float, ring: Ring) -> bool:
    """Even-odd ray casting (a point on an edge may go either way: the margin decides at sea)."""
    inside = False
    x1, y1 = ring[-1]
    for x2, y2 in ring:
        if (y1 > lat) != (y2 > lat) and lng < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        x1, y1 = x2, y2
    return inside


def _km_to_line(lng: float, lat: float, line: Ring) -> float:
    """Distance in km from the point to a polyline (local equirectangular projection)."""
    scale = math.cos(math.radians(lat))
    px, py = lng * scale, lat
    best = math.inf
    for (x1, y1), (x2, y2) in zip(line, line[1:]):
        ax, ay, bx, by = x1 * scale, y1, x2 * scale, y2
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
        best = min(best, math.hypot(px - (ax + t * dx), py - (ay + t * dy)))
    return best * KM_PER_DEGREE


def in_brazil(latitude: float, longitude: float) -> bool:
    """True inside Brazil's border (its islands included), or within the margins of it."""
    shape = _shape()
    lng, lat = float(longitude), float(latitude)
    crossings = 0
    for (x0, y0, x1, y1), ring in shape.rings:
        if x0 <= lng <= x1 and y0 <= lat <= y1 and _inside(lng, lat, ring):
            crossings += 1
    if crossings % 2 == 1:
        return True
    return (_near(lng, lat, shape.coast, SEA_MARGIN_KM)
            or _near(lng, lat, shape.rings, LAND_MARGIN_KM))  # rings are closed (first point = last)


def _near(lng: float, lat: float, lines: list[tuple[tuple[float, float, float, float], Ring]], km: float) -> bool:
    pad = km / KM_PER_DEGREE / math.cos(math.radians(min(abs(lat), 80.0)))
    return any(x0 - pad <= lng <= x1 + pad and y0 - pad <= lat <= y1 + pad and _km_to_line(lng, lat, line) <= km
               for (x0, y0, x1, y1), line in lines)
