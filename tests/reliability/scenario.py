"""A history worth crashing in: a first full sync, then iSales changes that give step 04 every kind
of work (cancellations and expansions of sent projects, an address and a contact edited, new
projects, a second project of a known client, a card moved out of the funnel's columns)."""

from __future__ import annotations

import random

from tests.reliability.harness import Runner
from tests.reliability.invariants import Local

COLUNA = {"instalacao": 17840, "aumento": 20024, "cancelado": 20363, "outro": 16001}


def first_sync(runner: Runner) -> None:
    for step in ("00", "01", "02", "03", "04"):
        runner.run_here(step)


def change_isales(sb, local: Local, rng: random.Random, projetos: int) -> list[str]:
    """Changes made by the sales team after a first sync; what was done, in pt-BR, for messages."""
    sent = sorted((row for row in local.os if row["field_id"] and row["status"] == "instalacao"),
                  key=lambda row: int(row["isales_id"]))
    rng.shuffle(sent)
    ids = [int(row["isales_id"]) for row in sent]
    assert len(ids) >= 5, f"a primeira sincronização enviou poucas OS de instalação ({len(ids)})"
    share = max(1, len(ids) // 6)
    cancel, expand = ids[:share], ids[share:2 * share]
    address, contact, outside = ids[2 * share], ids[2 * share + 1], ids[2 * share + 2]
    done = []
    for cliente_id in cancel:
        sb.move_card(cliente_id, COLUNA["cancelado"])
    for cliente_id in expand:
        sb.move_card(cliente_id, COLUNA["aumento"])
    done.append(f"cancelados depois do envio: {cancel}; aumento de sistema: {expand}")
    sb.edit_cliente(address, logradouro="Rua Nova Esperança", numero=str(rng.randint(1, 999)),
                    complemento=None)
    sb.edit_cliente(contact, telefone=f"(11) 98{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    email=f"contato.novo.{contact}@example.com")
    sb.move_card(outside, COLUNA["outro"])
    done.append(f"endereço editado: {address}; contato editado: {contact}; fora das colunas: {outside}")
    new = sb.add_projects(max(2, projetos // 8), coluna_id=COLUNA["instalacao"])
    new += sb.add_projects(1, coluna_id=COLUNA["aumento"])
    known = next(p["cliente"] for p in sb.projects() if p["card"]["cliente_id"] == ids[-1])
    new += sb.add_projects(1, coluna_id=COLUNA["instalacao"], cpf=known["cpf"], nome=known["nome"])
    done.append(f"projetos novos: {new} (o último é do mesmo cliente do projeto {ids[-1]})")
    return done


def second_round(runner: Runner, *, stop_before: str) -> None:
    """01 (complete: edits without a move are seen) → … up to, not including, `stop_before`."""
    for step in ("01", "02", "03", "04"):
        if step == stop_before:
            return
        runner.run_here(step, *(("--completo",) if step == "01" else ()))
