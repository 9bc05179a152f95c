"""Address queries (structured or free text) → one match from the shared places model.

Levels: house (street + number), street, postcode (CEP centroid), city. Unknown city or junk → None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .places import (
    STATES,
    City,
    cep_digits,
    cep_point,
    city_for_cep,
    find_city,
    format_cep,
    normalize,
    split_street,
    state_uf,
    street_point,
)

_COUNTRIES = {"brasil", "brazil", "br", "bra", "republica federativa do brasil"}
_CEP = re.compile(r"\b(\d{5})-?(\d{3})\b")
_NUMBER = re.compile(r"^\d{1,6}[a-z]?$")


@dataclass
class Query:
    street: str = ""
    city: str = ""
    county: str = ""
    state: str = ""
    country: str = ""
    postalcode: str = ""


@dataclass
class Match:
    lat: float
    lng: float
    level: str  # house | street | postcode | city
    city: City
    street: str = ""
    number: str = ""
    cep: str = ""

    @property
    def state_name(self) -> str:
        return STATES[self.city.uf]


def parse_free_text(text: str) -> Query:
    """Split "Av. Paulista, 1000 - Bela Vista, São Paulo - SP, 01310-100, Brasil" into fields."""
    query = Query()
    found = _CEP.search(text or "")
    if found:
        query.postalcode = found.group(1) + found.group(2)
        text = text[: found.start()] + " " + text[found.end():]
    text = re.sub(r"\bs\s*/\s*n\b", " ", text or "", flags=re.IGNORECASE)
    number = ""
    before: list[str] = []
    after: list[str] = []
    for part in re.split(r"\s*[,;\n/]\s*|\s+-\s+", text):
        key = normalize(part)
        if not key:
            continue
        if key in _COUNTRIES and not query.country:
            query.country = part
        elif not query.city and find_city(part):
            query.city = part
        elif not query.state and state_uf(part):
            query.state = part
        elif not number and _NUMBER.match(key):
            number = part.strip()
        elif not query.city:
            (after if number else before).append(part.strip())
    if number and before:
        street = before  # "Rodovia BR-116, km 45, 2053 - Centro": the street is all before the number
    else:  # "1000 - Avenida Paulista" or no number: one part, plus a "km" continuation
        parts = after if number else before
        street = parts[:1] + [p for p in parts[1:2] if normalize(p).startswith("km ")]
    query.street = ", ".join(street + ([number] if number and street else []))
    return query


def resolve(query: Query) -> Match | None:
    if query.country and normalize(query.country) not in _COUNTRIES:
        return None
    city: City | None = None
    if query.city or query.county:
        city = find_city(query.city) or find_city(query.county)
        if city is None:
            return None
    if query.state:
        uf = state_uf(query.state)
        if uf is None or (city is not None and city.uf != uf):
            return None
    cep = cep_digits(query.postalcode) if query.postalcode else None
    if query.postalcode and cep is None:
        return None
    cep_city = city_for_cep(cep) if cep else None
    if city is None:
        city = cep_city
    if city is None:
        return None
    if query.state and state_uf(query.state) != city.uf:
        return None
    street_key, number_key = split_street(query.street)
    if street_key:
        lat, lng = street_point(city, street_key, number_key)
        display = re.sub(r"\s*,?\s*\b" + re.escape(number_key) + r"\b\s*,?\s*", " ", query.street,
                         flags=re.IGNORECASE).strip(" ,") if number_key else query.street.strip(" ,")
        return Match(lat, lng, "house" if number_key else "street", city, display, number_key.upper(),
                     format_cep(cep) if cep else "")
    if cep and cep_city is city:
        point = cep_point(cep)
        assert point is not None
        return Match(point[0], point[1], "postcode", city, cep=format_cep(cep))
    return Match(city.lat, city.lng, "city", city)
