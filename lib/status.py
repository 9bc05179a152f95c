"""The vocabulary of statuses: iSales Kanban column → project status → kind of FieldControl ticket,
with their pt-BR labels. The one place that maps columns to statuses and statuses to tickets.
"""

from __future__ import annotations

from lib.config import ColumnSettings, IsalesSettings

INSTALACAO = "instalacao"
AUMENTO = "aumento"
CANCELADO = "cancelado"
OUTRO = "outro"

STATUSES = (INSTALACAO, AUMENTO, CANCELADO, OUTRO)
OF_INTEREST = (INSTALACAO, AUMENTO, CANCELADO)

LABELS = {
    INSTALACAO: "aprovado para instalação",
    AUMENTO: "aumento de sistema",
    CANCELADO: "cancelado",
    OUTRO: "outra coluna do funil",
}

# The kind of ticket an event of each status sends (OUTRO sends none); the cancellation rule that
# decides whether it is sent lives in step 04.
TICKET_INSTALACAO = "instalacao"
TICKET_AUMENTO = "aumento"
TICKET_CANCELAMENTO = "cancelamento"
TICKET_KINDS = (TICKET_INSTALACAO, TICKET_AUMENTO, TICKET_CANCELAMENTO)
TICKET_OF_STATUS = {INSTALACAO: TICKET_INSTALACAO, AUMENTO: TICKET_AUMENTO, CANCELADO: TICKET_CANCELAMENTO}

# As a ticket's subject and a report's column ("Instalação: Maria da Silva"); `ticket_label` in a sentence
TICKET_TITLES = {TICKET_INSTALACAO: "Instalação", TICKET_AUMENTO: "Aumento de Sistema",
                 TICKET_CANCELAMENTO: "Cancelamento"}


# os_status_historico.origem of the rows step 04 writes from FieldControl's task statuses
FIELDCONTROL_ORIGIN = "fieldcontrol"

# FieldControl's task statuses (orders made of our tickets) in pt-BR: step 04's history and the page
TASK_STATUS_LABELS = {"scheduled": "agendada", "pending": "pendente", "on-route": "a caminho",
                      "in-progress": "em execução", "done": "concluída", "reported": "com problema relatado",
                      "canceled": "cancelada"}


def ticket_label(kind: str | None, default: str = "?") -> str:
    """A ticket kind in running text: 'instalação', 'aumento de sistema', 'cancelamento'."""
    title = TICKET_TITLES.get(kind or "")
    return title.lower() if title else default


def status_for_column(settings: IsalesSettings | ColumnSettings, coluna_id: int | None) -> str:
    """The status a card has by sitting in `coluna_id` (OUTRO for any column not configured)."""
    if coluna_id in settings.colunas_instalacao:
        return INSTALACAO
    if coluna_id in settings.colunas_aumento:
        return AUMENTO
    if coluna_id in settings.colunas_cancelado:
        return CANCELADO
    return OUTRO


def describe_move(status_before: str | None, coluna_before: int | None, status: str, coluna: int | None) -> str:
    """The pt-BR observation of a status-history row."""
    if status_before is None:
        return f"Projeto visto pela primeira vez na coluna {coluna} ({LABELS[status]})."
    return (
        f"Projeto movido da coluna {coluna_before} ({LABELS.get(status_before, status_before)}) "
        f"para a coluna {coluna} ({LABELS[status]})."
    )
