"""lib/jsonfiles: atomic writes, and clear pt-BR errors for files that cannot be used."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from lib.errors import InputFileError, SyncError
from lib.jsonfiles import read_envelope, stream_envelope, write_envelope


def test_round_trip_with_decimals_and_accents(tmp_path):
    path = tmp_path / "01.json"
    write_envelope(path, "01", 7, {"projetos": [{"nome": "José Ávila 🌞", "valor": Decimal("45900.00")}]})
    data = read_envelope(path, "01", produced_by="01_get_projetos_isales.py")
    assert data["execucao_id"] == 7 and data["projetos"][0] == {"nome": "José Ávila 🌞", "valor": "45900.00"}
    assert [p.name for p in tmp_path.iterdir()] == ["01.json"]  # no temporary file left behind


@pytest.mark.parametrize("content,reason", [
    (None, "não encontrado"),
    (b'{"etapa": "01", "formato": 1, "projetos": [', "truncado"),
    (b'{"etapa": "01", "nome": "Jos\xe9"}', "UTF-8"),
    (b'[1, 2]', "envelope"),
    (b'{"etapa": "02", "formato": 1}', "etapa '02'"),
    (b'{"etapa": "01", "formato": 99}', "formato 99"),
])
@pytest.mark.parametrize("streamed", [False, True])
def test_unusable_files_are_explained(tmp_path, content, reason, streamed):
    path = tmp_path / "01.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=reason) as info:
        if streamed:
            stream_envelope(path, "01", produced_by="01_get_projetos_isales.py", arrays=("projetos",))
        else:
            read_envelope(path, "01", produced_by="01_get_projetos_isales.py")
    assert "01_get_projetos_isales.py" in str(info.value)


BODY = {"origem": {"execucao_id_01": 3, "lista": [1, 2.5, None]}, "contagens": {"total": 3},
        "projetos": [{"isales_id": "1", "valor": Decimal("10.50"), "bruto": {"x": [1.25, {"y": "a\nb"}], "z": []}},
                     {"isales_id": "2", "nome": "José Ávila 🌞", "vazio": {}}, "texto solto"],
        "movimentos": [], "pendencias": [{"isales_id": "9", "motivo": "sem coordenadas"}]}


def test_a_streamed_array_is_written_exactly_as_a_whole_dump(tmp_path, monkeypatch):
    import lib.jsonfiles as jsonfiles

    monkeypatch.setattr(jsonfiles, "utcnow", lambda: __import__("datetime").datetime(2026, 11, 30, 12, 0, 0))
    write_envelope(tmp_path / "whole.json", "02", 4, BODY)
    streamed = {name: iter(value) if isinstance(value, list) else value for name, value in BODY.items()}
    write_envelope(tmp_path / "streamed.json", "02", 4, streamed)
    assert (tmp_path / "streamed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()


def test_a_file_is_read_item_by_item_with_the_same_values(tmp_path):
    path = tmp_path / "02.json"
    write_envelope(path, "02", 4, {**BODY, "projetos": iter(BODY["projetos"])})
    whole = read_envelope(path, "02", produced_by="x")
    envelope = stream_envelope(path, "02", produced_by="x", arrays=("projetos", "movimentos", "ausente"))
    assert envelope.header == {name: value for name, value in whole.items() if name not in ("projetos", "movimentos")}
    assert envelope.sizes == {"projetos": 3, "movimentos": 0}
    assert list(envelope.items("projetos")) == whole["projetos"] and list(envelope.items("projetos"))
    assert list(envelope.items("movimentos")) == [] and list(envelope.items("ausente")) == []


def test_the_check_pass_reads_basic_events_and_still_refuses_a_damaged_file(tmp_path, monkeypatch):
    """The pass that checks the whole file before use reads basic events: no path is built for each
    event of the arrays (ijson.parse did, the most of the read's cost for 03; the old code fails
    here). A non-array field where an array is expected stays in the header; text after the
    top-level object and a cut inside an array or a header field are still refused."""
    import ijson

    def no_paths(*args, **kwargs):
        raise AssertionError("ijson.parse: a path per event")

    monkeypatch.setattr(ijson, "parse", no_paths)
    path = tmp_path / "02.json"
    write_envelope(path, "02", 4, {**BODY, "movimentos": {"nao": "lista"}, "projetos": iter(BODY["projetos"])})
    envelope = stream_envelope(path, "02", produced_by="x", arrays=("projetos", "movimentos"))
    assert envelope.sizes == {"projetos": 3} and envelope.header["movimentos"] == {"nao": "lista"}
    assert envelope.header["pendencias"] == BODY["pendencias"] and envelope.header["origem"] == BODY["origem"]
    text = path.read_bytes()
    monkeypatch.undo()  # the explanation of a damaged file (read_envelope) may parse it whole
    for damaged in (text + b"{}", text[:text.index(b'"texto solto"')], text[:text.index(b'"sem coordenadas"')]):
        path.write_bytes(damaged)
        with pytest.raises(InputFileError, match="JSON válido"):
            stream_envelope(path, "02", produced_by="x", arrays=("projetos", "movimentos"))


def test_a_producer_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "02.json"
    write_envelope(path, "02", 1, {"projetos": []})

    def broken():
        yield {"isales_id": "1"}
        raise RuntimeError("falhou no meio")

    with pytest.raises(RuntimeError):
        write_envelope(path, "02", 2, {"projetos": broken()})
    assert read_envelope(path, "02", produced_by="x")["execucao_id"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["02.json"]


def test_disk_full_keeps_previous_file(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "01.json"
    write_envelope(path, "01", 1, {"projetos": []})

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SyncError, match="arquivo anterior foi mantido"):
        write_envelope(path, "01", 2, {"projetos": []})
    monkeypatch.undo()
    assert read_envelope(path, "01", produced_by="x")["execucao_id"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["01.json"]


def test_data_dir_that_is_a_file_is_explained(tmp_path):
    (tmp_path / "data").write_text("não sou uma pasta")
    with pytest.raises(SyncError, match="não foi possível gravar"):
        write_envelope(tmp_path / "data" / "01.json", "01", 1, {})
