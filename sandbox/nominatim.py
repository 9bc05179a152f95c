"""Nominatim `/search` and Google Geocoding API simulators over the same address model
(docs/api/geocoding.md): Nominatim demands a User-Agent and 1 request/s; Google a key.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .geocode import Match, Query, parse_free_text, resolve
from .limits import SpacingLimiter
from .state import State
from .web import Request, Response, Route, Router, Settings, error_page, html_response, json_response

LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright"
STRUCTURED = ("amenity", "street", "city", "county", "state", "country", "postalcode")
BLOCKED_AGENTS = ("python-requests/", "python-urllib", "geopy/")
_KIND = {"house": ("place", "house", 30, "place"), "street": ("highway", "residential", 26, "road"),
         "postcode": ("place", "postcode", 21, "postcode"), "city": ("boundary", "administrative", 16, "city")}


def _number(text: str, bits: int = 31) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (2 ** bits)


def _fmt(value: float) -> str:
    return f"{value:.7f}"


class Nominatim:
    name = "nominatim"
    prefixes: tuple[str, ...] = ("/nominatim",)

    def __init__(self, state: State, settings: Settings) -> None:
        self.settings = settings
        self.limiter = SpacingLimiter(lambda: self.settings.nominatim_rps)
        self.router = Router([Route(self.name, "GET", "/nominatim", "/search", self.search)])

    def guard(self, req: Request) -> Response | None:
        agent = (req.header("User-Agent") or "").strip()
        if not agent or agent.lower().startswith(BLOCKED_AGENTS):
            return html_response(403, "<html><body><h1>Access blocked</h1><p>You have been blocked because "
                                      "you have violated the usage policy of OSM's Nominatim geocoding "
                                      "service: send a User-Agent that identifies your application."
                                      "</p></body></html>")
        if self.limiter.check("global") is not None:
            return html_response(429, "<html><body><h1>Too Many Requests</h1><p>Bulk geocoding is "
                                      "limited to 1 request per second.</p></body></html>")
        return None

    def not_found(self, req: Request, other_method: bool) -> Response:
        return html_response(404, error_page(404, "Not Found"))

    def error_response(self, req: Request, status: int) -> Response:
        if status >= 500 or status == 429:
            return html_response(status, error_page(status, "Error"))
        return json_response(status, {"error": {"code": status, "message": "Request failed"}})

    def search(self, req: Request) -> Response:
        fmt = req.query.get("format", "json") or "json"
        if fmt not in ("json", "jsonv2"):
            return json_response(400, {"error": {"code": 400, "message": f"Parameter 'format': unsupported value '{fmt}' in this sandbox (use json or jsonv2)."}})
        q = req.query.get("q", "").strip()
        structured = {k: req.query.get(k, "").strip() for k in STRUCTURED}
        if q and any(structured.values()):
            return json_response(400, {"error": {"code": 400, "message": "Structured query parameters"
                                                 "(amenity, street, city, county, state, postalcode, "
                                                 "country) cannot be used together with 'q' parameter."}})
        if not q and not any(structured.values()):
            return json_response(400, {"error": {"code": 400, "message": "Nothing to search for."}})
        codes = [c.strip().lower() for c in req.query.get("countrycodes", "").split(",") if c.strip()]
        if codes and "br" not in codes:
            return json_response(200, [])
        query = parse_free_text(q) if q else Query(**{k: v for k, v in structured.items() if k != "amenity"})
        match = resolve(query)
        if match is None:
            return json_response(200, [])
        return json_response(200, [self._place(match, fmt, req.query.get("addressdetails") == "1")])

    @staticmethod
    def _place(match: Match, fmt: str, details: bool) -> dict:
        cls, typ, rank, addresstype = _KIND[match.level]
        key = f"{match.city.name}|{match.level}|{match.street}|{match.number}|{match.cep}"
        parts = [match.number, match.street, match.city.name, match.state_name, match.cep, "Brasil"]
        span = {"house": 0.0001, "street": 0.004, "postcode": 0.01, "city": 0.2}[match.level]
        place: dict[str, Any] = {"place_id": _number(key), "licence": LICENCE,
                 "osm_type": "relation" if match.level == "city" else "way" if match.level == "street" else "node",
                 "osm_id": _number("osm" + key, 33), "lat": _fmt(match.lat), "lon": _fmt(match.lng),
                 ("category" if fmt == "jsonv2" else "class"): cls, "type": typ, "place_rank": rank,
                 "importance": round({"house": 0.00001, "street": 0.05, "postcode": 0.1, "city": 0.62}[match.level]
                                     + _number(key, 10) / 1e6, 6),
                 "addresstype": addresstype, "name": match.street or match.city.name,
                 "display_name": ", ".join(p for p in parts if p),
                 "boundingbox": [_fmt(match.lat - span), _fmt(match.lat + span),
                                 _fmt(match.lng - span), _fmt(match.lng + span)]}
        if details:
            address = {"house_number": match.number, "road": match.street, "city": match.city.name,
                       "state": match.state_name, "ISO3166-2-lvl4": f"BR-{match.city.uf}",
                       "postcode": match.cep, "country": "Brasil", "country_code": "br"}
            place["address"] = {k: v for k, v in address.items() if v}
        return place


class Google:
    name = "google"
    prefixes: tuple[str, ...] = ("/google",)

    def __init__(self, state: State, settings: Settings) -> None:
        self.settings = settings
        self.limiter = SpacingLimiter(lambda: self.settings.google_rps)
        self.router = Router([Route(self.name, "GET", "/google", "/maps/api/geocode/json", self.geocode)])

    @staticmethod
    def _status(status: str, message: str | None = None, http: int = 200) -> Response:
        body: dict = {"results": [], "status": status}
        if message:
            body["error_message"] = message
        return json_response(http, body)

    def guard(self, req: Request) -> Response | None:
        key = req.query.get("key", "")
        if not key:
            return self._status("REQUEST_DENIED", "You must use an API key to authenticate each request "
                                "to Google Maps Platform APIs. For additional information, please refer "
                                "to http://g.co/dev/maps-no-account")
        if key != self.settings.google_key:
            return self._status("REQUEST_DENIED", "The provided API key is invalid. ")
        if self.limiter.check(key) is not None:
            return self._status("OVER_QUERY_LIMIT", "You have exceeded your rate-limit for this API.")
        return None

    def not_found(self, req: Request, other_method: bool) -> Response:
        return html_response(404, error_page(404, "Not Found"))

    def error_response(self, req: Request, status: int) -> Response:
        if status == 429:
            return self._status("OVER_QUERY_LIMIT", "You have exceeded your rate-limit for this API.", 429)
        if status >= 500:
            return html_response(status, error_page(status, "Server Error"))
        return self._status("INVALID_REQUEST", f"HTTP {status}", status)

    def geocode(self, req: Request) -> Response:
        address = req.query.get("address", "").strip()
        components = dict(part.split(":", 1) for part in req.query.get("components", "").split("|")
                          if ":" in part)
        if not address and not components:
            return self._status("INVALID_REQUEST", "Invalid request. Missing the 'address', "
                                "'components', 'latlng' or 'place_id' parameter.")
        query = parse_free_text(address) if address else Query()
        for name, attr in (("country", "country"), ("postal_code", "postalcode"),
                           ("locality", "city"), ("administrative_area", "state")):
            if components.get(name):
                setattr(query, attr, components[name])
        match = resolve(query)
        if match is None:
            return self._status("ZERO_RESULTS")
        return json_response(200, {"results": [self._result(match)], "status": "OK"})

    @staticmethod
    def _result(match: Match) -> dict:
        city, uf = match.city.name, match.city.uf
        components = [(match.number, ["street_number"]), (match.street, ["route"]),
                      (city, ["administrative_area_level_2", "political"]),
                      (match.state_name, ["administrative_area_level_1", "political"]),
                      ("Brasil", ["country", "political"]), (match.cep, ["postal_code"])]
        head = f"{match.street}, {match.number}" if match.number else match.street
        formatted = ", ".join(p for p in (head, f"{city} - {uf}", match.cep, "Brasil") if p)
        location_type, types = {"house": ("ROOFTOP", ["street_address"]),
                                "street": ("GEOMETRIC_CENTER", ["route"]),
                                "postcode": ("APPROXIMATE", ["postal_code"]),
                                "city": ("APPROXIMATE", ["locality", "political"])}[match.level]
        span = 0.0015 if match.level == "house" else 0.02
        result: dict[str, Any] = {"address_components": [{"long_name": v, "short_name": uf if "administrative_area_level_1" in t
                                           else "BR" if "country" in t else v, "types": t}
                                          for v, t in components if v],
                  "formatted_address": formatted,
                  "geometry": {"location": {"lat": match.lat, "lng": match.lng}, "location_type": location_type,
                               "viewport": {"northeast": {"lat": round(match.lat + span, 7),
                                                          "lng": round(match.lng + span, 7)},
                                            "southwest": {"lat": round(match.lat - span, 7),
                                                          "lng": round(match.lng - span, 7)}}},
                  "place_id": "ChIJ" + hashlib.sha256(formatted.encode()).hexdigest()[:23],
                  "types": types}
        if match.level in ("city", "postcode"):
            result["partial_match"] = True
        return result
