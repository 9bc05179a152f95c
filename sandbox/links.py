"""Map links in every format of geocoding.md, and the short links the sandbox resolves itself.

Short links are stored with the placeholder SANDBOX_URL; it becomes the request's own
`http://<Host>` when an answer is sent (real maps.app.goo.gl cannot be reached from here).
Every link a client has to follow (no coordinates in its text) points at the sandbox too — its
shortener, its own map pages (`/maps/place/<name>`) and a social page (`/instagram/p/<code>/`) —
so that nothing generated here sends a client to a host outside the machine.
"""

from __future__ import annotations

import random
import string
from urllib.parse import quote, quote_plus

SANDBOX_URL = "@SANDBOX@"

# Formats whose link carries (after resolution) the project's own coordinates.
COORD_FORMATS = [
    "place_at", "search", "q", "ll", "maps_place", "data_3d4d", "apple_coordinate", "apple_ll",
    "bare", "bare_text", "encoded_at", "encoded_search", "encoded_q", "google_url_wrapper",
    "whitespace", "short", "short_301", "short_chain", "short_consent",
]
# Formats from which no usable coordinates come out.
NO_COORD_FORMATS = [
    "empty", "null", "junk_text", "instagram", "place_no_coords", "outside_brazil", "swapped",
    "short_no_coords", "short_loop",
]
ALL_FORMATS = COORD_FORMATS + NO_COORD_FORMATS

WEIGHTS = {
    "short": 18, "short_301": 6, "place_at": 12, "data_3d4d": 8, "short_chain": 4,
    "short_consent": 4, "q": 4, "search": 4, "ll": 2, "maps_place": 2, "apple_coordinate": 1,
    "apple_ll": 1, "bare": 3, "bare_text": 1, "encoded_at": 1, "encoded_search": 1,
    "encoded_q": 1, "google_url_wrapper": 1, "whitespace": 1, "empty": 7, "null": 4,
    "junk_text": 3, "instagram": 1, "place_no_coords": 2, "outside_brazil": 1, "swapped": 1,
    "short_no_coords": 1, "short_loop": 1,
}

LISBON = (38.7223, -9.1393)


def short_url(code: str) -> str:
    return f"{SANDBOX_URL}/l/{code}"


def map_page(slug: str) -> str:
    """A place page without coordinates (Google Maps' by name only), served by the sandbox."""
    return f"{SANDBOX_URL}/maps/place/{slug.replace('%2F', '+')}"  # one path segment: "S/N" → "S N"


def new_code(rng: random.Random, taken: dict) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        code = "".join(rng.choice(alphabet) for _ in range(rng.choice([10, 11, 17])))
        if code not in taken:
            return code


def _c(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".")


def place_slug(label: str) -> str:
    return quote_plus(label, safe=",")


def long_link(rng: random.Random, lat: float, lng: float, label: str) -> str:
    """A long Google Maps link a short link may redirect to."""
    link = build(rng.choice(["place_at", "data_3d4d", "search", "q"]), rng, lat, lng, label, {})
    assert link is not None  # only the negative formats have no link
    return link


