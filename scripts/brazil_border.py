"""Make lib/brasil_fronteira.json: Brazil's border from Natural Earth, simplified (run once).

Source: Natural Earth 1:10m Admin 0 countries, version 4.1.0 (public domain), as redistributed
in TopoJSON by the npm package world-atlas 2.0.2 (`countries-10m.json`, ISC licence). Get it with
`npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz`, then:

    python scripts/brazil_border.py package/countries-10m.json

TopoJSON keeps each border line once: a line that Brazil shares with another country is a land
border, a line only Brazil uses is coast. Both are simplified (Douglas-Peucker, ends kept so the
rings stay closed); the coast lines are written separately so that lib/border.py can allow a small
margin at sea (a beach address geocoded a little offshore) and none across a land border.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "lib" / "brasil_fronteira.json"
BRAZIL = "076"
TOLERANCE = 0.003  # degrees (≈ 300 m): about the precision of the quantized 1:10m data
DIGITS = 4  # ≈ 11 m


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def simplify(points: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    """Douglas-Peucker, iterative; the two ends are always kept."""
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        (x1, y1), (x2, y2) = points[first], points[last]
        length = math.hypot(x2 - x1, y2 - y1)
        best, index = -1.0, -1
        for i in range(first + 1, last):
            x0, y0 = points[i]
            if length == 0:
                distance = math.hypot(x0 - x1, y0 - y1)
            else:
                distance = abs((x2 - x1) * (y1 - y0) - (x1 - x0) * (y2 - y1)) / length
            if distance > best:
                best, index = distance, i
        if best > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [point for point, kept in zip(points, keep) if kept]


def main(source: str) -> None:
    topology = json.loads(Path(source).read_text(encoding="utf-8"))
    arcs = decode_arcs(topology)
    geometries = topology["objects"]["countries"]["geometries"]
    use: dict[int, set[str | None]] = {}
    for geometry in geometries:
        polygons = geometry.get("arcs") or []
        if geometry["type"] == "Polygon":
            polygons = [polygons]
        for polygon in polygons:
            for ring in polygon:
                for index in ring:
                    use.setdefault(index if index >= 0 else ~index, set()).add(geometry.get("id"))
    brazil = next(g for g in geometries if g.get("id") == BRAZIL)
    simple = {}

    def arc_points(index: int) -> list[tuple[float, float]]:
        real = index if index >= 0 else ~index
        if real not in simple:
            simple[real] = simplify(arcs[real], TOLERANCE)
        return simple[real] if index >= 0 else simple[real][::-1]

    rings, coast = [], []
    for polygon in brazil["arcs"]:
        for ring in polygon:
            points: list[tuple[float, float]] = []
            for index in ring:
                part = arc_points(index)
                points += part[1:] if points else part
            rings.append([[round(x, DIGITS), round(y, DIGITS)] for x, y in points])
            for index in ring:
                if use[index if index >= 0 else ~index] == {BRAZIL}:
                    coast.append([[round(x, DIGITS), round(y, DIGITS)] for x, y in arc_points(index)])
    data = {
        "fonte": "Natural Earth 1:10m Admin 0 countries 4.1.0 (domínio público), via world-atlas 2.0.2 "
                 "(countries-10m.json); simplificado com tolerância de 0,003° por scripts/brazil_border.py",
        "licenca": "domínio público (Natural Earth: https://www.naturalearthdata.com/about/terms-of-use/)",
        "formato": "aneis: anéis [longitude, latitude] (regra par-ímpar); costa: linhas só do Brasil (mar)",
        "aneis": rings,
        "costa": coast,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(rings)} anéis, {sum(map(len, rings))} pontos, {len(coast)} linhas de costa")


if __name__ == "__main__":
    main(sys.argv[1])
