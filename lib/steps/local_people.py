"""Step 03: one document, two people. A project whose client name clearly belongs to another person
than the name its CPF/CNPJ already has (or than another project of that document in the same
input) is refused as a pending item naming both projects: its data is not written (a column move of a
stored project is still history) and no name is overwritten, here or in FieldControl, until a person
fixes the CRM (lib/names.py has the rule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

import lib.db.schema as t
from lib.db.values import chunks
from lib.documents import mask_document
from lib.names import same_person
from lib.steps.local_input import Movement, ProjectInput, project_label
from lib.steps.local_state import RunIndex


class Card(NamedTuple):
    """What the rule needs of a project: its id, document and own name (before the client merge)."""

    isales_id: str
    doc: str
    nome: str | None
    coluna_id: int
    status: str

    @classmethod
    def of(cls, project: ProjectInput) -> Card:
        return cls(project.isales_id, project.cliente["doc_pessoal"], project.cliente.get("nome"),
                   project.coluna_id, project.status)

    @property
    def label(self) -> str:
        return project_label(self.isales_id, self.nome)

    @property
    def movement(self) -> Movement:
        return Movement(self.isales_id, self.coluna_id, self.status)


def stored_names(conn: Connection, index: RunIndex, docs: Iterable[str]) -> dict[str, tuple[str, list[str]]]:
    """doc_pessoal → (the client's stored name, the isales_ids of its projects), for stored clients."""
    ids = {index.clientes[doc] for doc in docs if doc in index.clientes}
    names: dict[int, tuple[str, str]] = {}
    projects: dict[int, list[str]] = {}
    for chunk in chunks(ids):
        clients = select(t.cliente.c.id, t.cliente.c.doc_pessoal, t.cliente.c.nome).where(t.cliente.c.id.in_(chunk))
        names.update((row.id, (row.doc_pessoal, row.nome)) for row in conn.execute(clients) if row.nome)
        oss = select(t.os.c.cliente_id, t.os.c.isales_id).where(t.os.c.cliente_id.in_(chunk)).order_by(t.os.c.id)
        for row in conn.execute(oss):
            projects.setdefault(row.cliente_id, []).append(str(row.isales_id))
    return {doc: (nome, projects.get(cliente_id, [])) for cliente_id, (doc, nome) in names.items()}


def other_people(cards: Iterable[Card], stored: dict[str, tuple[str, list[str]]]) -> dict[str, str]:
    """isales_id → pt-BR reason, for every project whose name is clearly another person's.

    With a stored client, its name is the reference: only the projects that disagree with it are
    refused — except the client's only card, alone in this input: its new name is an edit of the
    customer (step 04 follows it). Without a stored client, nobody can tell whose document it is:
    when the projects of this input disagree among themselves, all of them are refused.
    """
    groups: dict[str, list[Card]] = {}
    for card in cards:
        groups.setdefault(card.doc, []).append(card)
    refused: dict[str, str] = {}
    for doc, group in groups.items():
        named = [card for card in group if card.nome]
        kind = "CPF" if len(doc) == 11 else "CNPJ"
        if doc in stored:
            name, owners = stored[doc]
            for card in named:
                others = [i for i in owners if i != card.isales_id]
                if not others and len(group) == 1:
                    continue  # the client's only card, alone in this input: a new name is an edit
                if not same_person(card.nome, name):
                    where = f"projeto(s) {', '.join(others or owners)}" if others or owners else "já gravado"
                    refused[card.isales_id] = (
                        f"{card.label}: o {kind} {mask_document(doc)} já é do cliente {name!r} ({where}), "
                        f"e {card.nome!r} é claramente outra pessoa; os dados deste projeto não foram "
                        "gravados e nenhum nome foi trocado (nem no FieldControl): corrija o nome ou o documento no iSales "
                        "e rode de novo")
            continue
        if len(named) < 2 or all(same_person(a.nome, b.nome) for a in named for b in named):
            continue
        for card in named:
            others = [f"{p.isales_id} ({p.nome})" for p in named if p is not card]
            refused[card.isales_id] = (
                f"{card.label}: o {kind} {mask_document(doc)} aparece também no(s) projeto(s) "
                f"{', '.join(others)}, com nome de outra pessoa; nenhum deles foi gravado e nenhum nome foi "
                "escolhido: corrija o nome ou o documento no iSales e rode de novo")
    return refused
