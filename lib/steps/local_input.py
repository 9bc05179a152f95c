"""Step 03's reading of data/02_projetos_tratados.json: typed project records, the client merge
rule (one client per document) and the address identity key (docs/design.md §5–6)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import chain
from typing import Any

from lib import status as status_module
from lib.config import ColumnSettings
from lib.errors import InputFileError, RecordError
from lib.jsonfiles import StreamedArray
from lib.logs import clip
from lib.steps import record_checks

CLIENTE_FIELDS = ("nome", "doc_pessoal", "email", "telefone", "telefone_secundario")
ENDERECO_FIELDS = ("cep", "logradouro", "numero", "complemento", "bairro", "cidade", "estado",
                   "link_localizacao", "latitude", "longitude", "fonte_coordenadas")
ENDERECO_KEY = ("cep", "logradouro", "numero", "complemento")
OS_TEXT_FIELDS = ("vendedor", "modulos", "inversor1", "inversor2", "inversor3", "observacoes")
PAGAMENTO_FIELDS = ("forma_pgto", "responsavel_financiamento", "valor_seguro", "observacoes")
# which iSales object each os/pagamento field comes from (step 02 keeps the raw objects in "bruto")
FROM_CLIENTE = frozenset({"vendedor", "data_fechamento"})
FROM_PROPOSTA = frozenset({"modulos", "inversor1", "inversor2", "inversor3", "valor"})
FROM_CAMPOS = frozenset({"observacoes", "acesso"} | {f"pagamento.{name}" for name in PAGAMENTO_FIELDS})
CENTS = Decimal("0.01")
SEVEN_PLACES = Decimal("0.0000001")


@dataclass
class ProjectInput:
    """One project of the 02 file, with values typed as the columns hold them."""

    isales_id: str
    coluna_id: int
    status: str
    obtido_em: datetime | None
    cliente: dict[str, Any]
    endereco: dict[str, Any] | None
    os: dict[str, Any]
    pagamento: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)
    # os/pagamento fields whose iSales source object came with this fetch: an empty value there is
    # a real removal (e.g. a second inverter taken out of the proposal) and erases the stored one
    authoritative: frozenset[str] = frozenset()
    # fingerprint of the client data this card carried (before merging with other cards)
    client_signature: str = ""
    listagem: str | None = None  # step 01's fingerprint of the card's listing row (os.listagem_hash)

    @property
    def label(self) -> str:
        nome = self.cliente.get("nome")
        return f"projeto {self.isales_id}" + (f" ({_short(nome)})" if nome else "")


@dataclass
class Movement:
    """A card that moved to a column whose details were not fetched (only its column matters)."""

    isales_id: str
    coluna_id: int
    status: str

    @property
    def label(self) -> str:
        return f"projeto {self.isales_id}"


@dataclass
class Input02:
    projects: list[ProjectInput]
    movements: list[Movement]
    invalid: list[tuple[str | None, str]]  # (isales_id or None, pt-BR reason) of unreadable records
    unreadable_moves: list[Movement]  # the column of unreadable projects: a move is still recorded
    observed_at: datetime | None  # when step 01 fetched the cards (fallback time of a move)
    pending_upstream: int


def read_projects(data: dict[str, Any], columns: ColumnSettings | None = None) -> Input02:
    """Type the projects and movements of an 02 envelope (its arrays may be streamed from the file:
    only the typed records are kept); a record that cannot be read is listed in `invalid` (it
    becomes a pending item) and the others go on. With `columns`, a status that contradicts its
    column is such a record; an id listed twice makes all its entries invalid."""
    projetos, movimentos = data.get("projetos"), data.get("movimentos") or []
    if not isinstance(projetos, (list, StreamedArray)) or not isinstance(movimentos, (list, StreamedArray)):
        raise InputFileError("arquivo 02 sem a lista 'projetos' (ou com 'movimentos' inválido): "
                             "rode 02_tratar_dados_clientes.py novamente")
    origem = data["origem"] if isinstance(data.get("origem"), dict) else {}
    result = Input02([], [], [], [], _moment_or_none(origem.get("gerado_em_01")),
                     len(data.get("pendencias") or []))
    twice = record_checks.repeated(chain(((f"projetos[{i}]", raw) for i, raw in enumerate(projetos)),
                                         ((f"movimentos[{i}]", raw) for i, raw in enumerate(movimentos))),
                                   "no arquivo 02")  # a first pass over a streamed array keeps only ids
    result.invalid += list(twice.items())
    for raw in projetos:
        if _raw_id(raw) in twice:
            continue
        try:
            result.projects.append(parse_project(raw, columns))
        except RecordError as exc:
            result.invalid.append((_raw_id(raw), exc.message))
            try:
                result.unreadable_moves.append(parse_movement(raw, columns))
            except RecordError:
                pass
    for raw in movimentos:
        if _raw_id(raw) in twice:
            continue
        try:
            result.movements.append(parse_movement(raw, columns))
        except RecordError as exc:
            result.invalid.append((_raw_id(raw), exc.message))
    return result


def _raw_id(raw: Any) -> str | None:
    """The record's id in canonical form, or None (no key to keep a pending item by)."""
    return record_checks.isales_id(raw.get("isales_id")) if isinstance(raw, dict) else None


