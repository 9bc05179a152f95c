"""02_tratar_dados_clientes.py run as a user runs it, against the sandbox and a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.db import migrate
from lib.db.engine import make_engine
from lib.maplinks import Point
from tests.conftest import sandbox_env
from tests.steps.input01 import expected_point, hermetic_links, write_01
from tests.steps.test_local_sync import COLUMNS_ENV


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def lite_url(tmp_path):
    """A migrated SQLite database (tests about the geocoder, not about the database)."""
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    engine = make_engine(url, for_migrations=True)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def test_help_and_missing_input(run, tmp_path, lite_url):
    shown = run("02", "--help", env={})
    assert shown.returncode == 0 and "coordenadas" in shown.stdout and "códigos de saída" in shown.stdout
    missing = run("02", env={"DATABASE_URL": lite_url, "DATA_DIR": str(tmp_path / "data"),
                             "GEOCODER_USER_AGENT": "teste", **COLUMNS_ENV})
    assert missing.returncode == 1
    assert "01_projetos_isales.json não encontrado: rode 01_get_projetos_isales.py antes" in missing.stderr


def test_missing_user_agent_is_exit_2_before_any_call(run, sandbox, tmp_path, lite_url):
    env = sandbox_env(sandbox, tmp_path, lite_url, GEOCODER_USER_AGENT="")
    result = run("02", env=env)
    assert result.returncode == 2 and "GEOCODER_USER_AGENT" in result.stderr
    assert sandbox.calls() == []


def test_every_project_has_coordinates_or_a_reason_and_a_rerun_asks_nothing(run, sandbox, tmp_path, pipeline_env):
    hermetic_links(sandbox)
    data = tmp_path / "data"
    write_01(sandbox, data)
    first = run("02", env=pipeline_env)
    output = read(data / "02_projetos_tratados.json")
    assert output["etapa"] == "02" and output["origem"]["execucao_id_01"] == 1
    pendencias = read(data / "pendencias.json")["pendencias"]
    assert first.returncode == (3 if pendencias else 0), first.stderr
    assert {p["isales_id"] for p in output["pendencias"]} == {p["isales_id"] for p in pendencias}
    for project in output["projetos"]:
        endereco = project["endereco"]
        if project["status"] != "cancelado":
            assert endereco["latitude"] and endereco["longitude"], project["isales_id"]
        if endereco["fonte_coordenadas"] in ("link", "endereco"):
            assert Point.of(endereco["latitude"], endereco["longitude"]) == expected_point(endereco)
    sources = output["contagens"]["fontes_coordenadas"]
    assert sources["link"] > 0 and sources["endereco"] > 0
    assert sandbox.calls(system="nominatim") and sandbox.calls(system="shortener")

    sandbox.reset_calls()
    second = run("02", env=pipeline_env)
    assert second.returncode == first.returncode
    assert sandbox.calls() == []  # no geocoder call, no short-link request: all from the cache
    again = read(data / "02_projetos_tratados.json")
    assert again["projetos"] == output["projetos"] and again["pendencias"] == output["pendencias"]
    assert again["contagens"]["geocodificador"]["consultas"] == 0


def test_geocoder_under_a_strict_rate_limit_locates_every_project(run, sandbox, tmp_path, lite_url):
    """Against a server that refuses calls closer than 0.23 s, every project is located by its address
    and each gets exactly one answer; a refusal (a late arrival on a loaded machine) is retried on the
    pacer, never lost. How far apart the client sends its calls is proven without a clock by the
    pacer's own schedule (tests/test_geocoding.py): arrival times at a server depend on the load."""
    sandbox.configure(nominatim_rps=4)
    ids = [p["card"]["cliente_id"] for p in sandbox.projects()][:5]
    for cliente_id in ids:
        sandbox.edit_cliente(cliente_id, link_localizacao="", cpf="529.982.247-25")
    for cliente_id in ids:
        sandbox.move_card(cliente_id, 17840)
    write_01(sandbox, tmp_path / "data", ids=set(ids))
    sandbox.reset_calls()
    result = run("02", env=sandbox_env(sandbox, tmp_path, lite_url, GEOCODER_MIN_DELAY_SECONDS="0.3"))
    assert result.returncode == 0, result.stderr
    output = read(tmp_path / "data/02_projetos_tratados.json")
    assert sorted(p["isales_id"] for p in output["projetos"]) == sorted(str(i) for i in ids)
    assert all(p["endereco"]["fonte_coordenadas"] == "endereco" for p in output["projetos"])
    statuses = [c["status"] for c in sandbox.calls(system="nominatim")]
    assert statuses.count(200) == len(ids) and set(statuses) <= {200, 429}


