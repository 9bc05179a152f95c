"""lib/status: columns → statuses → ticket kinds, and their pt-BR labels."""

from __future__ import annotations

from lib import status


def test_every_status_of_interest_sends_one_kind_of_ticket():
    assert set(status.TICKET_OF_STATUS) == set(status.OF_INTEREST)
    assert set(status.TICKET_OF_STATUS.values()) == set(status.TICKET_KINDS) == set(status.TICKET_TITLES)


def test_ticket_labels_in_a_title_and_in_a_sentence():
    assert status.TICKET_TITLES[status.TICKET_AUMENTO] == "Aumento de Sistema"
    assert status.ticket_label("aumento") == "aumento de sistema"
    assert status.ticket_label("instalacao") == "instalação"
    assert status.ticket_label(None, "serviço") == "serviço" and status.ticket_label("outro") == "?"
