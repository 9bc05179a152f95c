"""iSales now ↔ local database now, field by field: iSales normalised by step 02's rules (`treat`) against
the local rows, under step 03's rules (one client per document and one row per client address, the
last fetched project first; an empty value never erases a stored one, if iSales gave it before)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import lib.db.schema as t
from bench.findings import Findings, shown
from bench.localdb import State
from lib import status as statuses
from lib.db.values import comparable
from lib.maplinks import parse as parse_link
from lib.steps.local_input import CLIENTE_FIELDS, ENDERECO_FIELDS, OS_TEXT_FIELDS, PAGAMENTO_FIELDS
from lib.steps.treat_fields import Treated, treat

if TYPE_CHECKING:
    from bench.fidelity_run import FidelitySettings

AREA = "iSales ↔ banco"
ADDRESS_TEXT = tuple(name for name in ENDERECO_FIELDS if name not in ("latitude", "longitude", "fonte_coordenadas"))
OS_FIELDS = (*OS_TEXT_FIELDS, "data_fechamento", "valor", "acesso")
EMPTY_KEEPS = "vazio no iSales não apaga o valor gravado (design §6)"
ONE_CLIENT = "um cliente por documento: vale o projeto buscado por último (design §6)"
CARDS_DISAGREE = ("um cliente por documento, cards com cópias diferentes: vale a cópia do card alterado por "
                  "último (design §6)")
OUTSIDE = "card fora das colunas de interesse: só a coluna é acompanhada, os detalhes não são buscados"
DROPPED = "cancelado com dados inválidos e nunca enviado: não é gravado, só a coluna conta (design §5)"


def expected_value(table: str, name: str, value: Any) -> Any:
    """A value of step 02's output in the type of its column (how step 03 stores it)."""
    if value is None:
        return None
    if name == "acesso" and isinstance(value, list):
        items = [str(item).strip() for item in value if item is not None and str(item).strip()]
        value = "; ".join(items) or None
    elif name in ("valor", "valor_seguro", "latitude", "longitude"):
        value = Decimal(str(value))
    elif name == "data_fechamento":
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    return comparable(t.metadata.tables[table], name, value)


def local_value(table: str, name: str, row: dict[str, Any] | None) -> Any:
    return None if row is None else comparable(t.metadata.tables[table], name, row.get(name))


