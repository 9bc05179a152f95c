"""The id listed twice (lib/steps/treat_spool for step 02, lib/steps/record_checks for step 03), and
the memory the pass that finds it keeps while it reads a file of many projects."""

from __future__ import annotations

import argparse
from pathlib import Path

from lib.jsonfiles import stream_envelope, write_envelope
from lib.run import Summary
from lib.steps import treat as treat_step
from lib.steps.local_input import File02
from lib.steps.treat_spool import MOVE, REFUSED, Spool
from tests.memory import traced_peak


def test_listed_twice_finds_every_repeated_id_once(tmp_path):
    keys = ["4711", "4712", None, "4711", "10", "4712", "4711", "1"]
    with Spool(tmp_path) as spool:
        assert spool.listed_twice(keys) == {"4711", "4712"}
        assert spool.listed_twice(["1", "2", "3"]) == set()
        # ids past 2**63 (19 digits) still count as one each
        assert spool.listed_twice(["9999999999999999999", "9999999999999999998",
                                   "9999999999999999999"]) == {"9999999999999999999"}
    assert list(tmp_path.iterdir()) == []  # the spool is removed at the end


PROJECTS = 20_000


def _file(path: Path, step: str, record, projects: int = PROJECTS) -> Path:
    write_envelope(path, step, 1, {"projetos": iter(record(n) for n in range(projects)), "movimentos": [],
                                   "pendencias": []})
    return path


def test_step_02_id_check_holds_nothing_per_project(tmp_path):
    """A first pass over the projects of the 01 file (each read afresh from the file) counts the
    ids on disk (the spool): its peak is the same for 5,000 and 20,000 projects. Before, it kept
    every id with a line naming its entry (≈ 290 bytes each), then a number per id and a sorted
    list of them (≈ 45 bytes each)."""
    ctx = argparse.Namespace(settings=argparse.Namespace(colunas=None), summary=Summary(), data_dir=tmp_path)
    peaks = {}
    for projects in (PROJECTS // 4, PROJECTS):
        path = _file(tmp_path / f"01-{projects}.json", "01",
                     lambda n: {"isales_id": 100000 + n, "coluna_id": 17840, "status": "instalacao",
                                "cliente": {"nome": f"Cliente {n}"}}, projects)
        source = stream_envelope(path, "01", produced_by="01", arrays=("projetos", "movimentos")).data()
        with Spool(tmp_path) as spool:
            peaks[projects] = traced_peak(lambda s=source, sp=spool: treat_step._input_records(s, ctx, sp))
            assert (spool.count(MOVE), spool.count(REFUSED)) == (0, 0)
    growth = (peaks[PROJECTS] - peaks[PROJECTS // 4]) / (PROJECTS - PROJECTS // 4)
    assert growth < 5, f"{growth:.0f} bytes per project more ({peaks})"


def test_step_03_survey_holds_a_number_per_project_id(tmp_path):
    """The first pass of step 03 keeps the ids as numbers (8 bytes each in the list it keeps, and a
    number in an array of the ids seen), besides the count of each document: ≈ 135 bytes per
    project, ≈ 300 before."""
    path = _file(tmp_path / "02.json", "02",
                 lambda n: {"isales_id": str(100000 + n), "coluna_id": 17840, "status": "instalacao",
                            "cliente": {"doc_pessoal": f"{n:011d}"}})
    source = File02(stream_envelope(path, "02", produced_by="02", arrays=("projetos", "movimentos")).data())
    surveys: list = []
    peak = traced_peak(lambda: surveys.append(source.survey()))
    assert len(surveys[0].project_ids) == PROJECTS and len(surveys[0].docs) == PROJECTS
    assert peak < 200 * PROJECTS, f"{peak / PROJECTS:.0f} bytes per project"
