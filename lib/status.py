"""The one place that maps iSales Kanban columns to project statuses, and their pt-BR labels."""

from __future__ import annotations

from lib.config import IsalesSettings

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


def status_for_column(settings: IsalesSettings, coluna_id: int | None) -> str:
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