def test_google_geocodes_the_same_projects(run, sandbox, tmp_path, lite_url):
    hermetic_links(sandbox)
    results = {}
    for provider in ("nominatim", "google"):
        home = tmp_path / provider
        url = lite_url.replace("sync.db", f"{provider}.db")
        engine = make_engine(url, for_migrations=True)
        migrate.upgrade(engine)
        engine.dispose()
        write_01(sandbox, home / "data")
        env = sandbox_env(sandbox, home, url, GEOCODER=provider)
        sandbox.reset_calls()
        result = run("02", env=env)
        assert result.returncode in (0, 3), result.stderr
        assert sandbox.calls(system="google" if provider == "nominatim" else "nominatim") == []
        key = env["GOOGLE_MAPS_API_KEY"]
        assert key not in result.stderr and not any(key in f.read_text(encoding="utf-8", errors="replace")
                                                   for f in (home / "data").rglob("*") if f.is_file())
        output = read(home / "data/02_projetos_tratados.json")
        results[provider] = {p["isales_id"]: (p["endereco"]["latitude"], p["endereco"]["longitude"],
                                              p["endereco"]["fonte_coordenadas"]) for p in output["projetos"]}
    assert results["google"] == results["nominatim"]
    assert any(source == "endereco" for _, _, source in results["google"].values())


def test_google_key_refused_is_exit_2(run, sandbox, tmp_path, lite_url):
    for cliente_id in [p["card"]["cliente_id"] for p in sandbox.projects()]:
        sandbox.edit_cliente(cliente_id, link_localizacao="")
    write_01(sandbox, tmp_path / "data")
    env = sandbox_env(sandbox, tmp_path, lite_url, GEOCODER="google", GOOGLE_MAPS_API_KEY="chave-invalida-xyz")
    result = run("02", env=env)
    assert result.returncode == 2 and "REQUEST_DENIED" in result.stderr
    assert "chave-invalida-xyz" not in result.stderr


def test_unreachable_geocoder_keeps_projects_pending_and_exits_75(run, sandbox, tmp_path, lite_url):
    hermetic_links(sandbox)
    data = tmp_path / "data"
    write_01(sandbox, data)
    down = sandbox_env(sandbox, tmp_path, lite_url, GEOCODER_URL="http://127.0.0.1:9/nominatim",
                       HTTP_MAX_TENTATIVAS="2")
    result = run("02", env=down)
    assert result.returncode == 75, result.stderr
    assert "geocodificador não respondeu" in result.stderr
    output = read(data / "02_projetos_tratados.json")
    waiting = [p for p in output["pendencias"] if "geocodificador indisponível" in p["motivo"]]
    assert waiting and output["projetos"]  # the projects with link coordinates went on
    assert all(p["endereco"]["fonte_coordenadas"] in ("link", None) for p in output["projetos"])
    assert output["contagens"]["geocodificador"]["consultas"] == 1  # tried once, then left alone

    result = run("02", env=sandbox_env(sandbox, tmp_path, lite_url))
    assert result.returncode in (0, 3), result.stderr
    still = {p["isales_id"] for p in read(data / "pendencias.json")["pendencias"]}
    assert not still & {p["isales_id"] for p in waiting}


def test_after_step_01(run, sandbox, tmp_path, lite_url):
    """The issue's 'done when': 01 then 02 against the sandbox, and a second 02 asks nothing."""
    hermetic_links(sandbox)
    env = sandbox_env(sandbox, tmp_path, lite_url)
    assert run("01", env=env).returncode == 0
    first = run("02", env=env)
    assert first.returncode in (0, 3), first.stderr
    output = read(tmp_path / "data/02_projetos_tratados.json")
    fetched = read(tmp_path / "data/01_projetos_isales.json")["projetos"]
    reasons = {p["isales_id"] for p in output["pendencias"]}
    for raw in fetched:
        project = next((p for p in output["projetos"] if p["isales_id"] == str(raw["isales_id"])), None)
        if project is None:  # pending with a reason, or a cancelled project whose move alone counts
            assert str(raw["isales_id"]) in reasons or raw["status"] == "cancelado"
        elif raw["status"] != "cancelado":
            assert project["endereco"]["latitude"] is not None
    sandbox.reset_calls()
    assert run("02", env=env).returncode == first.returncode
    assert sandbox.calls(system="nominatim") == [] and sandbox.calls(system="shortener") == []
