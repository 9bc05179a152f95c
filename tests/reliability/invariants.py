"""The promises checked after every trial: nothing twice in FieldControl, local state matching
FieldControl's, one ticket per sent history row (both ways), and a local dump without row ids."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

import lib.db.schema as t
from lib.db.engine import make_engine
from lib.documents import fold
from lib.fieldcontrol import document_key, email_key, phone_key, same_address
from lib.steps.push.records import address_of

OPEN_ACTIONS = ("enviando", "incerta")


@dataclass
class Remote:
    """What the simulated FieldControl holds."""

    customers: list[dict]
    locations: list[dict]
    phones: list[dict]
    emails: list[dict]
    tickets: list[dict]

    @classmethod
    def of(cls, sb) -> Remote:
        return cls(sb.fc_customers(), sb.fc_locations(), sb.fc_phones(), sb.fc_emails(), sb.fc_tickets())

    def ids(self, collection: str) -> set[str]:
        return {item["id"] for item in getattr(self, collection)}

    def sync_tickets(self) -> Counter:
        """external.id → count, for the tickets this integration creates (isales:…)."""
        return Counter(ext for ticket in self.tickets
                       if (ext := (ticket.get("external") or {}).get("id") or "").startswith("isales:"))


@dataclass
class Local:
    """The rows of the local database that the invariants need, as dicts."""

    cliente: list[dict]
    endereco: list[dict]
    os: list[dict]
    pagamento: list[dict]
    historico: list[dict]
    acoes: list[dict]
    pendencias: list[dict]  # open items only

    @classmethod
    def read(cls, url: str) -> Local:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                def rows(table, *where):
                    query = select(table).where(*where).order_by(table.c.id)
                    return [dict(r) for r in conn.execute(query).mappings()]

                return cls(rows(t.cliente), rows(t.endereco), rows(t.os), rows(t.pagamento),
                           rows(t.os_status_historico), rows(t.acao_field),
                           rows(t.pendencia, t.pendencia.c.resolvida_em.is_(None)))
        finally:
            engine.dispose()

    def sent_tickets(self) -> dict[str, dict]:
        """external.id → history row, for every row marked sent (the expected tickets)."""
        by_os = {row["id"]: row for row in self.os}
        return {f"isales:{by_os[row['os_id']]['isales_id']}:{row['ticket_tipo']}:{row['id']}": row
                for row in self.historico if row["enviado_field"]}

    def unexplained_events(self) -> list[dict]:
        """Events neither sent nor dispensed whose project has no open pending item to say why."""
        isales = {row["id"]: row["isales_id"] for row in self.os}
        waiting = {str(p["isales_id"]) for p in self.pendencias if p["isales_id"] is not None}
        return [row for row in self.historico if not row["enviado_field"] and row["motivo_dispensa"] is None
                and str(isales[row["os_id"]]) not in waiting]

    def open_actions(self) -> list[dict]:
        return [row for row in self.acoes if row["estado"] in OPEN_ACTIONS]

    def pending_keys(self, step: str | None = None) -> set[tuple[str, str]]:
        return {(p["etapa"], p["chave"]) for p in self.pendencias if step is None or p["etapa"] == step}


def place_key(address: dict | None) -> tuple[str, ...]:
    """A FieldControl address as one place: CEP digits, street, number and complement folded."""
    address = address or {}
    zip_code = re.sub(r"\D", "", str(address.get("zipCode") or address.get("postalCode") or ""))
    number = fold(address.get("number")).replace(" ", "")
    return (zip_code, fold(address.get("street")), "" if number in ("s/n", "sn") else number,
            fold(address.get("complement")))


def _new_duplicates(what: str, before: list[dict], after: list[dict], key, problems: list[str]) -> None:
    """Items created since `before` may not repeat a key, nor repeat a key that existed already
    (hand-made duplicates that were there before are not ours to judge)."""
    old_ids = {item["id"] for item in before}
    existing = Counter(key(item) for item in before)
    created = Counter(key(item) for item in after if item["id"] not in old_ids)
    for value, count in created.items():
        if value is None:
            continue
        if count > 1 or existing.get(value):
            problems.append(f"{what} {value!r} em duplicidade: {count} criado(s) agora, "
                            f"{existing.get(value, 0)} já existia(m)")


def exactly_once(before: Remote, after: Remote, local: Local) -> list[str]:
    """Nothing created twice in FieldControl since `before`: customers, locations, phones,
    e-mails, tickets."""
    problems: list[str] = []
    ours = {c["field_id"] for c in local.cliente if c["field_id"]}
    _new_duplicates("cliente com documento", before.customers, after.customers,
                    lambda c: document_key(c.get("documentNumber")) or None, problems)

    def of_ours(items: list[dict]) -> list[dict]:
        return [item for item in items if (item.get("customer") or {}).get("id") in ours]

    _new_duplicates("local", of_ours(before.locations), of_ours(after.locations),
                    lambda loc: (loc["customer"]["id"], place_key(loc.get("address"))), problems)
    _new_duplicates("telefone", of_ours(before.phones), of_ours(after.phones),
                    lambda p: (p["customer"]["id"], phone_key(p.get("number"))), problems)
    _new_duplicates("e-mail", of_ours(before.emails), of_ours(after.emails),
                    lambda e: (e["customer"]["id"], email_key(e.get("address"))), problems)
    repeated = {ext: n for ext, n in after.sync_tickets().items() if n > 1}
    if repeated:
        problems.append(f"OS criadas mais de uma vez: {repeated}")
    return problems


def matches_remote(after: Remote, local: Local) -> list[str]:
    """Every FieldControl id the local database holds exists there and is the right object; every
    sent history row has exactly its ticket and every ticket of ours has its sent row."""
    problems: list[str] = []
    customers = {c["id"]: c for c in after.customers}
    for row in local.cliente:
        remote = customers.get(row["field_id"]) if row["field_id"] else None
        if row["field_id"] and remote is None:
            problems.append(f"cliente {row['doc_pessoal']}: field_id {row['field_id']} não existe no FieldControl")
        elif remote and document_key(remote.get("documentNumber")) != document_key(row["doc_pessoal"]):
            problems.append(f"cliente {row['doc_pessoal']}: field_id {row['field_id']} é de outro documento "
                            f"({remote.get('documentNumber')})")
    locations = {loc["id"]: loc for loc in after.locations}
    owner = {c["id"]: c["field_id"] for c in local.cliente}
    for row in local.endereco:
        if not row["location_field_id"]:
            continue
        remote = locations.get(row["location_field_id"])
        if remote is None:
            problems.append(f"endereço {row['id']}: local {row['location_field_id']} não existe no FieldControl")
        elif remote["customer"]["id"] != owner.get(row["cliente_id"]):
            problems.append(f"endereço {row['id']}: o local {remote['id']} é de outro cliente")
        elif not same_address(remote.get("address"), address_of(row)):
            problems.append(f"endereço {row['id']}: o local {remote['id']} tem outro endereço "
                            f"({place_key(remote.get('address'))} ≠ {place_key(address_of(row))})")
    tickets = {tk["id"]: tk for tk in after.tickets}
    by_external = {(tk.get("external") or {}).get("id"): tk for tk in after.tickets}
    expected = local.sent_tickets()
    for external, row in expected.items():
        remote = by_external.get(external)
        if remote is None:
            problems.append(f"evento {row['id']} marcado como enviado, sem OS {external} no FieldControl")
        elif remote["id"] != row["ticket_field_id"]:
            problems.append(f"evento {row['id']}: ticket_field_id {row['ticket_field_id']} ≠ OS {remote['id']}")
    orphans = set(after.sync_tickets()) - set(expected)
    if orphans:
        problems.append(f"OS no FieldControl sem o evento marcado como enviado no banco local: {sorted(orphans)}")
    for row in local.os:
        if row["field_id"] and row["field_id"] not in tickets:
            problems.append(f"os {row['isales_id']}: field_id {row['field_id']} não existe no FieldControl")
    return problems


# The kinds a ticket may follow (docs/design.md §7): None = nothing sent before for the project.
_MAY_FOLLOW = {"instalacao": (None, "cancelamento"), "aumento": (None, "instalacao", "cancelamento"),
               "cancelamento": ("instalacao", "aumento")}


def rule_problems(local: Local) -> list[str]:
    """The tickets sent for each project, in order, obey the cancellation rule: a cancellation
    only after an installation or expansion, no second installation or expansion in a row."""
    problems = []
    isales = {row["id"]: row["isales_id"] for row in local.os}
    last: dict[int, str | None] = {}
    for row in local.historico:
        if not row["enviado_field"] or not row["ticket_tipo"]:
            continue
        before = last.get(row["os_id"])
        if before not in _MAY_FOLLOW.get(row["ticket_tipo"], ()):
            problems.append(f"projeto {isales[row['os_id']]}: OS de {row['ticket_tipo']} enviada depois de {before}")
        last[row["os_id"]] = row["ticket_tipo"]
    return problems


def fc_writes(sb) -> list[dict]:
    """The POST/PUT calls FieldControl received since the last reset_calls()."""
    return [call for call in sb.calls("fieldcontrol") if call["method"] in ("POST", "PUT")]


# --------------------------------------------------------------------------- the local dump without ids

_HISTORY = ("status", "coluna_id", "status_anterior", "coluna_anterior", "data_status", "observacao",
            "enviado_field", "ticket_tipo", "ticket_field_id", "motivo_dispensa")
_SKIP = {"id", "criado_em", "atualizado_em", "execucao_id", "alterado_em", "enviado_em"}
_REFERENCES = {("os", "cliente_id"): "cliente", ("os", "endereco_id"): "endereco",
               ("endereco", "cliente_id"): "cliente", ("pagamento", "os_id"): "os"}


def logical_dump(url: str) -> dict[str, Any]:
    """The local database as natural keys and values: equal for two databases holding the same
    facts, whatever their row ids, run ids or timestamps (a rerun after a crash burns ids)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = {table.name: [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]
                      for table in (t.cliente, t.endereco, t.os, t.pagamento, t.os_status_historico,
                                    t.alteracao, t.pendencia)}
    finally:
        engine.dispose()
    doc = {row["id"]: row["doc_pessoal"] for row in tables["cliente"]}
    place = {row["id"]: (doc.get(row["cliente_id"]), row["cep"], row["logradouro"], row["numero"],
                         row["complemento"]) for row in tables["endereco"]}
    isales = {row["id"]: row["isales_id"] for row in tables["os"]}
    names = {"cliente": doc, "endereco": place, "os": isales, "pagamento": {}}

    def plain(table: str, row: dict) -> tuple:
        values = []
        for name, value in sorted(row.items()):
            if name in _SKIP:
                continue
            target = _REFERENCES.get((table, name))
            values.append((name, names[target].get(value) if target else value))
        return tuple(values)

    dump: dict[str, Any] = {name: sorted(map(repr, (plain(name, row) for row in tables[name])))
                            for name in ("cliente", "endereco", "os", "pagamento")}
    dump["historico"] = sorted((isales[row["os_id"]], index, tuple(row[c] for c in _HISTORY))
                               for index, row in enumerate(tables["os_status_historico"]))
    dump["historico"] = _renumber(dump["historico"])

    def natural(tabela: str, registro: int) -> object:
        if tabela == "pagamento":
            return next((isales.get(r["os_id"]) for r in tables["pagamento"] if r["id"] == registro), registro)
        return names[tabela].get(registro, registro)

    def value(tabela: str, campo: str, text: str | None) -> object:
        target = _REFERENCES.get((tabela, campo))
        if target is None or text is None or not str(text).isdigit():
            return text
        return names[target].get(int(text), text)

    dump["alteracao"] = sorted(repr((row["tabela"], natural(row["tabela"], row["registro_id"]), row["campo"],
                                     value(row["tabela"], row["campo"], row["valor_anterior"]),
                                     value(row["tabela"], row["campo"], row["valor_novo"]), row["origem"]))
                               for row in tables["alteracao"])
    dump["pendencia"] = sorted((row["etapa"], row["chave"], row["motivo"], row["resolvida_em"] is None)
                               for row in tables["pendencia"])
    return dump


def _renumber(rows: list[tuple]) -> list[tuple]:
    """History rows of each project numbered 0, 1, 2… in their order (their ids differ per database)."""
    result, seen = [], Counter()
    for isales_id, _index, values in rows:
        result.append((isales_id, seen[isales_id], values))
        seen[isales_id] += 1
    return result
