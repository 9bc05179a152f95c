"""Step 03's reading of data/02_projetos_tratados.json: typed project records, read one at a time in
passes over the file, and the address identity key (docs/design.md §5–6)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

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
    # fingerprints of the client and address data this card carried (before merging with other
    # cards; no address → None, the stored fingerprint stays)
    client_signature: str = ""
    address_signature: str | None = None
    listagem: str | None = None  # step 01's fingerprint of the card's listing row (os.listagem_hash)

    @property
    def label(self) -> str:
        return project_label(self.isales_id, self.cliente.get("nome"))


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
    """An 02 envelope typed at once (tests, the bench's reference rows): step 03 itself reads the
    file in passes (File02)."""

    projects: list[ProjectInput]
    movements: list[Movement]
    invalid: list[tuple[str | None, str]]  # (isales_id or None, pt-BR reason) of unreadable records
    unreadable_moves: list[Movement]  # the column of unreadable projects: a move is still recorded
    observed_at: datetime | None  # when step 01 fetched the cards (fallback time of a move)
    pending_upstream: int


class Unreadable(NamedTuple):
    """A project of the 02 file that cannot be typed: it becomes a pending item, and its column,
    when that can be read, is still a move of a stored project."""

    isales_id: str | None
    reason: str
    movement: Movement | None


@dataclass
class Survey:
    """What a first pass over the 02 file keeps: ids, counts and the (three-field) movements, never
    a project record."""

    repeated: dict[str, str]  # isales_id listed more than once → pt-BR reason (none of its entries is used)
    project_ids: array[int]  # the projects' ids (of --ids when given), as numbers: 8 bytes each
    docs: Counter[str]  # doc_pessoal → how many projects carry it (an unreadable one may count)
    movements: list[Movement]
    invalid_moves: list[tuple[str | None, str]]
    seen: set[str]  # ids of --ids present in the file (empty without --ids)

    @property
    def shared_docs(self) -> set[str]:
        return {doc for doc, cards in self.docs.items() if cards > 1}


_END = object()


class File02:
    """The projects and movements of an 02 envelope (its arrays may be streamed from the file),
    typed one record at a time and read again by every pass. With `columns`, a status that
    contradicts its column makes the record unreadable; an id listed twice makes all its entries
    unreadable. `read_s` adds up the time spent reading and typing the file."""

    def __init__(self, data: dict[str, Any], columns: ColumnSettings | None = None) -> None:
        projetos, movimentos = data.get("projetos"), data.get("movimentos") or []
        if not isinstance(projetos, (list, StreamedArray)) or not isinstance(movimentos, (list, StreamedArray)):
            raise InputFileError("arquivo 02 sem a lista 'projetos' (ou com 'movimentos' inválido): "
                                 "rode 02_tratar_dados_clientes.py novamente")
        origem = data["origem"] if isinstance(data.get("origem"), dict) else {}
        self.projetos, self.movimentos, self.columns = projetos, movimentos, columns
        self.observed_at = _moment_or_none(origem.get("gerado_em_01"))
        self.pending_upstream = len(data.get("pendencias") or [])
        self.read_s = 0.0

    def __len__(self) -> int:
        return len(self.projetos)

    def _timed(self, records: Iterable[Any]) -> Iterator[Any]:
        """`records`, adding the time each one takes to come (read, and typed when they are) to read_s."""
        records = iter(records)
        while True:
            started = time.perf_counter()
            record = next(records, _END)
            self.read_s += time.perf_counter() - started
            if record is _END:
                return
            yield record

    def survey(self, wanted: set[str] | None = None, count_doc: Callable[[str], None] | None = None) -> Survey:
        """One pass over both arrays: the projects' ids and documents, the movements typed (those
        of `wanted` only, when given) and the ids listed twice (named with their entries by a
        second pass, only when there are some: it keeps one line per entry). With `count_doc`,
        each project's document goes there (step 03's spool) instead of `docs`."""
        result = Survey({}, array("Q"), Counter(), [], [], set())
        moves: list[Movement | tuple[str | None, str]] = []
        ids = array("Q")  # every id of both arrays as a number (8 bytes each), for the ids listed twice
        for raw in self._timed(self.projetos):
            key = _raw_id(raw)
            if key is None:
                continue
            ids.append(int(key))
            if wanted is None or key in wanted:
                if wanted is not None:
                    result.seen.add(key)
                result.project_ids.append(int(key))
                doc = _raw_doc(raw)
                if doc is not None:
                    if count_doc is not None:
                        count_doc(doc)
                    else:
                        result.docs[doc] += 1
        for raw in self._timed(self.movimentos):
            key = _raw_id(raw)
            if key is not None:
                ids.append(int(key))
            if wanted is None or key in wanted:
                if wanted is not None and key is not None:
                    result.seen.add(key)
                try:
                    moves.append(parse_movement(raw, self.columns))
                except RecordError as exc:
                    moves.append((key, exc.message))
        twice = record_checks.duplicates(ids)
        del ids
        if twice:
            result.repeated = record_checks.repeated(self._entries(twice), "no arquivo 02")
            result.project_ids = array("Q", (n for n in result.project_ids if str(n) not in result.repeated))
        for move in moves:
            if isinstance(move, Movement):
                if move.isales_id not in result.repeated:
                    result.movements.append(move)
            elif move[0] not in result.repeated:
                result.invalid_moves.append(move)
        return result

    def _entries(self, keys: set[str]) -> Iterator[tuple[str, Any]]:
        """(position, record) of the entries of both arrays whose id is one of `keys`."""
        for name, records in (("projetos", self.projetos), ("movimentos", self.movimentos)):
            for i, raw in enumerate(self._timed(records)):
                if _raw_id(raw) in keys:
                    yield f"{name}[{i}]", raw

    def projects(self, skip: Container[str] = (), *, wanted: set[str] | None = None,
                 docs: Container[str] | None = None) -> Iterator[ProjectInput | Unreadable]:
        """The projects in file order, typed (or Unreadable), but those of `skip`, those outside
        `wanted` (when given) and, when `docs` is given, those of other documents (not typed)."""
        return self._timed(self._projects(skip, wanted, docs))

    def _projects(self, skip: Container[str], wanted: set[str] | None,
                  docs: Container[str] | None) -> Iterator[ProjectInput | Unreadable]:
        for raw in self.projetos:
            key = _raw_id(raw)
            if key in skip or (wanted is not None and key not in wanted):
                continue
            if docs is not None and _raw_doc(raw) not in docs:
                continue
            try:
                yield parse_project(raw, self.columns)
            except RecordError as exc:
                try:
                    movement: Movement | None = parse_movement(raw, self.columns)
                except RecordError:
                    movement = None
                yield Unreadable(key, exc.message, movement)


def read_projects(data: dict[str, Any], columns: ColumnSettings | None = None) -> Input02:
    """Type all the projects and movements of an 02 envelope at once (see File02)."""
    source = File02(data, columns)
    survey = source.survey()
    result = Input02([], survey.movements, list(survey.repeated.items()) + survey.invalid_moves, [],
                     source.observed_at, source.pending_upstream)
    for item in source.projects(survey.repeated):
        if isinstance(item, Unreadable):
            result.invalid.append((item.isales_id, item.reason))
            if item.movement is not None:
                result.unreadable_moves.append(item.movement)
        else:
            result.projects.append(item)
    return result


def _raw_id(raw: Any) -> str | None:
    """The record's id in canonical form, or None (no key to keep a pending item by)."""
    return record_checks.isales_id(raw.get("isales_id")) if isinstance(raw, dict) else None


