"""Brazilian cities, CEP ranges and the one address → coordinates model of the sandbox.

The data generator, the Nominatim simulator and the Google simulator all use it, so a project's
map link, its geocoded address and its CEP centroid agree.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    uf: str
    lat: float
    lng: float
    cep_lo: int  # first CEP of the city's range (8 digits as int)
    cep_hi: int
    ddd: str
    weight: int = 1


STATES = {
    "AC": "Acre", "AL": "Alagoas", "AP": "Amapá", "AM": "Amazonas", "BA": "Bahia", "CE": "Ceará",
    "DF": "Distrito Federal", "ES": "Espírito Santo", "GO": "Goiás", "MA": "Maranhão",
    "MT": "Mato Grosso", "MS": "Mato Grosso do Sul", "MG": "Minas Gerais", "PA": "Pará",
    "PB": "Paraíba", "PR": "Paraná", "PE": "Pernambuco", "PI": "Piauí", "RJ": "Rio de Janeiro",
    "RN": "Rio Grande do Norte", "RS": "Rio Grande do Sul", "RO": "Rondônia", "RR": "Roraima",
    "SC": "Santa Catarina", "SP": "São Paulo", "SE": "Sergipe", "TO": "Tocantins",
}

CITIES = [
    City("São Paulo", "SP", -23.5505, -46.6333, 1000000, 5999999, "11", 8),
    City("Campinas", "SP", -22.9056, -47.0608, 13000000, 13139999, "19", 3),
    City("Ribeirão Preto", "SP", -21.1775, -47.8103, 14000000, 14114999, "16", 2),
    City("Rio de Janeiro", "RJ", -22.9068, -43.1729, 20000000, 23799999, "21", 4),
    City("Niterói", "RJ", -22.8832, -43.1034, 24000000, 24399999, "21"),
    City("Belo Horizonte", "MG", -19.9167, -43.9345, 30000000, 31999999, "31", 3),
    City("Uberlândia", "MG", -18.9186, -48.2772, 38400000, 38415999, "34", 2),
    City("Vitória", "ES", -20.3155, -40.3128, 29000000, 29099999, "27"),
    City("Curitiba", "PR", -25.4284, -49.2733, 80000000, 82999999, "41", 3),
    City("Londrina", "PR", -23.3045, -51.1696, 86000000, 86099999, "43", 2),
    City("Florianópolis", "SC", -27.5954, -48.5480, 88000000, 88099999, "48", 2),
    City("Joinville", "SC", -26.3045, -48.8487, 89200000, 89239999, "47"),
    City("Porto Alegre", "RS", -30.0346, -51.2177, 90000000, 91999999, "51", 2),
    City("Caxias do Sul", "RS", -29.1678, -51.1794, 95000000, 95124999, "54"),
    City("Goiânia", "GO", -16.6869, -49.2648, 74000000, 74899999, "62", 2),
    City("Rio Verde", "GO", -17.7923, -50.9192, 75900000, 75909999, "64", 2),
    City("Brasília", "DF", -15.7939, -47.8828, 70000000, 72799999, "61", 2),
    City("Campo Grande", "MS", -20.4697, -54.6201, 79000000, 79124999, "67"),
    City("Cuiabá", "MT", -15.6014, -56.0979, 78000000, 78109999, "65", 2),
    City("Salvador", "BA", -12.9714, -38.5014, 40000000, 42599999, "71", 2),
    City("Feira de Santana", "BA", -12.2664, -38.9663, 44000000, 44099999, "75"),
    City("Recife", "PE", -8.0476, -34.8770, 50000000, 52999999, "81", 2),
    City("Petrolina", "PE", -9.3891, -40.5030, 56300000, 56354999, "87"),
    City("Fortaleza", "CE", -3.7319, -38.5267, 60000000, 61599999, "85", 2),
    City("Natal", "RN", -5.7945, -35.2110, 59000000, 59139999, "84"),
    City("João Pessoa", "PB", -7.1195, -34.8450, 58000000, 58099999, "83"),
    City("Maceió", "AL", -9.6498, -35.7089, 57000000, 57099999, "82"),
    City("Aracaju", "SE", -10.9472, -37.0731, 49000000, 49099999, "79"),
    City("Teresina", "PI", -5.0920, -42.8038, 64000000, 64099999, "86"),
    City("São Luís", "MA", -2.5307, -44.3068, 65000000, 65109999, "98"),
    City("Belém", "PA", -1.4558, -48.4902, 66000000, 66999999, "91"),
    City("Manaus", "AM", -3.1190, -60.0217, 69000000, 69099999, "92"),
    City("Palmas", "TO", -10.2491, -48.3243, 77000000, 77249999, "63"),
    City("Porto Velho", "RO", -8.7612, -63.9004, 76800000, 76834999, "69"),
]

_ABBREVIATIONS = {
    "av": "avenida", "r": "rua", "rod": "rodovia", "est": "estrada", "tv": "travessa",
    "trav": "travessa", "al": "alameda", "pca": "praca", "pc": "praca", "dr": "doutor",
}
_NO_NUMBER = {"sn", "s n", "sem numero", "snº"}
_HOUSE_NUMBER = re.compile(r"^\d{1,6}[a-z]?$", re.IGNORECASE)


def ascii_fold(text: str) -> str:
    """"São Paulo" → "Sao Paulo"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize(text: str | None) -> str:
    """Lower case, no accents, punctuation to spaces, single spaces."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


_CITY_INDEX = {normalize(c.name): c for c in CITIES}
_STATE_INDEX = {normalize(name): uf for uf, name in STATES.items()}


def find_city(name: str | None) -> City | None:
    return _CITY_INDEX.get(normalize(name))


def state_uf(state: str | None) -> str | None:
    """UF of a state given as code or full name (any case/accents), else None."""
    key = normalize(state)
    if key.upper() in STATES:
        return key.upper()
    return _STATE_INDEX.get(key)


def cep_digits(cep: str | None) -> str | None:
    digits = re.sub(r"\D", "", cep or "")
    return digits if len(digits) == 8 else None


def city_for_cep(cep: str | None) -> City | None:
    digits = cep_digits(cep)
    if digits is None:
        return None
    value = int(digits)
    return next((c for c in CITIES if c.cep_lo <= value <= c.cep_hi), None)


def split_street(street: str | None) -> tuple[str, str]:
    """("avenida paulista", "1000") from "Av. Paulista, 1000" or "1000 Avenida Paulista"."""
    text = re.sub(r"\bs\s*/\s*n[º°o]?\b", " ", street or "", flags=re.IGNORECASE)
    number = ""
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        at = next((i for i, p in enumerate(parts) if _HOUSE_NUMBER.match(p)), None)
        if at is not None:
            number = parts[at]
            # the street is what comes before the number ("Rodovia GO-174, km 12, 300, fundos")
            parts = parts[:at] if at > 0 else parts[1:2]
        text = " ".join(parts)
    else:
        tokens = text.split()
        if len(tokens) > 1 and _HOUSE_NUMBER.match(tokens[0]):
            number, tokens = tokens[0], tokens[1:]
        elif len(tokens) > 1 and _HOUSE_NUMBER.match(tokens[-1]):
            number, tokens = tokens[-1], tokens[:-1]
        text = " ".join(tokens)
    return street_name_key(text), house_number_key(number)


def street_name_key(street: str | None) -> str:
    words = normalize(street).split()
    words = [_ABBREVIATIONS.get(w, w) for w in words]
    key = " ".join(words)
    return "" if key in _NO_NUMBER else key


def house_number_key(number: str | None) -> str:
    key = normalize(number).replace(" ", "")
    return key if key and _HOUSE_NUMBER.match(key) else ""


def _offset(*parts: str, spread: float) -> tuple[float, float]:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    a = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    b = int.from_bytes(digest[4:8], "big") / 0xFFFFFFFF
    return (a * 2 - 1) * spread, (b * 2 - 1) * spread


def street_point(city: City, street_key: str, number_key: str = "") -> tuple[float, float]:
    """Deterministic point within ~3 km of the city centre for a (street, number) key."""
    dlat, dlng = _offset(normalize(city.name), street_key, spread=0.03)
    if number_key:
        nlat, nlng = _offset(normalize(city.name), street_key, number_key, spread=0.002)
        dlat, dlng = dlat + nlat, dlng + nlng
    return round(city.lat + dlat, 7), round(city.lng + dlng, 7)


def address_point(city: City, street: str | None, number: str | None) -> tuple[float, float]:
    """The coordinates of a generated address (same keys as a geocoder query would produce)."""
    return street_point(city, street_name_key(street), house_number_key(number))


def cep_point(cep: str) -> tuple[float, float] | None:
    city = city_for_cep(cep)
    if city is None:
        return None
    dlat, dlng = _offset("cep", cep_digits(cep) or "", spread=0.03)
    return round(city.lat + dlat, 7), round(city.lng + dlng, 7)


def format_cep(digits: str) -> str:
    return f"{digits[:5]}-{digits[5:]}"
