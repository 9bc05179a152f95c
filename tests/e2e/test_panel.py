"""data/relatorio.html after the numbered scripts, rendered by a real headless browser (Debian's
chromium): the visible text, the masking of documents, no external asset, and the chart drawn.

Without chromium the test is skipped on a developer machine, and fails under CI=true (.ci/run
installs it): a page nobody renders is a page nobody checked.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from lib.panel import CREATED_COLOR, FILE_PANEL, PENDING_COLOR
from tests.conftest import sandbox_env

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium não encontrado e CI=true: .ci/run deve instalá-lo (apt-get install -y chromium)")
    pytest.skip("chromium não instalado nesta máquina (apt-get install -y chromium); na CI este teste roda")


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"perfil-{len(list(tmp_path.glob('perfil-*')))}"
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of a non-interlaced 8-bit RGB/RGBA PNG (what chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    step = 3 if color == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * step, [], bytearray(width * step)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(row[x * step:x * step + 3]) for row in rows for x in range(width)]


def count_color(pixels: list[bytes], hex_color: str) -> int:
    wanted = bytes.fromhex(hex_color.lstrip("#"))
    return sum(1 for pixel in pixels if pixel == wanted)


def test_the_page_after_every_step_renders_in_chromium(run, sandbox, tmp_path):
    chromium()
    env = sandbox_env(sandbox, tmp_path, f"sqlite:///{tmp_path / 'sync.db'}")
    sandbox.add_projects(1, cpf="123.456.789-00", coluna_id=17840)  # one pending item, on purpose
    page = tmp_path / "data" / FILE_PANEL
    created = run("00", env=env)
    assert created.returncode == 0 and f"estado da integração em {page}" in created.stderr, created.stderr
    assert page.read_text(encoding="utf-8").count("nunca rodou") == 4
    for step in ("01", "02", "03", "04"):
        before = page.stat().st_mtime_ns if page.exists() else None
        result = run(step, env=env)
        assert result.returncode in (0, 3), result.stderr[-3000:]
        assert page.exists() and page.stat().st_mtime_ns != before, f"{FILE_PANEL} não reescrito pelo {step}"
        assert f"estado da integração em {page}" in result.stderr
    source = page.read_text(encoding="utf-8")
    # self-contained: the only URL is the SVG namespace; nothing is fetched
    assert re.findall(r"https?://[^\s\"'<>]+", source) == ["http://www.w3.org/2000/svg"]
    assert not re.search(r"\b(src|href)=|url\(|@import", source)

    dom = browse(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom.stdout))
    for expected in ("Última execução de cada etapa", "01 — busca no iSales", "04 — envio ao FieldControl",
                     "Pendências abertas: 1", "documento inválido", "OS enviadas por tipo e situação",
                     "O que foi feito no FieldControl nas últimas execuções do 04", "Instalação",
                     "Criados e pendentes por execução (últimas 4)"):
        assert expected in text, expected
    assert re.search(r"#\d+, \d\d/\d\d/\d{4} \d\d:\d\d UTC 3 \(com pendências\)", text)  # 02's row
    # documents masked as in the e-mail: never a whole CPF/CNPJ of a customer sent to FieldControl
    documents = [c["documentNumber"] for c in sandbox.fc_customers() if c.get("documentNumber")]
    assert documents and not [doc for doc in documents if doc in dom.stdout]
    assert "*******" in text
    ours = [k for k in sandbox.fc_tickets() if str((k.get("external") or {}).get("id") or "").startswith("isales:")]
    assert ours and all(k["identifier"] in text and k["id"] not in dom.stdout for k in ours)  # human numbers only
    assert dom.stdout.count('class="criados"') == 4 and dom.stdout.count('class="pendentes"') == 4

    shot = tmp_path / "relatorio.png"
    drawn = browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,4000", "--hide-scrollbars")
    assert drawn.returncode == 0 and shot.exists(), drawn.stderr[-2000:]
    _, _, pixels = png_pixels(shot)
    legend = 16 * 16  # each legend square is at most this big; the bars must add far more
    assert count_color(pixels, CREATED_COLOR) > legend * 3, "as barras de criados não foram desenhadas"
    assert count_color(pixels, PENDING_COLOR) > legend, "a barra de pendentes não foi desenhada"
