"""Step 02, one project's fields: the raw iSales objects of data/01 → `cliente`, `endereco`, `os`,
`pagamento` (docs/design.md §5), with a pt-BR warning for every value dropped and the reason a
project cannot go on (invalid document, no name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lib import documents
from lib.documents import InvalidValue, clean_text, fold


@dataclass
class Treated:
    """One project after normalisation (coordinates are filled in later by the step)."""

    isales_id: str
    coluna_id: Any
    status: Any
    obtido_em: Any
    cliente: dict[str, Any]
    endereco: dict[str, Any]
    os: dict[str, Any]
    pagamento: dict[str, Any]
    bruto: dict[str, Any]
    avisos: list[str] = field(default_factory=list)
    problem: str | None = None  # why the project cannot go on (a pending item)
    listagem: Any = None  # step 01's fingerprint of the card's listing row, passed through to 03

    @property
    def label(self) -> str:
        nome = self.cliente.get("nome")
        return f"projeto {self.isales_id}" + (f" ({nome[:80]})" if nome else "")

    def record(self) -> dict[str, Any]:
        """The entry of data/02_projetos_tratados.json."""
        return {"isales_id": self.isales_id, "coluna_id": self.coluna_id, "status": self.status,
                "obtido_em": self.obtido_em, "listagem": self.listagem, "cliente": self.cliente, "endereco": self.endereco, "os": self.os,
                "pagamento": self.pagamento, "avisos": self.avisos, "bruto": self.bruto}

    def movement(self) -> dict[str, Any]:
        return {"isales_id": self.isales_id, "coluna_id": self.coluna_id, "status": self.status}


def custom_field(campos: Any, labels: tuple[str, ...]) -> Any:
    """The value of the first label present with a value: new label first, old ones as fallback.
    Labels also match ignoring case, accents and repeated spaces (a renamed field keeps working)."""
    if not isinstance(campos, dict):
        return None
    folded = {fold(str(key)): key for key in campos}
    for label in labels:
        key = label if label in campos else folded.get(fold(label))
        if key is None:
            continue
        value = campos[key]
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            continue
        return value
    return None


def _object(value: Any) -> dict[str, Any]:
    """A raw iSales object; the API's 'nothing' ({}, [], null) and a list of one object handled."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return {}


def treat(raw: dict[str, Any], campos_labels: dict[str, tuple[str, ...]]) -> Treated:
    """Normalise one project of the 01 file. Never raises for bad values: a dropped value becomes a
    warning in `avisos`, and a project that cannot go on gets its `problem`."""
    card, cliente_raw = _object(raw.get("card")), raw.get("cliente")
    proposta, campos = _object(raw.get("proposta")), raw.get("campos")
    card_cliente = _object(card.get("cliente"))
    cliente_obj = _object(cliente_raw)
    avisos: list[str] = []

    def value(getter, raw_value: Any, what: str) -> Any:
        try:
            return getter(raw_value)
        except InvalidValue as exc:
            avisos.append(f"{what} {clean_text(raw_value)!r} descartado: {exc}")
            return None

    def label(meaning: str) -> Any:
        return custom_field(campos, campos_labels.get(meaning, ()))

    nome = clean_text(cliente_obj.get("nome")) or clean_text(card_cliente.get("nome"))
    cliente = {"nome": nome, "doc_pessoal": None, "tipo_documento": None,
               "email": _email(cliente_obj.get("email"), avisos),
               "telefone": value(documents.phone, cliente_obj.get("telefone"), "telefone"),
               "telefone_secundario": value(documents.phone, cliente_obj.get("telefone_secundario"),
                                            "telefone secundário")}
    endereco = {"cep": value(documents.cep, cliente_obj.get("cep"), "CEP"),
                "logradouro": clean_text(cliente_obj.get("logradouro")),
                "numero": documents.house_number(cliente_obj.get("numero")),
                "complemento": clean_text(cliente_obj.get("complemento")),
                "bairro": clean_text(cliente_obj.get("bairro")),
                "cidade": clean_text(cliente_obj.get("cidade")),
                "estado": value(documents.uf, cliente_obj.get("estado"), "estado"),
                "link_localizacao": _link(cliente_obj.get("link_localizacao")),
                "latitude": None, "longitude": None, "fonte_coordenadas": None}
    fechamento = value(documents.date_time, cliente_obj.get("data_fechamento"), "data de fechamento")
    os_values = {"vendedor": clean_text(card_cliente.get("vendedor")) or clean_text(card.get("vendedor"))
                 or clean_text(cliente_obj.get("vendedor")),
                 "data_fechamento": documents.iso_date_time(fechamento),
                 "modulos": clean_text(proposta.get("mod_descricao")),
                 "inversor1": clean_text(proposta.get("inv_descricao")),
                 "inversor2": clean_text(proposta.get("inv2_descricao")),
                 "inversor3": clean_text(proposta.get("inv3_descricao")),
                 "valor": value(documents.money, proposta.get("valor_final"), "valor da proposta"),
                 "observacoes": clean_text(label("observacoes")),
                 "acesso": documents.text_list(label("acesso"))}
    pagamento = {"forma_pgto": clean_text(label("forma_pgto")),
                 "responsavel_financiamento": clean_text(label("responsavel_financiamento")),
                 "valor_seguro": value(documents.money, label("valor_seguro"), "valor do seguro"),
                 "observacoes": clean_text(label("detalhes_pagamento"))}
    treated = Treated(
        isales_id=str(raw.get("isales_id")).strip(), coluna_id=raw.get("coluna_id"), status=raw.get("status"),
        obtido_em=raw.get("obtido_em"), listagem=raw.get("listagem"), cliente=cliente, endereco=endereco,
        os=os_values, pagamento=pagamento,
        bruto={"card": raw.get("card"), "cliente": cliente_raw, "proposta": raw.get("proposta"), "campos": campos},
        avisos=avisos)
    if not isinstance(cliente_raw, dict) or not cliente_raw:
        treated.problem = "os dados do cliente não vieram do iSales (rode 01_get_projetos_isales.py de novo)"
        return treated
    try:
        doc = documents.document(cliente_obj.get("cpf"))
    except InvalidValue as exc:
        treated.problem = f"documento inválido: {exc}"
        return treated
    cliente["doc_pessoal"], cliente["tipo_documento"] = doc.value, doc.kind
    if not nome:
        treated.problem = "cliente sem nome no iSales"
    return treated


def _email(raw: Any, avisos: list[str]) -> str | None:
    try:
        address, others = documents.email(raw)
    except InvalidValue as exc:
        avisos.append(f"e-mail {clean_text(raw)!r} descartado: {exc}")
        return None
    if others:
        avisos.append(f"e-mail: usado {address}; descartado(s) {', '.join(others)}")
    return address


def _link(raw: Any) -> str | None:
    """The map link as pasted, trimmed (the text is kept: it may be an address or a note)."""
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None
