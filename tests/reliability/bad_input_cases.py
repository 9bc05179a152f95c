"""The bad-input corpus as tables: what is wrong, where it enters, and the outcome each one must have
(the pending item or warning naming the record and the reason, or the file/step refused)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.maplinks import Point
from tests.steps.push_seed import make_cpf

INSTALACAO, CANCELADO, DESCONHECIDA = 17840, 20363, 99999
NOME_SQL = "Robert'); DROP TABLE cliente;-- \"O'Brien\" `x` \\ 100% _"
RUA_ASPAS = "Rua D'Ávila \"Velha\" \\ 50% _ ;--"


# --------------------------------------------------------------------------- records entering from iSales

@dataclass(frozen=True)
class Record:
    """One project added to the sandbox with `overrides`; then either it is kept as a pending item
    of `pending` (its reason containing `reason`), or it goes on (to FieldControl when its column
    asks so) with `warning` logged by step 02 about it; `check(corpus, isales_id)` checks more."""

    name: str
    overrides: dict[str, Any]
    pending: str | None = None
    reason: tuple[str, ...] = ()
    warning: tuple[str, ...] = ()
    check: Callable[[Any, str], None] | None = None
    column: int = INSTALACAO

    def sandbox_overrides(self, number: int) -> dict[str, Any]:
        return {"coluna_id": self.column, "cpf": make_cpf(7000 + number), **self.overrides}


def _stored(table: str, name: str, expected: Any) -> Callable[[Any, str], None]:
    def check(corpus, isales_id: str) -> None:
        row = corpus.row(table, isales_id)
        assert row[name] == expected, f"{table}.{name} = {row[name]!r}, esperado {expected!r}"
    return check


def _named(expected: str) -> Callable[[Any, str], None]:
    def check(corpus, isales_id: str) -> None:
        assert corpus.row("cliente", isales_id)["nome"] == expected
        assert corpus.customer(isales_id)["name"] == expected, "o FieldControl recebeu outro nome"
        assert corpus.counts["cliente"] > 1, "a tabela cliente perdeu linhas"
    return check


def _coordinates_from_address(corpus, isales_id: str) -> None:
    row = corpus.row("endereco", isales_id)
    assert row["fonte_coordenadas"] == "endereco", row["fonte_coordenadas"]
    assert Point.of(row["latitude"], row["longitude"]).in_brazil()


def _no_contacts(corpus, isales_id: str) -> None:
    row = corpus.row("cliente", isales_id)
    assert row["telefone"] is None and row["email"] is None
    customer = corpus.customer(isales_id)["id"]
    assert not [p for p in corpus.remote.phones if p["customer"]["id"] == customer]
    assert not [e for e in corpus.remote.emails if e["customer"]["id"] == customer]


def _not_of_interest(corpus, isales_id: str) -> None:
    assert corpus.os(isales_id) is None and not corpus.pending_of(isales_id) and not corpus.tickets(isales_id)


def _cancelled_without_customer(corpus, isales_id: str) -> None:
    assert not corpus.pending_of(isales_id) and not corpus.tickets(isales_id)
    assert corpus.os(isales_id) is None  # never stored: only a move of a stored project is history


def _raw_kept(corpus, isales_id: str) -> None:
    bruto = next(p["bruto"] for p in corpus.file_02["projetos"] if p["isales_id"] == isales_id)
    assert bruto["cliente"]["campo_novo_da_api"] == {"x": [1, 2]}


RECORDS = [
    Record("cpf com dígitos errados", {"cpf": "123.456.789-00"}, "02", ("documento inválido", "dígitos verificadores")),
    Record("cnpj com dígitos errados", {"cpf": "11.222.333/0001-00"}, "02", ("CNPJ 11.222.333/0001-00",)),
    Record("cpf nulo", {"cpf": None}, "02", ("CPF/CNPJ ausente",)),
    Record("cpf vazio", {"cpf": ""}, "02", ("CPF/CNPJ ausente",)),
    Record("cpf com letras", {"cpf": "não informado"}, "02", ("contém letras",)),
    Record("cpf com dígitos iguais", {"cpf": "111.111.111-11"}, "02", ("todos os dígitos iguais",)),
    Record("cpf como número", {"cpf": 52998224725}, check=_stored("cliente", "doc_pessoal", "52998224725")),
    Record("nome de 10 000 caracteres", {"nome": "Maria " + "A" * 10_000}, "03",
           ("cliente.nome tem 10006 caracteres", "o limite é 500")),
    Record("observação de 100 000 caracteres sem espaços", {"campos": {"OBSERVAÇÕES": "x" * 100_000}}, "03",
           ("os.observacoes tem 100000 bytes", "o limite é 65535")),
    Record("nome sem letras", {"nome": "   "}, "02", ("cliente sem nome no iSales",)),
    Record("metacaracteres de SQL e aspas no nome", {"nome": NOME_SQL}, check=_named(NOME_SQL)),
    Record("aspas e barras no endereço", {"logradouro": RUA_ASPAS}, check=_stored("endereco", "logradouro", RUA_ASPAS)),
    Record("emoji e byte NUL", {"nome": "Maria 🌞 da\x00 Silva\x00"}, check=_named("Maria 🌞 da Silva")),
    Record("link com coordenadas fora do Brasil", {"link_localizacao": "https://www.google.com/maps?q=48.8584,2.2945"},
           warning=("aponta para fora do Brasil", "usadas as coordenadas do endereço"), check=_coordinates_from_address),
    Record("link de lixo", {"link_localizacao": "perguntar ao cliente <script>alert(1)</script>"},
           warning=("não tem coordenadas",), check=_coordinates_from_address),
    Record("link curto em ciclo", {"link_localizacao": "@SANDBOX@/l/loop-x"}, warning=("formam um ciclo",),
           check=_coordinates_from_address),
    Record("link curto com saltos demais", {"link_localizacao": "@SANDBOX@/l/hop-1"},
           warning=("mais de 5 redirecionamentos",), check=_coordinates_from_address),
    Record("sem coordenadas", {"link_localizacao": None, "logradouro": "", "cidade": "", "cep": "", "numero": ""},
           "02", ("sem coordenadas", "sem link de localização", "sem CEP")),
    Record("proposta nula", {"proposta": None}, check=_stored("os", "modulos", None)),
    Record("proposta lista vazia", {"proposta": []}, check=_stored("os", "valor", None)),
    Record("proposta texto", {"proposta": "sem proposta"}, "01", ("'propostas' deveria ser um objeto, veio str",)),
    Record("campos lista vazia", {"campos": []}, check=_stored("pagamento", "forma_pgto", None)),
    Record("campos texto", {"campos": "nada"}, "01", ("deveria ser um objeto de rótulos, veio str",)),
    Record("telefone e e-mail inválidos", {"telefone": "123", "telefone_secundario": None, "email": "não tem"},
           warning=("telefone '123' descartado",), check=_no_contacts),
    Record("data de fechamento inválida", {"data_fechamento": "31/02/2025"},
           warning=("data de fechamento '31/02/2025' descartado",), check=_stored("os", "data_fechamento", None)),
    Record("UF desconhecida", {"estado": "XX"}, warning=("estado 'XX' descartado",),
           check=_stored("endereco", "estado", None)),
    Record("CEP só de zeros", {"cep": "00000-000"}, warning=("CEP '00000-000' descartado",),
           check=_stored("endereco", "cep", None)),
    Record("valor da proposta ilegível", {"proposta": {"mod_descricao": "10x Módulo", "valor_final": "muito caro"}},
           warning=("valor da proposta 'muito caro' descartado",), check=_stored("os", "valor", None)),
    Record("valor da proposta negativo", {"proposta": {"mod_descricao": "10x Módulo", "valor_final": "-45.900,00"}},
           warning=("valor da proposta '-45.900,00' descartado: valor negativo",), check=_stored("os", "valor", None)),
    Record("valor da proposta ambíguo (1,234)", {"proposta": {"mod_descricao": "10x Módulo", "valor_final": "1,234"}},
           warning=("valor da proposta '1,234' descartado: é ambíguo",), check=_stored("os", "valor", None)),
    Record("link no Paraguai (dentro do antigo retângulo)",
           {"link_localizacao": "https://www.google.com/maps?q=-25.28,-57.63"},
           warning=("aponta para fora do Brasil", "usadas as coordenadas do endereço"), check=_coordinates_from_address),
    Record("campo desconhecido na API", {"campo_novo_da_api": {"x": [1, 2]}}, check=_raw_kept),
    Record("coluna desconhecida do funil", {}, check=_not_of_interest, column=DESCONHECIDA),
    Record("cancelado com CPF inválido", {"cpf": "123.456.789-00"}, check=_cancelled_without_customer,
           column=CANCELADO),
]

# A project whose stored address a legacy tool spelled out ("São Paulo"): FieldControl answers 422.
REJECTED_BY_FIELDCONTROL = Record("422 do FieldControl (UF por extenso no banco)", {}, "04",
                                  ("o FieldControl recusou (HTTP 422)", "two-letter state code"))


# --------------------------------------------------------------------------- files in data/

@dataclass(frozen=True)
class FileCase:
    """A damaged input file of `step` (01 for step 02, 02 for step 03): `damage(path, good JSON)`
    writes it; the step ends with `code` saying `message`; `pending` is the step of the damaged
    record's pending item (None: the file itself is refused, or the record has no id to keep)."""

    name: str
    step: str
    damage: Callable[[Path, dict], Any]
    code: int
    message: tuple[str, ...]
    pending: str | None = None
    refused: bool = False  # the whole file refused: nothing written, the previous output kept
    all_go_on: bool = False  # nothing wrong with any record (otherwise every record but one goes on)