def _raw_doc(raw: Any) -> str | None:
    """The client's document as parse_project reads it, or None (without raising)."""
    cliente = raw.get("cliente") if isinstance(raw, dict) else None
    if not isinstance(cliente, dict):
        return None
    try:
        return _text(cliente.get("doc_pessoal"), "", "")
    except RecordError:
        return None


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


def _labelled(section: str, names: tuple[str, ...], typed: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """(field, its name in messages) of the text fields of a section, named once, not per record."""
    return tuple((name, f"{section}.{name}") for name in names if name not in typed)


_CLIENTE_TEXT = _labelled("cliente", CLIENTE_FIELDS)
_ENDERECO_TEXT = _labelled("endereco", ENDERECO_FIELDS, ("latitude", "longitude"))
_OS_TEXT = _labelled("os", OS_TEXT_FIELDS)
_PAGAMENTO_TEXT = _labelled("pagamento", PAGAMENTO_FIELDS, ("valor_seguro",))


def parse_project(raw: Any, columns: ColumnSettings | None = None) -> ProjectInput:
    """A ProjectInput, or RecordError naming the project and the field."""
    isales_id, coluna, status = _common(raw, columns)
    record = f"projeto {isales_id}"
    cliente_raw = _required_section(raw, "cliente", record)
    nome = _text(cliente_raw.get("nome"), record, "cliente.nome")
    if nome:
        record = f"{record} ({_short(nome)})"
    cliente = {name: _text(cliente_raw.get(name), record, label) for name, label in _CLIENTE_TEXT}
    if not cliente["doc_pessoal"]:
        raise RecordError(f"{record}: cliente sem CPF/CNPJ (doc_pessoal); não há como identificá-lo")

    endereco: dict[str, Any] | None = None
    endereco_raw = _section(raw, "endereco", record)
    if endereco_raw:
        endereco = {name: _text(endereco_raw.get(name), record, label) for name, label in _ENDERECO_TEXT}
        endereco["latitude"] = _coordinate(endereco_raw.get("latitude"), record, "latitude", 90)
        endereco["longitude"] = _coordinate(endereco_raw.get("longitude"), record, "longitude", 180)
        if not any(endereco.get(name) for name in ENDERECO_KEY):
            endereco = None  # no address at all (e.g. a cancelled project): keep the stored one

    os_raw = _section(raw, "os", record) or {}
    os_values: dict[str, Any] = {name: _text(os_raw.get(name), record, label) for name, label in _OS_TEXT}
    os_values["data_fechamento"] = _datetime(os_raw.get("data_fechamento"), record, "os.data_fechamento")
    os_values["valor"] = _money(os_raw.get("valor"), record, "os.valor")
    os_values["acesso"] = _acesso(os_raw.get("acesso"), record)

    pagamento: dict[str, Any] | None = None
    pagamento_raw = _section(raw, "pagamento", record)
    if pagamento_raw:
        pagamento = {name: _text(pagamento_raw.get(name), record, label) for name, label in _PAGAMENTO_TEXT}
        pagamento["valor_seguro"] = _money(pagamento_raw.get("valor_seguro"), record, "pagamento.valor_seguro")
        if all(value is None for value in pagamento.values()):
            pagamento = None

    obtido_em = _datetime(raw.get("obtido_em"), record, "obtido_em", utc=True)
    warnings = [str(item) for item in raw.get("avisos") or [] if item]
    listagem = _text(raw.get("listagem"), record, "listagem")
    return ProjectInput(isales_id, coluna, status, obtido_em, cliente, endereco, os_values, pagamento, warnings,
                        _authoritative(raw.get("bruto")), client_signature(cliente),
                        address_signature(endereco) if endereco is not None else None, listagem)


def project_label(isales_id: str, nome: str | None) -> str:
    """How a project is named in messages: its id and its client's name."""
    return f"projeto {isales_id}" + (f" ({_short(nome)})" if nome else "")


def client_signature(cliente: dict[str, Any]) -> str:
    """A stable fingerprint of a card's client fields."""
    return _fingerprint(cliente, CLIENTE_FIELDS)


def address_signature(endereco: dict[str, Any]) -> str:
    """A stable fingerprint of a card's address fields (coordinates and their source included)."""
    return _fingerprint(endereco, ENDERECO_FIELDS)


_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode  # json.dumps(…, ensure_ascii=False, default=str), built once


def _fingerprint(values: dict[str, Any], names: tuple[str, ...]) -> str:
    text = _ENCODE([values.get(name) for name in names])
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
    if type(value) is str:  # the usual case; strip() would copy it (its whitespace is isspace's)
        return None if not value or value.isspace() else value
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


def address_key(values: dict[str, Any]) -> tuple[str, ...]:
    """The identity of an address: CEP digits, and street, number and complement without accents,
    case, punctuation or repeated spaces ("Av. Paulista, 1000" ≠ "Avenida Paulista")."""
    return _address_key(*(values.get(name) or "" for name in ENDERECO_KEY))


_NOT_DIGITS = re.compile(r"\D")
_NOT_WORDS = re.compile(r"[^\w]+")


@functools.lru_cache(maxsize=4096)  # step 03 asks again for the same address while it writes a batch
def _address_key(cep: str, *texts: str) -> tuple[str, ...]:
    key = [_NOT_DIGITS.sub("", cep)]
    for text in texts:
        if not text.isascii():  # ASCII text has no accents to take off (and folds as it lowers)
            text = unicodedata.normalize("NFKD", text)
            text = "".join(char for char in text if not unicodedata.combining(char))
        key.append(" ".join(_NOT_WORDS.sub(" ", text.casefold()).split()))
    return tuple(key)