def build(fmt: str, rng: random.Random, lat: float, lng: float, label: str,
          shortlinks: dict) -> str | None:
    """The link of `fmt` for (lat, lng); short formats add their entries to `shortlinks`."""
    la, ln, slug = _c(lat), _c(lng), place_slug(label)
    hexid = "".join(rng.choice("0123456789abcdef") for _ in range(16))
    if fmt == "place_at":
        return f"https://www.google.com/maps/place/{slug}/@{la},{ln},17z/data=!3m1!4b1!4m2!3m1!1s0x0:0x{hexid}"
    if fmt == "search":
        return f"https://www.google.com/maps/search/{la},+{ln}?entry=tts"
    if fmt == "q":
        return f"https://www.google.com/maps?q={la},{ln}"
    if fmt == "ll":
        return f"https://www.google.com/maps?hl=pt-BR&ll={la},{ln}&z=17"
    if fmt == "maps_place":
        return f"https://maps.google.com/maps/place/{la},{ln}"
    if fmt == "data_3d4d":
        vla, vln = _c(lat + rng.uniform(0.004, 0.009)), _c(lng - rng.uniform(0.004, 0.009))
        return (f"https://www.google.com/maps/place/{slug}/@{vla},{vln},15z/data=!3m1!4b1!4m6!3m5"
                f"!1s0x94ce59c8da0aa315:0x{hexid}!8m2!3d{la}!4d{ln}!16s%2Fg%2F11c1q8xk2m?entry=ttu")
    if fmt == "apple_coordinate":
        return f"https://maps.apple.com/place?coordinate={la}%2C{ln}&name=Local%20da%20obra"
    if fmt == "apple_ll":
        return f"https://maps.apple.com/?ll={la},{ln}&q=Casa"
    if fmt == "bare":
        return f"{la}, {ln}"
    if fmt == "bare_text":
        return f"Localização: {la},{ln} (portão azul)"
    if fmt == "encoded_at":
        return f"https://www.google.com/maps/place/{slug}/%40{la}%2C{ln}%2C17z"
    if fmt == "encoded_search":
        return f"https://www.google.com/maps/search/{la}%2C%2B{ln}"
    if fmt == "encoded_q":
        return f"https://www.google.com/maps?q={la}%2C{ln}"
    if fmt == "google_url_wrapper":
        inner = f"https://www.google.com/maps?q={la},{ln}"
        return f"https://www.google.com/url?q={quote(inner, safe='')}&sa=D&source=editors"
    if fmt == "whitespace":
        return f"  https://www.google.com/maps?q={la},{ln}\n"
    if fmt in ("short", "short_301"):
        code = new_code(rng, shortlinks)
        status = 301 if fmt == "short_301" else 302
        shortlinks[code] = {"status": status, "location": long_link(rng, lat, lng, label)}
        return short_url(code)
    if fmt == "short_chain":
        first, second = new_code(rng, shortlinks), None
        shortlinks[first] = {"status": 301, "location": ""}
        second = new_code(rng, shortlinks)
        shortlinks[first]["location"] = short_url(second)
        shortlinks[second] = {"status": 302, "location": long_link(rng, lat, lng, label)}
        return short_url(first)
    if fmt == "short_consent":
        code = new_code(rng, shortlinks)
        shortlinks[code] = {"status": 302, "location": consent_url(long_link(rng, lat, lng, label))}
        return short_url(code)
    return _build_negative(fmt, rng, lat, lng, slug, shortlinks)


def _build_negative(fmt: str, rng: random.Random, lat: float, lng: float, slug: str,
                    shortlinks: dict) -> str | None:
    if fmt == "empty":
        return rng.choice(["", " "])
    if fmt == "null":
        return None
    if fmt == "junk_text":
        return rng.choice(["ver com o vendedor", "pegar localização no whatsapp", "-", "sem link"])
    if fmt == "instagram":
        return f"{SANDBOX_URL}/instagram/p/C3xYz9LmNoP/"
    if fmt == "place_no_coords":
        return map_page(slug)
    if fmt == "outside_brazil":
        la, ln = LISBON
        return f"https://www.google.com/maps/place/Lisboa,+Portugal/@{_c(la)},{_c(ln)},12z"
    if fmt == "swapped":
        return f"https://www.google.com/maps?q={_c(lng)},{_c(lat)}"
    if fmt == "short_no_coords":
        code = new_code(rng, shortlinks)
        shortlinks[code] = {"status": 302, "location": map_page(slug)}
        return short_url(code)
    if fmt == "short_loop":
        a = new_code(rng, shortlinks)
        shortlinks[a] = {"status": 302, "location": ""}
        b = new_code(rng, shortlinks)
        shortlinks[a]["location"] = short_url(b)
        shortlinks[b] = {"status": 302, "location": short_url(a)}
        return short_url(a)
    raise ValueError(f"formato de link desconhecido: {fmt}")


def consent_url(long_url: str) -> str:
    return f"https://consent.google.com/ml?continue={quote(long_url, safe='')}&gl=BR&hl=pt-BR&pc=m"


def fixed_shortlinks() -> dict:
    """Named codes for tests: a two-hop chain, a consent wrapper, a loop and a chain of 7 hops."""
    target = "https://www.google.com/maps/place/Avenida+Paulista,+1000/@-23.5614,-46.6559,17z"
    links = {
        "chain-a": {"status": 301, "location": short_url("chain-b")},
        "chain-b": {"status": 302, "location": target},
        "consent": {"status": 302, "location": consent_url(target)},
        "loop-x": {"status": 302, "location": short_url("loop-y")},
        "loop-y": {"status": 302, "location": short_url("loop-x")},
        "direct": {"status": 302, "location": target},
    }
    for hop in range(1, 8):
        nxt = short_url(f"hop-{hop + 1}") if hop < 7 else target
        links[f"hop-{hop}"] = {"status": 302 if hop % 2 else 301, "location": nxt}
    return links
