"""The numbered scripts: each is a thin door with pt-BR help and the documented exit codes."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.conftest import ROOT, SCRIPTS


def load_door(step: str):
    spec = importlib.util.spec_from_file_location(f"door_{step}", ROOT / SCRIPTS[step])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("step", sorted(SCRIPTS))
def test_every_script_has_help_with_exit_codes(step, run):
    result = run(step, "--help", env={})
    assert result.returncode == 0, result.stderr
    assert "códigos de saída" in result.stdout and "75" in result.stdout and "pendências" in result.stdout
    assert result.stdout.splitlines()[0].startswith("uso: " + SCRIPTS[step])
    assert "\n  130 interrompido com Ctrl-C" in result.stdout and "\n  143 encerrado por SIGTERM" in result.stdout
    assert "\nopções:\n" in result.stdout and re.search(r"-h, --help\s+mostra esta ajuda e sai", result.stdout)
    for english in ("usage:", "options:", "show this help message and exit", "positional arguments"):
        assert english not in result.stdout


@pytest.mark.parametrize("args,message", [
    (("--nada",), "erro: argumentos não reconhecidos: --nada"),
    (("--ids",), "erro: argumento --ids: esperava um valor"),
    (("--ids", "1", "--completo"), "erro: argumento --completo: não pode ser usado junto com o argumento --ids"),
    (("--ids", "abc"), "erro: argumento --ids: use ids numéricos do iSales"),
])
def test_usage_errors_are_in_portuguese(args, message, run):
    result = run("01", *args, env={})
    assert result.returncode == 2
    assert result.stderr.startswith("uso: 01_get_projetos_isales.py")
    assert message in result.stderr
    assert "error:" not in result.stderr and "usage:" not in result.stderr


@pytest.mark.parametrize("step", sorted(SCRIPTS))
def test_every_script_is_a_thin_importable_door(step):
    door = load_door(step)
    assert callable(door.main) and door.__doc__
    lines = [line for line in (ROOT / SCRIPTS[step]).read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) <= 60, f"{SCRIPTS[step]} tem {len(lines)} linhas: a regra mora em lib/"


@pytest.mark.parametrize("step,variable", [("01", "ISALES_API_TOKEN"), ("02", "GEOCODER_USER_AGENT"),
                                           ("04", "FIELDCONTROL_API_KEY")])
def test_missing_required_variable_stops_before_any_work(step, variable, run, tmp_path, sandbox):
    from tests.conftest import sandbox_env

    env = sandbox_env(sandbox, tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    del env[variable]
    sandbox.reset_calls()
    result = run(step, env=env)
    assert result.returncode == 2
    assert variable in result.stderr
    assert not (tmp_path / "x.db").exists()  # no database call was made
    assert sandbox.calls() == []  # and no network call


@pytest.mark.parametrize("step", ["01", "02", "03", "04"])
def test_steps_refuse_a_database_that_was_not_created(step, run, tmp_path, sandbox):
    from tests.conftest import sandbox_env

    env = sandbox_env(sandbox, tmp_path, f"sqlite:///{tmp_path / 'novo.db'}")
    result = run(step, env=env)
    assert result.returncode == 2
    assert "00_schema_banco.py" in result.stderr


def test_readme_first_screen_shows_the_three_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    for command in ("make demo", "make sandbox", "make test"):
        assert command in first_screen, command
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nsandbox: " in makefile and "scripts/demo.py --sandbox" in makefile
