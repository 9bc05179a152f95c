"""The link shortener: one hop per request, chains, consent wrapper, loop, long chain, 404."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def follow(api, url: str, limit: int = 10) -> list[tuple[int, str]]:
    """[(status, Location)] hop by hop while the Location stays on the sandbox."""
    hops = []
    while url.startswith(api.sb.url) and len(hops) < limit:
        response = api.http.get(url, allow_redirects=False, timeout=10)
        if response.status_code not in (301, 302):
            hops.append((response.status_code, ""))
            break
        url = response.headers["Location"]
        hops.append((response.status_code, url))
    return hops


def test_two_hop_chain(api):
    hops = follow(api, f"{api.sb.url}/l/chain-a")
    assert [s for s, _ in hops] == [301, 302]
    assert hops[0][1] == f"{api.sb.url}/l/chain-b"
    assert "@-23.5614,-46.6559" in hops[1][1]


def test_consent_wrapper(api):
    [(status, location)] = follow(api, f"{api.sb.url}/l/consent")
    assert status == 302 and location.startswith("https://consent.google.com/ml?")
    inner = parse_qs(urlsplit(location).query)["continue"][0]
    assert inner.startswith("https://www.google.com/maps/place/") and "@-23.5614,-46.6559" in inner


def test_loop_and_seven_hops(api):
    loop = follow(api, f"{api.sb.url}/l/loop-x", limit=4)
    assert [loc for _, loc in loop][:2] == [f"{api.sb.url}/l/loop-y", f"{api.sb.url}/l/loop-x"]
    chain = follow(api, f"{api.sb.url}/l/hop-1")
    assert len(chain) == 7 and not chain[-1][1].startswith(api.sb.url)


def test_unknown_code_is_404_and_head_works(api):
    assert api.get("/l/nao-existe").status_code == 404
    head = api.http.head(f"{api.sb.url}/l/direct", allow_redirects=False)
    assert head.status_code == 302 and head.headers["Location"].startswith("https://www.google.com/maps/")


def test_locations_use_the_host_the_client_used(api):
    response = api.get("/l/chain-a", headers={"Host": f"localhost:{api.sb.port}"})
    assert response.headers["Location"] == f"http://localhost:{api.sb.port}/l/chain-b"


def test_every_generated_short_link_resolves(make_sandbox):
    sb, api = make_sandbox(projetos=120)
    links = [p["cliente"]["link_localizacao"] for p in sb.projects()
             if (p["cliente"]["link_localizacao"] or "").startswith(f"{sb.url}/l/")]
    assert len(links) > 20
    endings = set()
    for link in links:
        hops = follow(api, link, limit=6)
        assert hops and all(status in (301, 302) for status, _ in hops[:-1])
        status, final = hops[-1]
        if status == 200:  # the sandbox's own page of a place without coordinates
            endings.add("página do sandbox")
            continue
        assert status in (301, 302)
        endings.add("loop" if final.startswith(sb.url) else urlsplit(final).hostname)
    assert {"www.google.com", "consent.google.com", "página do sandbox"} <= endings


def test_every_link_to_follow_stays_on_the_sandbox(api):
    """What step 02 would have to request (a link without coordinates in its text, and each hop that
    still has none) is on the sandbox: the demo reaches no host outside the machine."""
    from lib import maplinks
    from sandbox import Sandbox

    generated = Sandbox(800, 11)
    outside = []
    for project in generated.projects():
        link = project["cliente"]["link_localizacao"]
        url = maplinks.first_url(link) if link and maplinks.parse(link) is None else None
        if url and not url.startswith(generated.url):
            outside.append(url)
    for entry in generated.state.shortlinks.values():
        target = maplinks.unwrap(entry["location"])
        if maplinks.parse(target) is None and not target.startswith("@SANDBOX@"):
            outside.append(target)
    assert outside == []


def test_the_pages_without_coordinates_answer_200(api):
    for path in ("/maps/place/Casa+do+Cliente", "/instagram/p/C3xYz9LmNoP/"):
        response = api.http.head(f"{api.sb.url}{path}", allow_redirects=False, timeout=10)
        assert response.status_code == 200 and "Location" not in response.headers
