"""What step 04 reads of a client just before sending (records.reread): the rows as the database
holds them now, in three statements (the projects with their client and address, the events, the
payments), the same rows the batch read gives."""

from __future__ import annotations

from sqlalchemy import event

from lib.steps.push import records
from tests.steps import push_seed as seed


def test_a_client_is_read_again_as_stored_in_three_statements(engine):
    with engine.begin() as conn:
        first = seed.add_project(conn, 4711)
        seed.add_project(conn, 4712, doc=first["doc"], logradouro="Rua Augusta")  # a second address
    source = records.Source(engine, None)
    [batch] = list(source.batches())
    [client] = batch
    with engine.begin() as conn:  # step 03 edits the client and an address meanwhile
        conn.execute(records.t.cliente.update().values(nome="Maria Souza"))
        conn.execute(records.t.endereco.update().where(records.t.endereco.c.id == first["endereco_id"])
                     .values(numero="999"))
    seen: list[str] = []
    listener = lambda conn, cursor, sql, *rest: seen.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with engine.connect() as conn:
            fresh = records.reread(conn, client)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len([sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]) == 3
    assert fresh is not None and fresh.cliente["nome"] == "Maria Souza"
    assert fresh.enderecos[first["endereco_id"]]["numero"] == "999"
    [again] = source.clients_of([client.id])  # the batch's read gives the same rows
    assert again.cliente == fresh.cliente and again.enderecos == fresh.enderecos
    assert [p.os for p in again.projects] == [p.os for p in fresh.projects]
    assert [p.pagamento for p in again.projects] == [p.pagamento for p in fresh.projects]
    assert [p.events for p in again.projects] == [p.events for p in fresh.projects]
