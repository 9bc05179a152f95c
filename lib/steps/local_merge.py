"""Step 03's merge rules for the cards of one client (one document) in one input (docs/design.md
§5–6), built one card at a time: the input is read in batches, and what spans the whole file is the
merged values of each document that several cards carry, never the cards themselves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

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


class ClientMerge:
    """The client and address rules (docs/design.md §5–6): each card holds its own copy of the
    client's data and of its address in iSales. Only cards whose copy changed since their last sync
    (`stored_of`: isales_id → the fingerprints stored by that sync; a new card counts as changed)
    may update the client, or the address, the latest card winning field by field; an empty value
    never erases a given one. So an edit made on one card is not undone by another card's unchanged
    copy, refreshing one card at a time does not flip a shared row back and forth, and the same
    input twice writes nothing. Projects of one client at one address (same key) share one
    `endereco` row: the changed cards of the input that carry it get the same values.

    `add` every card of the documents that several cards carry (a first pass), then `apply` to each
    card as it is written; a card whose document only it carries needs no `add`. The address of an
    unchanged card is not written over its row (`_endereco` in local_sync checks the fingerprint)."""

    def __init__(self, stored_of: Callable[[str], Stored | None]) -> None:
        self.stored_of = stored_of
        self.clients: dict[str, LatestValues] = {}  # doc_pessoal → merged values of its changed cards
        self.addresses: dict[tuple[str, tuple[str, ...]], AddressValues] = {}  # (doc, address key) → …
        # after `settle`: only what `apply` reads, each value once (no recency per field)
        self.merged: dict[str, dict[str, Any]] = {}  # doc_pessoal → the client's merged values
        self.merged_addresses: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}  # of several changed cards

    def _changed(self, project: ProjectInput) -> bool:
        stored = self.stored_of(project.isales_id)
        return stored is None or stored.cliente_assinatura != project.client_signature

    def _address_changed(self, project: ProjectInput) -> bool:
        stored = self.stored_of(project.isales_id)
        return stored is None or stored.endereco_assinatura != project.address_signature

    def add(self, project: ProjectInput) -> None:
        doc, when = project.cliente["doc_pessoal"], recency(project)
        latest = self.clients.setdefault(doc, LatestValues())
        if self._changed(project):
            latest.add(when, project.cliente)
        if project.endereco is not None and self._address_changed(project):
            self.addresses.setdefault((doc, address_key(project.endereco)), AddressValues()).add(when, project.endereco)

    def forget(self, docs: set[str]) -> None:
        """Drop what was gathered for `docs` (their cards are added again, without some of them)."""
        for doc in docs:
            self.clients.pop(doc, None)
        for key in [key for key in self.addresses if key[0] in docs]:
            del self.addresses[key]

    def settle(self) -> None:
        """Once every card is added: keep the merged values only, and only those `apply` reads (an
        address that one changed card carries is that card's own). What the run holds for the
        whole file is then a dict of values per shared client and per address several cards share."""
        self.merged.update((doc, latest.values()) for doc, latest in self.clients.items())
        self.merged_addresses.update((key, shared.values()) for key, shared in self.addresses.items()
                                     if shared.cards > 1)
        self.clients, self.addresses = {}, {}

    def apply(self, project: ProjectInput) -> None:
        """Give `project` the client and address values it should write."""
        doc = project.cliente["doc_pessoal"]
        values = self.merged.get(doc)
        if values is None:
            latest = self.clients.get(doc)
            if latest is None:  # the only card of its document
                latest = LatestValues()
                if self._changed(project):
                    latest.add(recency(project), project.cliente)
            values = latest.values()
        project.cliente = {"doc_pessoal": doc, **values}
        if project.endereco is not None and (doc in self.merged or doc in self.clients):
            # the address of one card is its own
            key = (doc, address_key(project.endereco))
            endereco = self.merged_addresses.get(key)
            if endereco is None and (shared := self.addresses.get(key)) is not None and shared.cards > 1:
                endereco = shared.values()
            if endereco is not None:
                project.endereco = dict(endereco)
