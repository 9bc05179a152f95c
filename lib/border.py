"""Is a point in Brazil? Its real border (Natural Earth, simplified: lib/brasil_fronteira.json,
made by scripts/brazil_border.py), a point-in-polygon test, and small stated margins."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
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
BAND = 0.25  # degrees of latitude per bucket of edges: a test looks at a few dozen edges, not 7 000

Edge = tuple[float, float, float, float]  # x1, y1, x2, y2 (longitude, latitude)
Bands = dict[int, list[Edge]]


def _bands(lines: Iterable[list[list[float]]]) -> Bands:
    """Every edge of `lines`, filed under each latitude band it touches."""
    bands: Bands = {}
    for line in lines:
        for (x1, y1), (x2, y2) in zip(line, line[1:]):
            for band in range(math.floor(min(y1, y2) / BAND), math.floor(max(y1, y2) / BAND) + 1):
                bands.setdefault(band, []).append((x1, y1, x2, y2))
    return bands


@lru_cache(maxsize=1)
def _shape() -> tuple[Bands, Bands]:
    """(edges of the border's rings, edges of the coast lines) by latitude band."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return _bands(data["aneis"]), _bands(data["costa"])  # rings are closed: first point = last


def _inside(lng: float, lat: float, rings: Bands) -> bool:
    """Even-odd ray casting over every ring at once (a point on an edge may go either way: the
    margins decide there)."""
    inside = False
    for x1, y1, x2, y2 in rings.get(math.floor(lat / BAND), ()):
        if (y1 > lat) != (y2 > lat) and lng < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _near(lng: float, lat: float, edges: Bands, km: float) -> bool:
    """Whether an edge is within `km` of the point (local equirectangular projection)."""
    scale = math.cos(math.radians(lat))
    reach = km / KM_PER_DEGREE
    px = lng * scale
    for band in range(math.floor((lat - reach) / BAND), math.floor((lat + reach) / BAND) + 1):
        for x1, y1, x2, y2 in edges.get(band, ()):
            ax, bx = x1 * scale, x2 * scale
            dx, dy = bx - ax, y2 - y1
            length = dx * dx + dy * dy
            t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (lat - y1) * dy) / length))
            if math.hypot(px - (ax + t * dx), lat - (y1 + t * dy)) <= reach:
                return True
    return False


def in_brazil(latitude: float, longitude: float) -> bool:
    """True inside Brazil's border (its islands included), or within the margins of it."""
    rings, coast = _shape()
    lng, lat = float(longitude), float(latitude)
    return (_inside(lng, lat, rings) or _near(lng, lat, coast, SEA_MARGIN_KM)
            or _near(lng, lat, rings, LAND_MARGIN_KM))
