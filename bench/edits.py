"""The fidelity rounds' edits in the sandbox's iSales, as a salesperson makes them between two runs (card
moves, a group going instalação → cancelado → instalação → aumento, addresses, contacts, proposals,
custom fields), and what iSales held at every run (the columns the status history must show)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lib.documents import DDDS
from sandbox.data import (
    BAIRROS,
    COL_AUMENTO,
    COL_CANCELADO,
    COL_INSTALACAO,
    FORMAS,
    INVERTERS,
    LABEL_ACESSO,
    LABEL_DETALHES,
    LABEL_FINANCIAMENTO,
    LABEL_FORMA,
    LABEL_OBS,
    LABEL_SEGURO,
    MODULES,
    OTHER_COLUMNS,
    STREETS,
)
from sandbox.places import CITIES, address_point, format_cep

ALL_COLUMNS = (COL_INSTALACAO, COL_AUMENTO, COL_CANCELADO, *OTHER_COLUMNS)
# The cycle group's column at rounds 1, 2, 3, … (they start in instalação).
CYCLE = (COL_CANCELADO, COL_INSTALACAO, COL_AUMENTO)
SHARES = {"movimento": 0.06, "endereco": 0.04, "contato": 0.06, "proposta": 0.04, "campos": 0.04}
CYCLE_SHARE = 0.04
ACESSOS = ["Escada necessária", "Cão no local", "Telhado com difícil acesso", "Portão estreito",
           "Ligar antes de ir", "Chave com o vizinho"]


@dataclass(frozen=True)
class Edit:
    rodada: int
    projeto: int
    tipo: str  # movimento | ciclo | endereco | contato | proposta | campos
    detalhe: str


def money_text(value: float, rng: random.Random) -> str:
    integer, cents = f"{value:,.2f}".split(".")
    text = f"{integer.replace(',', '.')},{cents}"
    return rng.choice([text, f"R$ {text}"])


class Editor:
    """Applies the edits of each round to the sandbox and keeps what it did."""

    def __init__(self, sandbox, seed: int) -> None:
        self.sb = sandbox
        self.rng = random.Random(f"fidelidade:{seed}")
        self.edits: list[Edit] = []
        self.cycle: list[int] = []
        self.observed: dict[int, list[int | None]] = {}  # card column at each run, round 0 first
        self.snapshots: list[list[dict]] = []  # what iSales held at each run (sandbox.projects())
        self.rounds = 0

    def observe(self) -> None:
        """Record the column of every card as the next run of step 01 will see it."""
        projects = self.sb.projects()
        self.snapshots.append(projects)
        for project in projects:
            card = project["card"]
            column = card["coluna_id"] if card.get("funil_id") is not None else None
            self.observed.setdefault(card["cliente_id"], [None] * self.rounds).append(column)
        self.rounds += 1

    def _sample(self, pool: list[dict], share: float) -> list[dict]:
        if not pool:
            return []
        return self.rng.sample(pool, min(len(pool), max(1, round(share * len(pool)))))

    def apply_round(self, rodada: int) -> Counter[str]:
        """The edits of round `rodada` (1, 2, …); counts per kind."""
        projects = self.sb.projects()
        if rodada == 1:
            installing = [p for p in projects if p["card"]["coluna_id"] == COL_INSTALACAO]
            self.cycle = [p["card"]["cliente_id"] for p in self._sample(installing, CYCLE_SHARE)]
        target = CYCLE[(rodada - 1) % len(CYCLE)]
        for cliente_id in self.cycle:
            self._move(rodada, cliente_id, target, "ciclo")
        others = [p for p in projects if p["card"]["cliente_id"] not in self.cycle]
        for project in self._sample(others, SHARES["movimento"]):
            current = project["card"]["coluna_id"]
            self._move(rodada, project["card"]["cliente_id"],
                       self.rng.choice([c for c in ALL_COLUMNS if c != current]), "movimento")
        for kind, edit in (("endereco", self._address), ("contato", self._contact),
                           ("proposta", self._proposal), ("campos", self._campos)):
            for project in self._sample(projects, SHARES[kind]):
                edit(rodada, project)
        return Counter(e.tipo for e in self.edits if e.rodada == rodada)

    def _record(self, rodada: int, cliente_id: int, tipo: str, detalhe: str) -> None:
        self.edits.append(Edit(rodada, cliente_id, tipo, detalhe))

    def _move(self, rodada: int, cliente_id: int, coluna: int, tipo: str) -> None:
        self.sb.move_card(cliente_id, coluna)
        self._record(rodada, cliente_id, tipo, f"coluna {coluna}")

    def _address(self, rodada: int, project: dict) -> None:
        """The client moved: a new address in another city, with the map link of the new place."""
        rng = self.rng
        city = rng.choice(CITIES)
        street, number = rng.choice(STREETS), str(rng.randint(1, 4999))
        lat, lng = address_point(city, street, number)
        link = f"https://www.google.com/maps/search/?api=1&query={lat:.7f},{lng:.7f}"
        cep = format_cep(str(rng.randint(city.cep_lo, city.cep_hi)).zfill(8))
        fields = {"cep": cep, "logradouro": street, "numero": number,
                  "complemento": rng.choice([None, "casa 3", "apto 51", "fundos"]),
                  "bairro": rng.choice([b for b in BAIRROS if b]), "cidade": city.name, "estado": city.uf,
                  "link_localizacao": link}
        cliente_id = project["card"]["cliente_id"]
        self.sb.edit_cliente(cliente_id, **fields)
        self._record(rodada, cliente_id, "endereco", f"{street}, {number} — {city.name}/{city.uf}")

    def _phone(self, ddd: str, mobile: bool = True) -> str:
        rng = self.rng
        if mobile:
            return f"({ddd}) 9{rng.randint(6000, 9999)}-{rng.randint(1000, 9999)}"
        return f"({ddd}) {rng.randint(2, 5)}{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"

    def _contact(self, rodada: int, project: dict) -> None:
        """A new mobile phone, and sometimes a new e-mail and a new landline."""
        rng = self.rng
        cliente = project["cliente"]
        digits = "".join(c for c in str(cliente.get("telefone") or "") if c.isdigit())[-11:]
        ddd = digits[:2] if len(digits) >= 10 and digits[:2] in DDDS else "11"
        fields: dict[str, Any] = {"telefone": self._phone(ddd)}
        if rng.random() < 0.5:
            fields["email"] = f"contato.{project['card']['cliente_id']}.r{rodada}@exemplo.com.br"
        if rng.random() < 0.3:
            fields["telefone_secundario"] = self._phone(ddd, mobile=False)
        self.sb.edit_cliente(project["card"]["cliente_id"], **fields)
        self._record(rodada, project["card"]["cliente_id"], "contato", ", ".join(sorted(fields)))

    def _proposal(self, rodada: int, project: dict) -> None:
        rng = self.rng
        modules = rng.randint(6, 120)
        inverters = rng.sample(INVERTERS, rng.choice([1, 2, 3])) + [None, None]
        value = round(modules * 0.55 * rng.uniform(3200, 4800), 2)
        proposta: dict[str, Any] = {"mod_descricao": f"{modules}x {rng.choice(MODULES)}", "inv_descricao": inverters[0],
                    "inv2_descricao": inverters[1], "inv3_descricao": inverters[2],
                    "valor_final": money_text(value, rng)}
        self.sb.edit_proposta(project["card"]["cliente_id"], proposta)
        self._record(rodada, project["card"]["cliente_id"], "proposta", proposta["valor_final"])

    def _campos(self, rodada: int, project: dict) -> None:
        rng = self.rng
        forma = rng.choice(FORMAS)
        nome = (project["cliente"] or {}).get("nome") or "Cliente"
        mapping = {LABEL_FORMA: forma, LABEL_SEGURO: money_text(rng.randint(300, 2500), rng),
                   LABEL_OBS: rng.choice(["Telhado de fibrocimento, acesso pelos fundos", "Instalar em solo",
                                          "Cliente prefere visita pela manhã"]),
                   LABEL_DETALHES: rng.choice(["Entrada de 20% + 48x", "Pagamento na entrega"]),
                   LABEL_ACESSO: rng.sample(ACESSOS, rng.randint(1, 3))}
        if forma == "FINANCIAMENTO":
            mapping[LABEL_FINANCIAMENTO] = nome
        self.sb.edit_campos(project["card"]["cliente_id"], mapping)
        self._record(rodada, project["card"]["cliente_id"], "campos", forma)
