"""The pt-BR text of a FieldControl ticket (subject and message): everything the field team needs,
money as R$ 45.900,00, dates as dd/mm/aaaa, "não informado" for an empty field. It depends only on the
stored data (never on the clock), so an unchanged project gives the same payload run after run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lib.documents import mask_document
from lib.status import TICKET_TITLES, ticket_label

MISSING = "não informado"


Row = Mapping[str, Any]


def subject(kind: str, nome: str) -> str:
    """"Instalação: Maria da Silva" / "Aumento de Sistema: …" / "Cancelamento: …"."""
    return f"{TICKET_TITLES[kind]}: {nome}"


def money(value: Any) -> str:
    """Decimal("45900") → "R$ 45.900,00"; None → "não informado"."""
    if value is None or value == "":
        return MISSING
    try:
        number = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if number < 0 else ""
    integer, cents = f"{abs(number):,.2f}".split(".")
    return f"{sign}R$ {integer.replace(',', '.')},{cents}"


def day(value: Any) -> str:
    """A date or datetime as dd/mm/aaaa."""
    if isinstance(value, (datetime, date)):
        return value.strftime("%d/%m/%Y")
    return text(value)


def text(value: Any) -> str:
    if value is None:
        return MISSING
    value = str(value).strip()
    return value or MISSING


def document(value: Any) -> str:
    digits = "".join(c for c in str(value or "") if c.isalnum()).upper()
    if len(digits) in (11, 14):
        return f"{'CPF' if len(digits) == 11 else 'CNPJ'} {mask_document(digits)}"
    return text(value)


def phone(value: Any) -> str:
    digits = "".join(c for c in str(value or "") if c.isdigit())
    if len(digits) == 11:
        return f"({digits[:2]}) {digits[2:7]}-{digits[7:]}"
    if len(digits) == 10:
        return f"({digits[:2]}) {digits[2:6]}-{digits[6:]}"
    return text(value)


def address_line(endereco: Row) -> str:
    street = ", ".join(str(p) for p in (endereco.get("logradouro"), endereco.get("numero") or "s/n",
                                        endereco.get("complemento")) if p)
    city = "/".join(str(p) for p in (endereco.get("cidade"), endereco.get("estado")) if p)
    cep = "".join(c for c in str(endereco.get("cep") or "") if c.isdigit())
    parts = [street, endereco.get("bairro"), city, f"CEP {cep[:5]}-{cep[5:]}" if len(cep) == 8 else None]
    return " - ".join(str(p) for p in parts if p) or MISSING


def _opening(kind: str, os_row: Row, event: Row, previous: Row | None) -> list[str]:
    isales_id = os_row.get("isales_id")
    lines = [f"OS DE {ticket_label(kind).upper()} — projeto iSales {isales_id}"]
    moved = day(event.get("data_status"))
    if kind == "cancelamento":
        before = ticket_label(previous.get("ticket_tipo")) if previous else "?"
        # the field team knows a ticket by its identifier ("1#00004143"), not by the API's internal id
        sent = (previous.get("ticket_identificador") or previous.get("ticket_field_id")) if previous else None
        lines.append(f"O projeto foi CANCELADO no iSales em {moved}. A OS de {before} já enviada "
                     f"({text(sent)}) não deve ser executada.")
    elif kind == "aumento":
        lines.append(f"Projeto movido para aumento de sistema no iSales em {moved}.")
    else:
        lines.append(f"Projeto aprovado para instalação no iSales em {moved}.")
    return lines


def message(kind: str, *, cliente: Row, endereco: Row | None, os_row: Row, pagamento: Row | None,
            event: Row, previous: Row | None = None) -> str:
    """The ticket message. `previous` is the last history row sent for this project (cancellations)."""
    endereco = endereco or {}
    pagamento = pagamento or {}
    blocks = [
        _opening(kind, os_row, event, previous),
        [f"CLIENTE: {text(cliente.get('nome'))}",
         f"DOCUMENTO: {document(cliente.get('doc_pessoal'))}",
         f"TELEFONE: {phone(cliente.get('telefone'))}",
         f"TELEFONE SECUNDÁRIO: {phone(cliente.get('telefone_secundario'))}",
         f"E-MAIL: {text(cliente.get('email'))}",
         f"ENDEREÇO: {address_line(endereco)}",
         f"LOCALIZAÇÃO: {text(endereco.get('link_localizacao'))}"],
        [f"VENDEDOR: {text(os_row.get('vendedor'))}",
         f"DATA DE FECHAMENTO: {day(os_row.get('data_fechamento'))}"],
        ["KIT ADQUIRIDO:",
         f"- Módulos: {text(os_row.get('modulos'))}",
         f"- Inversor 1: {text(os_row.get('inversor1'))}",
         f"- Inversor 2: {text(os_row.get('inversor2'))}",
         f"- Inversor 3: {text(os_row.get('inversor3'))}"],
        [f"ACESSO AO LOCAL: {text(os_row.get('acesso'))}",
         f"OBSERVAÇÕES DO PROJETO: {text(os_row.get('observacoes'))}"],
        [f"VALOR DO CONTRATO: {money(os_row.get('valor'))}",
         f"FORMA DE PAGAMENTO: {text(pagamento.get('forma_pgto'))}",
         f"FINANCIAMENTO NO NOME DE: {text(pagamento.get('responsavel_financiamento'))}",
         f"VALOR DO SEGURO: {money(pagamento.get('valor_seguro'))}",
         f"OBSERVAÇÕES DO PAGAMENTO: {text(pagamento.get('observacoes'))}"],
        [f"Enviado pela integração iSales → FieldControl (evento {event.get('id')} do histórico do projeto)."],
    ]
    return "\n\n".join("\n".join(block) for block in blocks)