def _text(text: str) -> Callable[[Path, dict], None]:
    return lambda path, _data: path.write_text(text, encoding="utf-8")


def _truncated(path: Path, data: dict) -> None:
    text = json.dumps(data, ensure_ascii=False)
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _latin1(path: Path, data: dict) -> None:
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode("latin-1", "replace"))


def _changed(change: Callable[[dict], None]) -> Callable[[Path, dict], str | None]:
    """Apply `change` to a copy of the file's JSON; returns the isales_id of the first project."""
    def damage(path: Path, data: dict) -> str | None:
        data = json.loads(json.dumps(data))
        first = data["projetos"][0].get("isales_id") if data.get("projetos") else None
        change(data)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return None if first is None else str(first)
    return damage


def _first(**values: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        project = data["projetos"][0]
        for dotted, value in values.items():
            target, *path = dotted.split("__")
            holder = project if not path else project[target]
            holder[path[-1] if path else target] = value
    return change


def _no_id(data: dict) -> None:
    del data["projetos"][0]["isales_id"]


def _contradicting(data: dict) -> None:
    """'cancelado' written by hand on a card of another column (or 'instalacao' on a cancelled one)."""
    project = data["projetos"][0]
    project["status"] = "instalacao" if project["status"] == "cancelado" else "cancelado"


def _repeated(data: dict) -> None:
    data["projetos"].append(json.loads(json.dumps(data["projetos"][0])))


def _not_an_object(data: dict) -> None:
    data["projetos"][0] = ["não", "é", "objeto"]


def _unknown_columns(data: dict) -> None:
    for project in data["projetos"]:
        project["coluna_nova"] = 1
        project["cliente"]["apelido"] = "novo campo"
        project["os"]["prioridade"] = "alta"


FILE_CASES = [
    FileCase("01 truncado", "02", _truncated, 1, ("não é JSON válido", "truncado ou corrompido"), refused=True),
    FileCase("01 em latin-1 (não UTF-8)", "02", _latin1, 1, ("não está em UTF-8",), refused=True),
    FileCase("01 vazio", "02", _text(""), 1, ("não é JSON válido",), refused=True),
    FileCase("01 é null", "02", _text("null"), 1, ("não tem o envelope esperado",), refused=True),
    FileCase("01 é uma lista", "02", _text("[]"), 1, ("não tem o envelope esperado",), refused=True),
    FileCase("01 de formato futuro", "02", _changed(lambda d: d.update(formato=99)), 1,
             ("tem formato 99",), refused=True),
    FileCase("01 com projetos em objeto", "02", _changed(lambda d: d.update(projetos={})), 1,
             ("sem a lista 'projetos'",), refused=True),
    FileCase("01 com projeto sem cliente_id", "02", _changed(_no_id), 3, ("isales_id ausente inválido",)),
    FileCase("01 com status que contradiz a coluna", "02", _changed(_contradicting), 3,
             ("contradiz a coluna_id", "pela configuração atual"), pending="02"),
    FileCase("01 com isales_id '05001'", "02", _changed(_first(isales_id="05001")), 3, ("isales_id '05001' inválido",)),
    FileCase("01 com projeto repetido", "02", _changed(_repeated), 3, ("aparece 2 vezes no arquivo 01",),
             pending="02"),
    FileCase("01 com cliente nulo", "02", _changed(_first(cliente=None)), 3,
             ("os dados do cliente não vieram do iSales",), pending="02"),
    FileCase("02 gerado por outra etapa", "03", _text('{"etapa": "01", "formato": 1, "projetos": []}'), 1,
             ("foi gerado pela etapa '01', esperado '02'",), refused=True),
    FileCase("02 com movimentos inválidos", "03", _changed(lambda d: d.update(movimentos="nenhum")), 1,
             ("'movimentos' inválido",), refused=True),
    FileCase("02 com registro que não é objeto", "03", _changed(_not_an_object), 3, ("não é um objeto JSON",)),
    FileCase("02 com cliente lista", "03", _changed(_first(cliente=[])), 3,
             ("seção 'cliente' ausente ou não é um objeto",), pending="03"),
    FileCase("02 sem CPF/CNPJ", "03", _changed(_first(cliente__doc_pessoal=None)), 3,
             ("cliente sem CPF/CNPJ",), pending="03"),
    FileCase("02 com latitude fora da faixa", "03", _changed(_first(endereco__latitude="999")), 3,
             ("latitude '999' não é uma coordenada válida",), pending="03"),
    FileCase("02 com valor ilegível", "03", _changed(_first(os__valor="abc")), 3,
             ("os.valor = 'abc' não é um valor em reais válido",), pending="03"),
    FileCase("02 com coluna não numérica", "03", _changed(_first(coluna_id="abc")), 3,
             ("coluna_id 'abc' não é um número de coluna",), pending="03"),
    FileCase("02 com status desconhecido", "03", _changed(_first(status="em_analise")), 3,
             ("status 'em_analise' desconhecido",), pending="03"),
    FileCase("02 com data inválida", "03", _changed(_first(os__data_fechamento="ontem")), 3,
             ("não é uma data válida",), pending="03"),
    FileCase("02 com colunas desconhecidas", "03", _changed(_unknown_columns), 0, (), all_go_on=True),
    FileCase("02 com status que contradiz a coluna", "03", _changed(_contradicting), 3,
             ("contradiz a coluna_id", "pela configuração atual"), pending="03"),
    FileCase("02 com isales_id '05001'", "03", _changed(_first(isales_id="05001")), 3,
             ("isales_id '05001' inválido",)),
    FileCase("02 com isales_id 'abc'", "03", _changed(_first(isales_id="abc")), 3, ("isales_id 'abc' inválido",)),
    FileCase("02 com projeto repetido", "03", _changed(_repeated), 3, ("aparece 2 vezes no arquivo 02",),
             pending="03"),
]
