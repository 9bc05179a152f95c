"""lib/steps/record_checks: the id listed twice, found by a pass that holds a number per id, and the
memory that pass keeps while it reads a file of many projects (steps 02 and 03)."""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path

from lib.jsonfiles import stream_envelope, write_envelope
from lib.run import Summary
from lib.steps import record_checks
from lib.steps import treat as treat_step
from lib.steps.local_input import File02


def test_listed_twice_finds_every_repeated_id_once():
    keys = ["4711", "4712", None, "4711", "10", "4712", "4711", "1"]
    assert record_checks.listed_twice(keys) == {"4711", "4712"}
    assert record_checks.listed_twice(["1", "2", "3"]) == set()
    # ids past 2**63 (19 digits) still count as one each
    assert record_checks.listed_twice(["9999999999999999999", "9999999999999999998",
                                       "9999999999999999999"]) == {"9999999999999999999"}


def _peak_while(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


PROJECTS = 20_000


def _file(path: Path, step: str, record) -> Path:
    write_envelope(path, step, 1, {"projetos": iter(record(n) for n in range(PROJECTS)), "movimentos": [],
                                   "pendencias": []})
    return path


def test_step_02_id_check_holds_no_text_per_project(tmp_path):
    """A first pass over 20,000 projects of the 01 file (each read afresh from the file) keeps a
    number per id: before, it kept every id with a line naming its entry (≈ 290 bytes each; now ≈ 45)."""
    path = _file(tmp_path / "01.json", "01",
                 lambda n: {"isales_id": 100000 + n, "coluna_id": 17840, "status": "instalacao",
                            "cliente": {"nome": f"Cliente {n}"}})
    source = stream_envelope(path, "01", produced_by="01", arrays=("projetos", "movimentos")).data()
    ctx = argparse.Namespace(settings=argparse.Namespace(colunas=None), summary=Summary(), data_dir=tmp_path)
    found: list = []
    peak = _peak_while(lambda: found.append(treat_step._input_records(source, ctx)))
    _projects, moves, refused = found[0]
    assert (moves, refused) == ([], [])
    assert peak < 100 * PROJECTS, f"{peak / PROJECTS:.0f} bytes per project"


def test_step_03_survey_holds_a_number_per_project_id(tmp_path):
    """The first pass of step 03 keeps the ids as numbers (8 bytes each in the list it keeps, and a
    number in an array of the ids seen), besides the count of each document: ≈ 135 bytes per
    project, ≈ 300 before."""
    path = _file(tmp_path / "02.json", "02",
                 lambda n: {"isales_id": str(100000 + n), "coluna_id": 17840, "status": "instalacao",
                            "cliente": {"doc_pessoal": f"{n:011d}"}})
    source = File02(stream_envelope(path, "02", produced_by="02", arrays=("projetos", "movimentos")).data())
    surveys: list = []
    peak = _peak_while(lambda: surveys.append(source.survey()))
    assert len(surveys[0].project_ids) == PROJECTS and len(surveys[0].docs) == PROJECTS
    assert peak < 200 * PROJECTS, f"{peak / PROJECTS:.0f} bytes per project"
