"""Deterministic generator of realistic (and realistically messy) iSales projects from a seed.

A project is one funnel card with its client, proposal and custom fields, plus a hidden card date.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from . import documents as docs
from . import links
from .places import CITIES, STATES, City, address_point, ascii_fold, format_cep

FUNNEL_ID = 9001
COL_INSTALACAO, COL_AUMENTO, COL_CANCELADO = 17840, 20024, 20363
COLUMNS_OF_INTEREST = (COL_INSTALACAO, COL_AUMENTO, COL_CANCELADO)
OTHER_COLUMNS = (16001, 16002, 18050)
FIRST_CLIENT_ID = 4700
WINDOW_DAYS = 300

LABEL_SEGURO = "VALOR DO SEGURO"
LABEL_FORMA = "FORMA DE PAGAMENTO"
LABEL_FORMA_OLD = "Forma de Pagamento"
LABEL_FINANCIAMENTO = "FINANCIAMENTO NO NOME DE (somente se a FORMA DE PAGMENTO for FINANCIAMENTO)"
LABEL_DETALHES = "DETALHAMENTO DO PAGAMENTO"
LABEL_OBS = "OBSERVAÇÕES"
LABEL_ACESSO = "ACESSO AO LOCAL (marcar todas as opções aplicáveis)"

FIRST_NAMES = [
    "Maria", "José", "João", "Ana", "Antônio", "Francisca", "Luís", "Adriana", "Márcia", "Paulo",
    "Conceição", "Sebastião", "Fátima", "Cícero", "Luzia", "Raimundo", "Sônia", "Gonçalo", "Irene",
    "Ângela", "Vinícius", "Letícia", "Cauã", "Iúri", "Joaquim", "Beatriz", "Célia", "Otávio",
]
SURNAMES = [
    "da Silva", "dos Santos", "Oliveira", "Souza", "Pereira", "Ferreira", "Lima", "Gonçalves",
    "Araújo", "Conceição", "Simões", "Assunção", "Brandão", "de Moraes", "Falcão", "Magalhães",
    "Nascimento", "Ávila", "Guimarães", "Ribeiro", "Carvalho", "Melo", "Barros", "Ribas",
]
COMPANIES = [
    "Solar Agro Ltda", "Padaria Pão de Açúcar ME", "Mercadinho São José EIRELI",
    "Fazenda Boa Esperança", "Oficina Mecânica Irmãos Araújo Ltda", "Condomínio Residencial Ipê",
    "Cerâmica Vale do Sol Ltda", "Igreja Batista Central", "Posto Estrela do Norte",
    "Laticínios Serra Azul S.A.", "Clínica Odontológica Sorriso", "Auto Peças Guaporé",
]
VENDEDORES = ["João Souza", "Ana Lima", "Carlos Eduardo Brandão", "Patrícia Gonçalves", "Renan Ávila"]
STREETS = [
    "Rua das Flores", "Avenida Brasil", "Rua XV de Novembro", "Avenida Getúlio Vargas",
    "Rua Sete de Setembro", "Rua Dom Pedro II", "Travessa São José", "Alameda dos Ipês",
    "Rua Barão do Rio Branco", "Avenida Presidente Kennedy", "Rua Tiradentes", "Rua Ceará",
    "Avenida Marechal Deodoro", "Rua Professora Conceição Araújo", "Estrada Municipal do Açude",
    "Rodovia BR-116, km 45", "Rua João Pessoa", "Avenida Beira-Mar", "Rua Santa Luzia",
]
BAIRROS = ["Centro", "Jardim América", "Vila Nova", "Zona Rural", "Boa Vista", "São Cristóvão",
           "Jardim Paulista", "Santa Mônica", "Industrial", ""]
MODULES = ["Módulo 550W Monocristalino", "Módulo 585W Bifacial", "Módulo 610W N-Type TOPCon",
           "Módulo 455W Half-Cell"]
INVERTERS = ["Inversor 3kW", "Inversor 5kW", "Inversor 8kW Híbrido", "Inversor 10kW Trifásico",
             "Inversor 25kW", "Microinversor 2,25kW"]
FORMAS = ["FINANCIAMENTO", "À VISTA", "CARTÃO DE CRÉDITO", "BOLETO PARCELADO", "PIX"]
ACESSOS = ["Escada necessária", "Cão no local", "Telhado com difícil acesso", "Portão estreito",
           "Ligar antes de ir"]


def long_name(rng: random.Random, over: int) -> str:
    words = [rng.choice(FIRST_NAMES), rng.choice(FIRST_NAMES)]
    while len(" ".join(words)) <= over:
        words.append(rng.choice(SURNAMES))
    return " ".join(words)


def very_long_company(rng: random.Random) -> str:
    name = ("COOPERATIVA AGROINDUSTRIAL DOS PEQUENOS PRODUTORES RURAIS E AGRICULTORES FAMILIARES "
            "DA REGIÃO DO VALE DO RIO VERDE E MUNICÍPIOS CIRCUNVIZINHOS PARA O DESENVOLVIMENTO "
            "SUSTENTÁVEL, A GERAÇÃO DE ENERGIA SOLAR FOTOVOLTAICA E A ASSISTÊNCIA TÉCNICA - ")
    return name + rng.choice(["COOPERVALE", "COOPERSOL", "AGROSOLAR"]) + " LTDA"


def person_name(rng: random.Random) -> str:
    if rng.random() < 0.09:
        return long_name(rng, 50)
    parts = [rng.choice(FIRST_NAMES)] + rng.sample(SURNAMES, rng.choice([1, 2, 2, 3]))
    name = " ".join(parts)
    return name.upper() if rng.random() < 0.07 else name


def state_variant(rng: random.Random, uf: str) -> str:
    full = STATES[uf]
    roll = rng.random()
    if roll < 0.5:
        return uf
    if roll < 0.7:
        return full
    if roll < 0.8:
        return full.lower()
    if roll < 0.88:
        return full.upper()
    if roll < 0.95:
        return ascii_fold(full)
    return uf.lower()


class Generator:
    """Builds projects; `specials` assigns the rare cases to the first projects of a run."""

    def __init__(self, rng: random.Random, hoje: date, shortlinks: dict) -> None:
        self.rng = rng
        self.hoje = hoje
        self.shortlinks = shortlinks
        self.people: list[dict] = []
        self.link_queue = rng.sample(links.ALL_FORMATS, len(links.ALL_FORMATS))
        self.city_weights = [c.weight for c in CITIES]

    def person(self, index: int) -> dict:
        rng = self.rng
        if index in (3, 120):  # one or two names longer than 255 characters
            return {"nome": very_long_company(rng), "cpf": docs.mask_cnpj(docs.make_cnpj(rng)),
                    "kind": "cnpj"}
        roll = rng.random()
        if roll < 0.72:
            doc = docs.make_cpf(rng, valid=rng.random() > 0.08)
            return {"nome": person_name(rng), "cpf": docs.document_variant(rng, doc), "kind": "cpf"}
        if roll < 0.95:
            doc = docs.make_cnpj(rng, valid=rng.random() > 0.08)
            return {"nome": rng.choice(COMPANIES), "cpf": docs.document_variant(rng, doc), "kind": "cnpj"}
        if roll < 0.98:
            doc = docs.make_cnpj(rng, alphanumeric=True)
            return {"nome": rng.choice(COMPANIES), "cpf": docs.mask_cnpj(doc), "kind": "cnpj"}
        return {"nome": person_name(rng), "cpf": rng.choice(["", None, "123.456.789"]), "kind": "none"}

    def address(self, city: City) -> dict:
        rng = self.rng
        cep = str(rng.randint(city.cep_lo, city.cep_hi)).zfill(8)
        roll = rng.random()
        cep_text: str | None = format_cep(cep) if roll < 0.6 else cep if roll < 0.9 else None
        if cep_text is None:
            cep_text = rng.choice(["", None, "00000-000", cep[:5]])
        cidade = city.name
        if rng.random() < 0.08:
            cidade = rng.choice([cidade.upper(), ascii_fold(cidade), cidade.lower()])
        street = rng.choice(STREETS)
        numero = rng.choice([str(rng.randint(1, 3999))] * 6 + ["s/n", "S/N", f"{rng.randint(1, 999)}A", ""])
        return {
            "cep": cep_text, "logradouro": street, "numero": numero,
            "complemento": rng.choice([None, "", "", "ap 12", "casa 2", "fundos", "bloco B apto 304"]),
            "bairro": rng.choice(BAIRROS), "cidade": cidade, "estado": state_variant(rng, city.uf),
            "_city": city,
        }

    def link(self, fmt: str | None, lat: float, lng: float, label: str) -> str | None:
        if fmt is None:
            fmt = self.link_queue.pop() if self.link_queue else self.rng.choices(
                list(links.WEIGHTS), weights=list(links.WEIGHTS.values()))[0]
        return links.build(fmt, self.rng, lat, lng, label, self.shortlinks)

    def project(self, index: int, cliente_id: int, card_id: int, **overrides: Any) -> dict:
        rng = self.rng
        if self.people and index > 4 and rng.random() < 0.06:
            person = rng.choice(self.people)
            addr = person["address"] if rng.random() < 0.5 else self.address(person["address"]["_city"])
        else:
            person = self.person(index)
            city = rng.choices(CITIES, weights=self.city_weights)[0]
            person["address"] = addr = self.address(city)
            person["email"] = docs.make_email(rng, person["nome"])
            person["telefone"] = docs.make_phone(rng, city.ddd) if rng.random() > 0.06 else docs.junk_phone(rng)
            self.people.append(person)
        city = addr["_city"]
        lat, lng = address_point(city, addr["logradouro"], addr["numero"])
        street = ", ".join(p for p in (addr["logradouro"], addr["numero"]) if p)
        label = " - ".join(p for p in (street, addr["bairro"]) if p) + f", {city.name} - {city.uf}"
        data_card = self.hoje - timedelta(days=rng.randint(0, WINDOW_DAYS))
        cliente = {
            "nome": person["nome"], "cpf": person["cpf"], "email": person["email"],
            "telefone": person["telefone"], "telefone_secundario": self.secondary_phone(city),
            **{k: v for k, v in addr.items() if not k.startswith("_")},
            "link_localizacao": self.link(overrides.pop("link_format", None), lat, lng, label),
            "data_fechamento": self.closing_date(data_card),
        }
        roll = rng.random()
        coluna = (COL_INSTALACAO if roll < 0.6 else COL_AUMENTO if roll < 0.75
                  else COL_CANCELADO if roll < 0.85 else rng.choice(OTHER_COLUMNS))
        project = {
            "cliente_id": cliente_id, "card_id": card_id, "coluna_id": coluna,
            "vendedor": rng.choice(VENDEDORES), "data_card": data_card.isoformat(),
            "cliente": cliente, "proposta": self.proposal(), "campos": self.custom_fields(person["nome"]),
        }
        for key, value in overrides.items():
            if key in project:
                project[key] = value
            else:
                cliente[key] = value
        return project

    def secondary_phone(self, city: City) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            return rng.choice(["", None])
        if roll < 0.9:
            return docs.make_phone(rng, city.ddd, mobile=rng.random() < 0.5)
        return docs.junk_phone(rng)

    def closing_date(self, card_date: date) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:
            return None
        if roll < 0.45:
            return card_date.isoformat()
        return f"{card_date.isoformat()} {rng.randint(7, 19):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"

    def proposal(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12:
            return rng.choice([{}, None, []])
        modules = rng.randint(6, 120)
        kw = modules * 0.55
        value = round(kw * rng.uniform(3200, 4800), 2)
        integer, cents = f"{value:,.2f}".split(".")
        text = f"{integer.replace(',', '.')},{cents}"
        valor: Any = rng.choice([text, text, text, value, int(value), f"R$ {integer.replace(',', '.')}",
                                 f"R$ {text}", None])
        inverters: list[str | None] = [*rng.sample(INVERTERS, rng.choice([1, 1, 1, 2, 3]))]
        inverters += [rng.choice([None, ""]) for _ in range(3 - len(inverters))]
        return {"mod_descricao": f"{modules}x {rng.choice(MODULES)}", "inv_descricao": inverters[0],
                "inv2_descricao": inverters[1], "inv3_descricao": inverters[2], "valor_final": valor}

    def custom_fields(self, nome: str) -> dict:
        rng = self.rng
        if rng.random() < 0.06:
            return {}
        forma = rng.choice(FORMAS)
        fields: dict[str, Any] = {
            LABEL_SEGURO: rng.choice([f"R$ {rng.randint(300, 2500)},00", "", None, "não contratou"]),
            (LABEL_FORMA_OLD if rng.random() < 0.2 else LABEL_FORMA): forma,
            LABEL_FINANCIAMENTO: nome if forma == "FINANCIAMENTO" else rng.choice(["", None]),
            LABEL_DETALHES: rng.choice(["Entrada de 10% + 60x", "À vista com 5% de desconto", "", None]),
            LABEL_OBS: rng.choice(["Telhado cerâmico, acesso pela lateral", "Telhado metálico",
                                   "Cliente pede para ligar antes", "", None]),
            LABEL_ACESSO: rng.choice([rng.sample(ACESSOS, rng.randint(0, 3)), None]),
        }
        for label in list(fields):
            if rng.random() < 0.07:
                del fields[label]
        return fields


def next_ids(rng: random.Random, last_id: int, n: int) -> list[int]:
    ids, current = [], last_id
    for _ in range(n):
        current += rng.choice([1, 1, 1, 1, 2, 3, 7])
        ids.append(current)
    return ids


def generate_projects(rng: random.Random, n: int, hoje: date, shortlinks: dict,
                      last_id: int = FIRST_CLIENT_ID, first_index: int = 0,
                      **overrides: Any) -> list[dict]:
    """`n` projects with ids after `last_id`; the short links they use are added to `shortlinks`."""
    gen = Generator(rng, hoje, shortlinks)
    if first_index:
        gen.link_queue = []  # projects added later follow the usual mix
    projects = []
    for offset, cliente_id in enumerate(next_ids(rng, last_id, n)):
        index = first_index + offset
        projects.append(gen.project(index, cliente_id, 310000 + cliente_id * 2, **dict(overrides)))
    return projects
