"""Nominatim and Google Geocoding simulators against docs/api/geocoding.md."""

from __future__ import annotations

import re

import pytest

from sandbox.places import find_city

NOMINATIM_KEYS = {"place_id", "licence", "osm_type", "osm_id", "lat", "lon", "class", "type", "importance",
                  "display_name", "boundingbox"}
PAULISTA = {"street": "1000 Avenida Paulista", "city": "São Paulo", "state": "SP", "country": "Brasil",
            "postalcode": "01310-100"}


def test_nominatim_structured_answer_shape(api):
    response = api.nominatim(**PAULISTA, countrycodes="br", limit=1)
    assert response.status_code == 200
    [place] = response.json()
    assert NOMINATIM_KEYS <= set(place)
    assert isinstance(place["lat"], str) and isinstance(place["lon"], str)
    assert abs(float(place["lat"]) + 23.55) < 0.05 and abs(float(place["lon"]) + 46.63) < 0.05
    assert len(place["boundingbox"]) == 4 and "Avenida Paulista" in place["display_name"]


def test_nominatim_jsonv2_and_free_text_agree_with_structured(api):
    structured = api.nominatim(**PAULISTA).json()[0]
    v2 = api.nominatim(q="Av. Paulista, 1000 - Bela Vista, São Paulo - SP, 01310-100, Brasil", format="jsonv2").json()[0]
    assert "category" in v2 and "class" not in v2
    assert (v2["lat"], v2["lon"]) == (structured["lat"], structured["lon"])
    again = api.nominatim(street="Avenida Paulista, 1000", city="sao paulo", state="São Paulo").json()[0]
    assert (again["lat"], again["lon"]) == (structured["lat"], structured["lon"])


def test_nominatim_cep_only_is_the_cep_centroid(api):
    [place] = api.nominatim(postalcode="13015-100", country="Brasil").json()
    campinas = find_city("Campinas")
    assert place["type"] == "postcode"
    assert abs(float(place["lat"]) - campinas.lat) < 0.05 and abs(float(place["lon"]) - campinas.lng) < 0.05
    assert api.nominatim(postalcode="00000-000").json() == []


@pytest.mark.parametrize("params", [
    {"street": "Rua das Flores 10", "city": "Cidade Inventada"},
    {"q": "ver com o vendedor"},
    {"street": "Rua das Flores 10", "city": "Campinas", "state": "RJ"},
    {"street": "Rua das Flores 10", "city": "Campinas", "country": "Portugal"},
    {"q": "Campinas", "countrycodes": "pt"},
])
def test_nominatim_unknown_or_junk_is_an_empty_list(api, params):
    response = api.nominatim(**params)
    assert response.status_code == 200 and response.json() == []


def test_nominatim_requires_a_user_agent(api):
    assert api.nominatim(ua=None, q="Campinas").status_code == 403
    assert api.nominatim(ua="geopy/2.4.1", q="Campinas").status_code == 403
    assert api.nominatim(q="Campinas").status_code == 200


def test_nominatim_rejects_q_with_structured_and_nothing_to_search(api):
    assert api.nominatim(q="Campinas", city="Campinas").status_code == 400
    assert api.nominatim().status_code == 400


def test_nominatim_rate_limit(make_sandbox):
    _, api = make_sandbox(nominatim_rps=1.0)
    assert api.nominatim(q="Campinas").status_code == 200
    assert api.nominatim(q="Campinas").status_code == 429


def test_link_coordinates_match_the_geocoded_address(make_sandbox):
    """A project's map link and its address geocode to the same place (one model for both)."""
    sb, api = make_sandbox(projetos=120)
    checked = 0
    for project in sb.projects():
        cliente = project["cliente"]
        found = re.search(r"(?:maps\?q=|/search/)(-?\d+\.\d+),\+?(-?\d+\.\d+)", cliente["link_localizacao"] or "")
        if not found or not re.fullmatch(r"\d+", cliente["numero"] or "") or float(found.group(1)) < -34:
            continue  # (latitude < -34: the deliberately swapped lat/lng link)
        place = api.nominatim(street=f"{cliente['logradouro']}, {cliente['numero']}", city=cliente["cidade"],
                              state=cliente["estado"]).json()[0]
        assert (round(float(place["lat"]), 6), round(float(place["lon"]), 6)) == (
            round(float(found.group(1)), 6), round(float(found.group(2)), 6))
        google = api.google(address=f"{cliente['logradouro']}, {cliente['numero']}, {cliente['cidade']}").json()
        location = google["results"][0]["geometry"]["location"]
        assert (round(location["lat"], 6), round(location["lng"], 6)) == (
            round(float(place["lat"]), 6), round(float(place["lon"]), 6))
        checked += 1
    assert checked >= 1


def test_google_ok_shape(api):
    body = api.google(address="Avenida Paulista, 1000, São Paulo - SP", region="br").json()
    assert body["status"] == "OK"
    [result] = body["results"]
    assert set(result["geometry"]["location"]) == {"lat", "lng"}
    assert isinstance(result["geometry"]["location"]["lat"], float) and result["formatted_address"]
    nominatim = api.nominatim(**PAULISTA).json()[0]
    assert f"{result['geometry']['location']['lat']:.7f}" == nominatim["lat"]


def test_google_statuses(api):
    assert api.google(address="Lugar Nenhum, Cidade Inventada").json() == {"results": [], "status": "ZERO_RESULTS"}
    for key in (None, "chave-errada"):
        denied = api.google(key=key, address="Campinas").json()
        assert denied["status"] == "REQUEST_DENIED" and denied["error_message"] and denied["results"] == []
    assert api.google(address="Campinas", components="country:PT").json()["status"] == "ZERO_RESULTS"
    assert api.google().json()["status"] == "INVALID_REQUEST"


def test_google_over_query_limit(make_sandbox):
    _, api = make_sandbox(google_rps=1.0)
    assert api.google(address="Campinas").json()["status"] == "OK"
    over = api.google(address="Campinas")
    assert over.status_code == 200 and over.json()["status"] == "OVER_QUERY_LIMIT"