class IsalesReconciler:
    """Compares every project of the sandbox's iSales with the local rows."""

    def __init__(self, snapshots: list[list[dict]], settings: FidelitySettings, state: State, findings: Findings):
        """`snapshots`: what iSales held at each run, the last one being now."""
        self.settings, self.state, self.f = settings, state, findings
        self.raw = {str(p["card"]["cliente_id"]): p for p in snapshots[-1]}
        self.treated = {isales_id: self.treat(project) for isales_id, project in self.raw.items()}
        self.past = [{str(p["card"]["cliente_id"]): p for p in projects} for projects in snapshots[:-1]]
        self.by_client: dict[int | None, list[str]] = {}
        for isales_id, row in state.os.items():
            self.by_client.setdefault(row["cliente_id"], []).append(isales_id)
        self.coords_checked = 0
        self.coords_unchecked = 0

    def treat(self, project: dict) -> Treated:
        card = project["card"]
        status = statuses.status_for_column(self.settings.isales, card["coluna_id"])
        return treat({"isales_id": str(card["cliente_id"]), "coluna_id": card["coluna_id"], "status": status,
                      "card": card, "cliente": project["cliente"], "proposta": project["proposta"],
                      "campos": project["campos"]}, self.settings.campos)

    def held_before(self, table: str, name: str, ids: list[str], value: Any) -> bool:
        """Whether iSales gave `value` for this field of one of `ids` at an earlier run."""
        for snapshot in self.past:
            for isales_id in ids:
                if isales_id in snapshot:
                    old = getattr(self.treat(snapshot[isales_id]), table)  # Treated.cliente, .endereco, …
                    if expected_value(table, name, old.get(name)) == value:
                        return True
        return False

    # -- who is compared ----------------------------------------------------------------------------
    def fetched(self) -> list[str]:
        """Projects stored locally whose details the last run fetched: in a column of interest, with no
        open pending item at steps 01–03 and valid data (each round's cycles refresh all of them)."""
        result = []
        for isales_id, project in self.treated.items():
            if isales_id in self.state.os and project.status in statuses.OF_INTEREST and not project.problem \
                    and not self.state.pending_of(isales_id, ("01", "02", "03")):
                result.append(isales_id)
        return result

    def recency(self, isales_id: str) -> tuple:
        return (self.state.os[isales_id]["detalhes_em"] or datetime.min, int(isales_id))

    # -- the comparison -------------------------------------------------------------------------------
    def run(self) -> None:
        fetched = set(self.fetched())
        for isales_id, project in sorted(self.treated.items(), key=lambda item: int(item[0])):
            row = self.state.os.get(isales_id)
            if row is None:
                self.absent(isales_id, project)
                continue
            record = f"projeto {isales_id}"
            coluna = self.raw[isales_id]["card"]["coluna_id"]
            self.f.check(AREA, record, "os.coluna_id", coluna, row["coluna_id"])
            self.f.check(AREA, record, "os.status", project.status, row["status"])
            if project.status == statuses.OUTRO:
                self.f.rule(OUTSIDE, record)
            elif isales_id in fetched:
                self.compare_os(isales_id, project, row)
        groups: dict[str, list[str]] = {}
        places: dict[int | None, list[str]] = {}
        for isales_id in fetched:
            groups.setdefault(self.treated[isales_id].cliente["doc_pessoal"], []).append(isales_id)
            places.setdefault(self.state.os[isales_id]["endereco_id"], []).append(isales_id)
        for doc, ids in groups.items():
            self.compare_cliente(doc, sorted(ids, key=self.recency, reverse=True))
        for endereco_id, ids in places.items():
            self.compare_endereco(endereco_id, sorted(ids, key=self.recency, reverse=True))

    def absent(self, isales_id: str, project: Treated) -> None:
        record = f"projeto {isales_id}"
        if project.status == statuses.OUTRO:
            self.f.rule(OUTSIDE, record)
        elif self.state.pending_of(isales_id):
            return  # listed with the pending projects
        elif project.problem and project.status == statuses.CANCELADO:
            self.f.rule(DROPPED, f"{record}: {project.problem}")
        else:
            self.f.diff(AREA, record, "os", f"gravado (coluna {project.coluna_id})", None)

    def merged(self, table: str, record: str, name: str, ids: list[str], values: dict[str, dict[str, Any]],
               row: dict[str, Any] | None, related: list[str] | None = None, *, any_card: bool = False) -> None:
        """Compare one field of a row shared by `ids` (most recent first): its first non-empty value wins.
        When all are empty, the stored value must be one iSales gave for one of `related` before.
        `any_card` (the client): each card keeps its own copy and the copy edited last wins, so the
        stored value must be the current value of one of the cards."""
        present = [(isales_id, expected_value(table, name, values[isales_id].get(name))) for isales_id in ids]
        present = [(isales_id, value) for isales_id, value in present if value is not None]
        found = local_value(table, name, row)
        if not present:
            self.f.compared[AREA] += 1
            if found is None:
                return
            if self.held_before(table, name, related or ids, found):
                self.f.rule(EMPTY_KEEPS, f"{record}: {table}.{name} = {shown(found)}")
            else:
                self.f.diff(AREA, record, f"{table}.{name}", "vazio, ou um valor que o iSales teve antes", found)
            return
        cards = present + [(other, expected_value(table, name, self.treated[other].cliente.get(name)))
                           for other in related or () if other not in ids and other in self.treated]
        if any_card and found != present[0][1] and found in {value for _, value in cards[1:]}:
            owner = next(isales_id for isales_id, value in cards if value == found)
            self.f.compared[AREA] += 1
            self.f.rule(CARDS_DISAGREE, f"{record}: {table}.{name} {shown(found)} do projeto {owner} ≠ "
                                        f"{shown(present[0][1])} do projeto {present[0][0]}")
            return
        self.f.check(AREA, f"{record} (projeto {present[0][0]})", f"{table}.{name}", present[0][1], found)
        for isales_id, value in present[1:]:
            if value != present[0][1]:
                self.f.rule(ONE_CLIENT, f"projeto {isales_id}: {table}.{name} {shown(value)} ≠ "
                                        f"{shown(present[0][1])} do projeto {present[0][0]}")

    def of_client(self, cliente_id: int | None) -> list[str]:
        return self.by_client.get(cliente_id, [])

    def compare_os(self, isales_id: str, project: Treated, row: dict[str, Any]) -> None:
        record = f"projeto {isales_id}"
        for name in OS_FIELDS:
            self.merged("os", record, name, [isales_id], {isales_id: project.os}, row)
        payment = {isales_id: project.pagamento}
        stored = self.state.pagamentos.get(row["id"])
        if stored is None and any(value is not None for value in project.pagamento.values()):
            self.f.diff(AREA, record, "pagamento", "gravado", None)
            return
        for name in PAGAMENTO_FIELDS:
            self.merged("pagamento", record, name, [isales_id], payment, stored)

    def compare_cliente(self, doc: str, ids: list[str]) -> None:
        rows = {self.state.os[isales_id]["cliente_id"] for isales_id in ids}
        record = f"cliente {doc}"
        if len(rows) != 1:
            self.f.diff(AREA, record, "os.cliente_id", "uma linha de cliente por documento", sorted(rows, key=str))
            return
        row = self.state.clientes.get(rows.pop())
        self.f.check(AREA, record, "cliente.doc_pessoal", doc, row and row["doc_pessoal"])
        values = {isales_id: self.treated[isales_id].cliente for isales_id in ids}
        related = self.of_client(row["id"] if row else None)
        for name in CLIENTE_FIELDS:
            if name != "doc_pessoal":
                self.merged("cliente", record, name, ids, values, row, related, any_card=True)

    def compare_endereco(self, endereco_id: int | None, ids: list[str]) -> None:
        record = f"endereço {endereco_id}"
        row = self.state.enderecos.get(endereco_id) if endereco_id is not None else None
        values = {isales_id: self.treated[isales_id].endereco for isales_id in ids}
        if row is None:
            if any(values[i].get(name) for i in ids for name in ("cep", "logradouro", "numero")):
                self.f.diff(AREA, f"projeto {ids[0]}", "os.endereco_id", "um endereço gravado", endereco_id)
            return
        owner = {self.treated[isales_id].cliente["doc_pessoal"] for isales_id in ids}
        client = self.state.clientes.get(row["cliente_id"]) or {}
        self.f.check(AREA, record, "endereco.cliente_id (documento)", sorted(owner), [client.get("doc_pessoal")])
        related = self.of_client(row["cliente_id"])
        for name in ADDRESS_TEXT:
            self.merged("endereco", record, name, ids, values, row, related)
        self.compare_coordinates(record, values[ids[0]], row)

    def compare_coordinates(self, record: str, endereco: dict[str, Any], row: dict[str, Any]) -> None:
        """Coordinates come from the map link, the geocoder or the CEP (step 02); without network only
        a link that carries them in its text can be checked here (the others: local ↔ FieldControl)."""
        point = parse_link(endereco.get("link_localizacao") or "")
        if point is None or not point.in_brazil():
            self.coords_unchecked += 1
            return
        self.coords_checked += 1
        self.f.check(AREA, record, "endereco.latitude", point.latitude, local_value("endereco", "latitude", row))
        self.f.check(AREA, record, "endereco.longitude", point.longitude, local_value("endereco", "longitude", row))
        self.f.check(AREA, record, "endereco.fonte_coordenadas", "link", row.get("fonte_coordenadas"))