def _common(raw: Any, columns: ColumnSettings | None) -> tuple[str, int, str]:
    if not isinstance(raw, dict):
        raise RecordError(f"registro do arquivo 02 não é um objeto JSON: {clip(raw, 80)!r}")
    isales_id = _raw_id(raw)
    if isales_id is None:
        raise RecordError(record_checks.id_problem(raw.get("isales_id"), "do arquivo 02"))
    record = f"projeto {isales_id}"
    coluna = raw.get("coluna_id")
    if isinstance(coluna, str) and coluna.strip().isdigit():
        coluna = int(coluna)
    if not isinstance(coluna, int) or isinstance(coluna, bool):
        raise RecordError(f"{record}: coluna_id {coluna!r} não é um número de coluna do iSales")
    status = raw.get("status")
    if status not in status_module.STATUSES:
        raise RecordError(f"{record}: status {status!r} desconhecido (esperado um de "
                          f"{', '.join(status_module.STATUSES)})")
    problem = record_checks.status_problem(columns, coluna, status) if columns is not None else None
    if problem:
        raise RecordError(f"{record}: {problem}")
    return isales_id, coluna, status


def parse_movement(raw: Any, columns: ColumnSettings | None = None) -> Movement:
    return Movement(*_common(raw, columns))


def parse_project(raw: Any, columns: ColumnSettings | None = None) -> ProjectInput:
    """A ProjectInput, or RecordError naming the project and the field."""
    isales_id, coluna, status = _common(raw, columns)
    record = f"projeto {isales_id}"
    cliente_raw = _required_section(raw, "cliente", record)
    nome = _text(cliente_raw.get("nome"), record, "cliente.nome")
    if nome:
        record = f"{record} ({_short(nome)})"
    cliente = {name: _text(cliente_raw.get(name), record, f"cliente.{name}") for name in CLIENTE_FIELDS}
    if not cliente["doc_pessoal"]:
        raise RecordError(f"{record}: cliente sem CPF/CNPJ (doc_pessoal); não há como identificá-lo")

    endereco: dict[str, Any] | None = None
    endereco_raw = _section(raw, "endereco", record)
    if endereco_raw:
        endereco = {name: _text(endereco_raw.get(name), record, f"endereco.{name}")
                    for name in ENDERECO_FIELDS if name not in ("latitude", "longitude")}
        endereco["latitude"] = _coordinate(endereco_raw.get("latitude"), record, "latitude", 90)
        endereco["longitude"] = _coordinate(endereco_raw.get("longitude"), record, "longitude", 180)
        if not any(endereco.get(name) for name in ENDERECO_KEY):
            endereco = None  # no address at all (e.g. a cancelled project): keep the stored one

    os_raw = _section(raw, "os", record) or {}
    os_values: dict[str, Any] = {name: _text(os_raw.get(name), record, f"os.{name}") for name in OS_TEXT_FIELDS}
    os_values["data_fechamento"] = _datetime(os_raw.get("data_fechamento"), record, "os.data_fechamento")
    os_values["valor"] = _money(os_raw.get("valor"), record, "os.valor")
    os_values["acesso"] = _acesso(os_raw.get("acesso"), record)

    pagamento: dict[str, Any] | None = None
    pagamento_raw = _section(raw, "pagamento", record)
    if pagamento_raw:
        pagamento = {name: _text(pagamento_raw.get(name), record, f"pagamento.{name}")
                     for name in PAGAMENTO_FIELDS if name != "valor_seguro"}
        pagamento["valor_seguro"] = _money(pagamento_raw.get("valor_seguro"), record, "pagamento.valor_seguro")
        if all(value is None for value in pagamento.values()):
            pagamento = None

    obtido_em = _datetime(raw.get("obtido_em"), record, "obtido_em", utc=True)
    warnings = [str(item) for item in raw.get("avisos") or [] if item]
    listagem = _text(raw.get("listagem"), record, "listagem")
    return ProjectInput(isales_id, coluna, status, obtido_em, cliente, endereco, os_values, pagamento, warnings,
                        _authoritative(raw.get("bruto")), client_signature(cliente), listagem)


