"""lib/jsonfiles: atomic writes, and clear pt-BR errors for files that cannot be used."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from lib.errors import InputFileError, SyncError
from lib.jsonfiles import read_envelope, write_envelope


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
def test_unusable_files_are_explained(tmp_path, content, reason):
    path = tmp_path / "01.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=reason) as info:
        read_envelope(path, "01", produced_by="01_get_projetos_isales.py")
    assert "01_get_projetos_isales.py" in str(info.value)


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
