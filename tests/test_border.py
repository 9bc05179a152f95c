"""lib/border.py: Brazil's real border, not a bounding box — points near it on both sides."""

import json

import pytest

from lib import border
from lib.maplinks import Point

INSIDE = {
    "São Paulo": (-23.5614, -46.6559),
    "Foz do Iguaçu (centro)": (-25.5163, -54.5854),
    "Foz do Iguaçu (Vila A)": (-25.4969, -54.5648),
    "Chuí": (-33.6906, -53.4566),
    "Santana do Livramento": (-30.8908, -55.5328),
    "Uruguaiana": (-29.7547, -57.0883),
    "Guaíra": (-24.0800, -54.2560),
    "Oiapoque": (3.8417, -51.8353),
    "Fernando de Noronha": (-3.8547, -32.4247),
    "Ilha da Trindade": (-20.5250, -29.3250),
    "Arquipélago de São Pedro e São Paulo": (0.9167, -29.3458),
    "Ilhabela": (-23.7800, -45.3600),
    "praia de Copacabana": (-22.9711, -43.1822),
    "Ponta do Seixas": (-7.1550, -34.7930),
    "Roraima (Monte Caburaí)": (5.2000, -60.2000),
}
OUTSIDE = {
    "Assunção, Paraguai": (-25.2800, -57.6300),
    "Ciudad del Este, Paraguai": (-25.5097, -54.6111),
    "Salto del Guairá, Paraguai": (-24.0600, -54.3100),
    "Encarnación, Paraguai": (-27.3300, -55.8660),
    "Rivera, Uruguai": (-30.9053, -55.5508),
    "Montevidéu, Uruguai": (-34.9000, -56.1900),
    "La Coronilla, Uruguai": (-33.8900, -53.5100),
    "Paso de los Libres, Argentina": (-29.7128, -57.0877),
    "Posadas, Argentina": (-27.3670, -55.8960),
    "Buenos Aires": (-34.6000, -58.3800),
    "Santa Elena de Uairén, Venezuela": (4.6000, -61.1100),
    "Lisboa": (38.7223, -9.1393),
    "Paris": (48.8584, 2.2945),
    "coordenadas trocadas de São Paulo": (-46.6559, -23.5614),
    "Atlântico, 100 km da costa do RJ": (-23.9000, -42.2000),
    "Atol das Rocas (fora do polígono e da margem)": (-3.8667, -33.8000),
}


@pytest.mark.parametrize("name", INSIDE)
def test_inside(name):
    assert border.in_brazil(*INSIDE[name]), name
    assert Point.of(*INSIDE[name]).in_brazil()


@pytest.mark.parametrize("name", OUTSIDE)
def test_outside(name):
    assert not border.in_brazil(*OUTSIDE[name]), name
    assert not Point.of(*OUTSIDE[name]).in_brazil()


def test_the_bounding_box_is_gone():
    # inside the old box (-34..6, -74..-34) but in Paraguay, Uruguay, Bolivia, Peru, at sea
    for lat, lng in [(-25.28, -57.63), (-32.0, -55.5), (-17.78, -63.18), (-12.05, -73.5), (-10.0, -34.5)]:
        assert not border.in_brazil(lat, lng), (lat, lng)


def test_margins_are_stated_in_the_code():
    assert (border.LAND_MARGIN_KM, border.SEA_MARGIN_KM) == (1.0, 5.0)


def test_data_file_states_source_and_licence():
    data = json.loads(border.DATA.read_text(encoding="utf-8"))
    assert "Natural Earth" in data["fonte"] and "domínio público" in data["licenca"]
    assert all(ring[0] == ring[-1] for ring in data["aneis"])  # closed rings
    assert sum(len(ring) for ring in data["aneis"]) < 10_000  # simplified
