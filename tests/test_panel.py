"""data/relatorio.html (lib/panel.py) at the scale of a first load: the page lists every customer and
ticket the latest 04 created, and writes them as they are read, never holding them all (issue 14 §2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import lib.db.schema as t
from lib import panel
from tests.memory import open_item, traced_peak


def _push_run(engine, customers: int) -> None:
    """A finished run of 04 that created `customers` customers (and nothing before it)."""
    started = datetime(2026, 3, 2, 8, 0)
    with engine.begin() as conn:
        conn.execute(t.execucao.delete())
        conn.execute(t.acao_field.delete())
        conn.execute(t.cliente.delete())
        conn.execute(t.execucao.insert().values(etapa="04", iniciada_em=started, terminada_em=started + timedelta(hours=1),
                                                codigo_saida=0, contagens="{}"))
        conn.execute(t.cliente.insert(), [{"id": n, "nome": f"Cliente de teste número {n:06d}",
                                           "doc_pessoal": f"{n:011d}", "field_id": f"fc-{n}",
                                           "criado_pelo_script": True} for n in range(1, customers + 1)])
        conn.execute(t.acao_field.insert(), [{"chave": f"customer:{n}", "tipo": "customer", "estado": t.CONCLUIDA,
                                              "cliente_id": n, "field_id": f"fc-{n}", "criada_em": started,
                                              "atualizada_em": started, "concluida_em": started + timedelta(seconds=n)}
                                             for n in range(1, customers + 1)])


def _peak_of_write(engine, folder) -> int:
    return traced_peak(lambda: panel.write(engine, folder))


def test_the_page_of_a_first_load_is_written_without_holding_its_rows(engine, tmp_path):
    peaks = {}
    for customers in (300, 3000):
        _push_run(engine, customers)
        peaks[customers] = _peak_of_write(engine, tmp_path)
        page = (tmp_path / panel.FILE_PANEL).read_text(encoding="utf-8")
        # every customer is on the page: the bound comes from streaming, never from cutting the list
        assert "Clientes criados ou adotados no FieldControl na execução #" in page
        assert f": {customers}</h3>" in page
        assert all(f"Cliente de teste número {n:06d}" in page for n in (1, customers // 2, customers))
        assert page.count("<td>criado</td>") == customers
    # 2,700 more customers cost ≈ 2.5 MB when the page is built whole; streamed, the rows are not held
    assert peaks[3000] - peaks[300] < 600_000, peaks


def test_the_open_items_are_written_without_holding_them(engine, tmp_path):
    from lib.db.schema import pendencia

    peaks = {}
    for items in (300, 3000):
        with engine.begin() as conn:
            conn.execute(pendencia.delete())
            conn.execute(pendencia.insert(), [open_item("02", f"isales:{n}", f"documento inválido {n:06d}", n)
                                              for n in range(items)]
                         + [open_item("04", f"revisar:telefone:{n}", "telefone antigo", n) for n in range(items // 10)])
        peaks[items] = _peak_of_write(engine, tmp_path)
        page = (tmp_path / panel.FILE_PANEL).read_text(encoding="utf-8")
        assert f"<h2>Pendências abertas: {items}</h2>" in page and f"<h2>Revise no FieldControl: {items // 10}</h2>" in page
        assert all(f"documento inválido {n:06d}" in page for n in range(items))
        assert page.count("telefone antigo") == items // 10
    assert peaks[3000] - peaks[300] < 600_000, peaks
