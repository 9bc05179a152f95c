"""Step 03's merge rules for the cards of one client (one document) in one input (docs/design.md
§5–6), merged document by document: the cards of documents that several cards carry wait in the run's
spool (local_spool), and so do their merged values, read back for each batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from lib.steps.local_input import ProjectInput, address_key

COORDINATES = ("latitude", "longitude", "fonte_coordenadas")  # they go together: the most recent located card's


def recency(project: ProjectInput) -> tuple:
    """The order in which cards win a field: latest obtido_em, then the highest isales_id."""
    number = int(project.isales_id) if project.isales_id.isdigit() else -1
    return (project.obtido_em or datetime.min, number, project.isales_id)


class LatestValues:
    """Field by field, the value of the most recent card that gives one: an empty value never
    erases a given one, and the order the cards come in does not matter."""

    __slots__ = ("best",)

    def __init__(self) -> None:
        self.best: dict[str, tuple[tuple, Any]] = {}

    def add(self, when: tuple, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if value is not None:
                held = self.best.get(name)
                if held is None or when > held[0]:
                    self.best[name] = (when, value)

    def values(self) -> dict[str, Any]:
        return {name: value for name, (_when, value) in self.best.items()}


class AddressValues:
    """The merged values of one client's address (one key) and how many changed cards carry it. The
    coordinates and their source come from the most recent card that has coordinates (a later
    card's source alone, without them, still counts: as when the cards are applied in order)."""

    __slots__ = ("latest", "located", "cards")

    def __init__(self) -> None:
        self.latest = LatestValues()
        self.located: tuple | None = None  # recency of the most recent card with a latitude
        self.cards = 0

    def add(self, when: tuple, endereco: dict[str, Any]) -> None:
        self.cards += 1
        self.latest.add(when, endereco)
        if endereco.get("latitude") is not None and (self.located is None or when > self.located):
            self.located = when

    def values(self) -> dict[str, Any]:
        merged = self.latest.values()
        if self.located is not None:
            for name in COORDINATES:
                held = self.latest.best.get(name)
                merged[name] = held[1] if held is not None and held[0] >= self.located else None
        return merged


class Stored(Protocol):
    """What the merge needs of a card's last sync: the fingerprints of the copies it carried."""

    @property
    def cliente_assinatura(self) -> str | None: ...

    @property
    def endereco_assinatura(self) -> str | None: ...


# The client and address rules (docs/design.md §5–6): each card holds its own copy of the client's
# data and of its address in iSales. Only cards whose copy changed since their last sync (`stored`:
# the fingerprints stored by that sync; a new card counts as changed) may update the client, or the
# address, the latest card winning field by field; an empty value never erases a given one. So an
# edit made on one card is not undone by another card's unchanged copy, refreshing one card at a
# time does not flip a shared row back and forth, and the same input twice writes nothing. Projects
# of one client at one address (same key) share one `endereco` row: the changed cards of the input
# that carry it get the same values. The address of an unchanged card is not written over its row
# (`_endereco` in local_sync checks the fingerprint).


class MergeCard(NamedTuple):
    """What the merge needs of one card of a document that several cards carry: kept in the
    run's spool (local_spool) until every card of the document is known."""

    when: tuple  # recency
    cliente: dict[str, Any] | None  # its client values, when its copy changed since its last sync
    endereco: dict[str, Any] | None  # its address, when it has one and its copy changed

    @classmethod
    def of(cls, project: ProjectInput, stored: Stored | None) -> MergeCard:
        return cls(recency(project), dict(project.cliente) if _changed(project, stored) else None,
                   dict(project.endereco) if project.endereco is not None and _address_changed(project, stored)
                   else None)


class Merged(NamedTuple):
    """The merged values of one document's cards: the client's, and those of each address that
    several changed cards carry (by address key; an address one card carries is its own)."""

    cliente: dict[str, Any]
    enderecos: dict[tuple[str, ...], dict[str, Any]]


def _changed(project: ProjectInput, stored: Stored | None) -> bool:
    return stored is None or stored.cliente_assinatura != project.client_signature


def _address_changed(project: ProjectInput, stored: Stored | None) -> bool:
    return stored is None or stored.endereco_assinatura != project.address_signature


def merge(cards: Iterable[MergeCard]) -> Merged:
    """The merged values of the cards of one document (in any order)."""
    client = LatestValues()
    addresses: dict[tuple[str, ...], AddressValues] = {}
    for card in cards:
        if card.cliente is not None:
            client.add(card.when, card.cliente)
        if card.endereco is not None:
            addresses.setdefault(address_key(card.endereco), AddressValues()).add(card.when, card.endereco)
    return Merged(client.values(), {key: shared.values() for key, shared in addresses.items() if shared.cards > 1})


def apply(project: ProjectInput, merged: Merged | None, stored: Stored | None) -> None:
    """Give `project` the client and address values it should write: its document's `merged`
    values, or (the only card of its document: no `merged`) its own."""
    doc = project.cliente["doc_pessoal"]
    if merged is None:
        values = ({name: value for name, value in project.cliente.items() if value is not None}
                  if _changed(project, stored) else {})
    else:
        values = merged.cliente
    project.cliente = {"doc_pessoal": doc, **values}
    if merged is not None and project.endereco is not None:
        endereco = merged.enderecos.get(address_key(project.endereco))
        if endereco is not None:
            project.endereco = dict(endereco)
