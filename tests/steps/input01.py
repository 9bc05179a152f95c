"""Test helper for step 02: data/01_projetos_isales.json (design.md §4) built from the sandbox's
raw projects, so 02's tests do not depend on step 01; links that would leave this machine removed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import requests

from lib import config, maplinks, status
from lib.jsonfiles import FILE_01, write_envelope
from lib.maplinks import Point

OBTIDO_EM = "2026-11-29T13:00:01Z"


def projects_01(sb, ids: set[int] | None = None) -> list[dict]:
    """The `projetos` of a 01 file: every sandbox card in a column of interest."""
    isales = config.load("isales", environ=sb.env()).isales
    result = []
    for raw in sb.projects():
        card = raw["card"]
        column_status = status.status_for_column(isales, card["coluna_id"])
        if column_status == status.OUTRO or (ids is not None and card["cliente_id"] not in ids):
            continue
        result.append({"isales_id": card["cliente_id"], "coluna_id": card["coluna_id"], "status": column_status,
                       "motivo": "novo", "obtido_em": OBTIDO_EM, **raw})
    return result


def write_01(sb, data_dir: Path, *, ids: set[int] | None = None, movimentos: list[dict] | None = None,
             pendencias: list[dict] | None = None, run_id: int = 1) -> Path:
    path = Path(data_dir) / FILE_01
    write_envelope(path, "01", run_id, {"origem": f"{sb.url}/isales/api", "funil_id": 9001,
                                         "projetos": projects_01(sb, ids), "movimentos": movimentos or [],
                                         "pendencias": pendencias or []})
    return path


def hermetic_links(sb) -> list[int]:
    """Replace the links whose resolution would need the internet (a Google place page without
    coordinates, Instagram...) by a seller's note; return the ids changed. Resets the call log."""
    changed = []
    for raw in sb.projects():
        link = raw["cliente"].get("link_localizacao")
        url = maplinks.first_url(link)
        if url is None or maplinks.parse(link) is not None:
            continue
        current: str | None = url
        for _ in range(8):
            if not current.startswith(sb.url):
                break
            response = requests.head(current, allow_redirects=False, timeout=5)
            location = response.headers.get("Location")
            if response.status_code not in maplinks.REDIRECTS or not location:
                current = None
                break
            current = maplinks.unwrap(urljoin(current, location))
            if maplinks.parse(current) is not None:
                current = None
                break
        if current is not None and not current.startswith(sb.url):
            sb.edit_cliente(raw["card"]["cliente_id"], link_localizacao="ver com o vendedor")
            changed.append(raw["card"]["cliente_id"])
    sb.reset_calls()
    return changed


def expected_point(endereco: dict) -> Point:
    """Where the sandbox's model puts a (normalised) address: its links and its Nominatim agree."""
    from sandbox.places import address_point, find_city

    lat, lng = address_point(find_city(endereco["cidade"]), endereco["logradouro"], endereco["numero"])
    return Point.of(lat, lng)