def client_signature(cliente: dict[str, Any]) -> str:
    """A stable fingerprint of a card's client fields."""
    text = json.dumps([cliente.get(name) for name in CLIENTE_FIELDS], ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _authoritative(bruto: Any) -> frozenset[str]:
    """The fields whose source object is present in this fetch (none when the raw input is absent)."""
    if not isinstance(bruto, dict):
        return frozenset()
    fields: set[str] = set()
    if isinstance(bruto.get("cliente"), dict) and bruto["cliente"]:
        fields |= FROM_CLIENTE
    if isinstance(bruto.get("proposta"), dict) and bruto["proposta"]:
        fields |= FROM_PROPOSTA
    if isinstance(bruto.get("campos"), dict) and bruto["campos"]:
        fields |= FROM_CAMPOS
    return frozenset(fields)


def _short(text: str, size: int = 80) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


def _section(raw: dict, name: str, record: str) -> dict | None:
    return None if raw.get(name) is None else _required_section(raw, name, record)


def _required_section(raw: dict, name: str, record: str) -> dict:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise RecordError(f"{record}: seção '{name}' ausente ou não é um objeto no arquivo 02")
    return value


def _text(value: Any, record: str, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise RecordError(f"{record}: campo {name} deveria ser texto, veio {type(value).__name__}")
    text = str(value)
    return text if text.strip() else None


def _decimal(value: Any, quantum: Decimal, limit: Decimal | None = None) -> Decimal | None:
    """An exact decimal at `quantum` (None for empty), or InvalidOperation."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidOperation
    try:
        number = Decimal(str(value).strip())
    except ValueError:
        raise InvalidOperation from None
    if not number.is_finite() or (limit is not None and abs(number) > limit):
        raise InvalidOperation
    return number.quantize(quantum, rounding=ROUND_HALF_UP)


def _money(value: Any, record: str, name: str) -> Decimal | None:
    try:
        number = _decimal(value, CENTS)
    except InvalidOperation:
        raise RecordError(f"{record}: campo {name} = {clip(value, 40)!r} não é um valor em reais válido") from None
    if number is not None and number < 0:
        raise RecordError(f"{record}: campo {name} = {clip(value, 40)!r} é negativo; um valor em reais não pode ser")
    return number


def _coordinate(value: Any, record: str, name: str, limit: int) -> Decimal | None:
    try:
        return _decimal(value, SEVEN_PLACES, Decimal(limit))
    except InvalidOperation:
        raise RecordError(f"{record}: {name} {clip(value, 40)!r} não é uma coordenada válida "
                          f"(entre -{limit} e {limit})") from None


def _datetime(value: Any, record: str, name: str, *, utc: bool = False) -> datetime | None:
    """ISO date or date-time → naive datetime, whole seconds (UTC when `utc`)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    moment = _moment_or_none(value)
    if moment is None:
        raise RecordError(f"{record}: campo {name} = {clip(value, 40)!r} não é uma data válida (AAAA-MM-DD[THH:MM:SS])")
    return moment


def _moment_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _acesso(value: Any, record: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        items = [str(item).strip() for item in value if item is not None and str(item).strip()]
        return "; ".join(items) or None
    return _text(value, record, "os.acesso")


def merge_clients(projects: list[ProjectInput], signatures: dict[str, str | None] | None = None) -> None:
    """Give every project of one document the client values it should write.

    Each card holds its own copy of the client's data in iSales. Only cards whose copy changed
    since their last sync (`signatures`: isales_id → stored fingerprint; a new card counts as
    changed) may update the client, the latest `obtido_em` (then the highest isales_id) winning
    field by field; an empty value never erases a given one. So an edit made on one card is not
    undone by another card's unchanged copy, and the same input twice writes nothing.
    """
    signatures = signatures or {}
    groups: dict[str, list[ProjectInput]] = {}
    for project in projects:
        groups.setdefault(project.cliente["doc_pessoal"], []).append(project)
    for doc, group in groups.items():
        changed = [p for p in group if signatures.get(p.isales_id) != p.client_signature]
        merged: dict[str, Any] = {"doc_pessoal": doc}
        for project in sorted(changed, key=_recency):
            merged.update({name: value for name, value in project.cliente.items() if value is not None})
        for project in group:
            project.cliente = dict(merged)


def merge_addresses(projects: list[ProjectInput]) -> None:
    """Projects of one client at one address (same key) share one `endereco` row: give them the
    same values by the client rule, so that they do not overwrite each other on every run."""
    groups: dict[tuple, list[ProjectInput]] = {}
    for project in projects:
        if project.endereco is not None:
            key = (project.cliente["doc_pessoal"], address_key(project.endereco))
            groups.setdefault(key, []).append(project)
    for group in groups.values():
        if len(group) < 2:
            continue
        merged: dict[str, Any] = {}
        for project in sorted(group, key=_recency):
            values = project.endereco or {}
            if values.get("latitude") is not None:  # coordinates and their source go together
                merged.update(latitude=None, longitude=None, fonte_coordenadas=None)
            merged.update({name: value for name, value in values.items() if value is not None})
        for project in group:
            project.endereco = dict(merged)


def _recency(project: ProjectInput) -> tuple:
    number = int(project.isales_id) if project.isales_id.isdigit() else -1
    return (project.obtido_em or datetime.min, number, project.isales_id)


def address_key(values: dict[str, Any]) -> tuple[str, ...]:
    """The identity of an address: CEP digits, and street, number and complement without accents,
    case, punctuation or repeated spaces ("Av. Paulista, 1000" ≠ "Avenida Paulista")."""
    return _address_key(*(values.get(name) or "" for name in ENDERECO_KEY))


@functools.lru_cache(maxsize=4096)  # step 03 asks again for the same address while it writes a batch
def _address_key(cep: str, *texts: str) -> tuple[str, ...]:
    key = [re.sub(r"\D", "", cep)]
    for text in texts:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in text if not unicodedata.combining(char)).casefold()
        key.append(" ".join(re.sub(r"[^\w]+", " ", text).split()))
    return tuple(key)
