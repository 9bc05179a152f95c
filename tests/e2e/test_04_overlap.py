"""Steps that overlap: 03 edits a project's address while a slow 04 is sending its location
(Rua Antiga 10 → Rua Nova 99). 04 never binds the location it sent for the old address to the
edited row: the new address gets its own location (this run or the next), and the ticket goes to it.
"""

from __future__ import annotations

import time

from lib.fieldcontrol import fold
from tests.reliability.harness import Runner, fast_sandbox, step_env
from tests.reliability.invariants import Local, Remote, exactly_once, matches_remote
from tests.reliability.scenario import COLUNA, first_sync


def wait_for(condition, what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"esperando {what}"
        time.sleep(0.01)


def test_address_edited_by_03_during_a_slow_04_is_never_mis_bound(db_url, tmp_path):
    with fast_sandbox(projetos=12, seed=53) as sb:
        runner = Runner(step_env(sb, tmp_path, db_url, HTTP_TIMEOUT_LEITURA="60"), tmp_path)
        first_sync(runner)
        local = Local.read(db_url)
        known = next(row for row in local.os if row["field_id"] and row["status"] == "instalacao")
        person = next(p["cliente"] for p in sb.projects() if str(p["card"]["cliente_id"]) == known["isales_id"])
        # a second project of a known client, at another address: it needs a location of its own
        [new] = sb.add_projects(1, coluna_id=COLUNA["instalacao"], cpf=person["cpf"], nome=person["nome"],
                                logradouro="Rua Antiga", numero="10", complemento=None, link_format="q")
        for step in ("01", "02", "03"):
            runner.run_here(step)
        [os_row] = [row for row in Local.read(db_url).os if row["isales_id"] == str(new)]
        endereco_id = os_row["endereco_id"]
        sb.edit_cliente(new, logradouro="Rua Nova", numero="99")  # the sales team fixes the address
        runner.run_here("01", "--completo")
        runner.run_here("02")  # data/02 now says Rua Nova 99; 03 has not run yet
        before = Remote.of(sb)

        gate = sb.add_fault(system="fieldcontrol", route="POST /customers/{id}/locations", kind="hold", times=1)
        slow = runner.spawn("04", tag="lento")
        wait_for(lambda: sb.held() or slow.poll() is not None, "o 04 enviar o local de Rua Antiga 10")
        assert slow.poll() is None, slow.stderr_path.read_text(encoding="utf-8")
        runner.run_here("03")  # meanwhile, the cron runs 03: the row becomes Rua Nova 99
        sb.release_fault(gate)
        assert slow.wait(timeout=300) in (0, 3, 75), slow.stderr_path.read_text(encoding="utf-8")

        after, local = Remote.of(sb), Local.read(db_url)
        [row] = [e for e in local.endereco if e["id"] == endereco_id]
        assert (fold(row["logradouro"]), row["numero"]) == ("rua nova", "99")
        problems = matches_remote(after, local)  # the old address's location bound to the row would show here
        assert not problems, "\n".join(problems)

        runner.settle("04")  # the next run creates the new address's location and sends the ticket
        after, local = Remote.of(sb), Local.read(db_url)
        problems = exactly_once(before, after, local) + matches_remote(after, local)
        assert not problems, "\n".join(problems)
        [row] = [e for e in local.endereco if e["id"] == endereco_id]
        location = next(loc for loc in after.locations if loc["id"] == row["location_field_id"])
        assert (fold(location["address"]["street"]), location["address"]["number"]) == ("rua nova", "99")
        [ticket] = [tk for tk in after.tickets if ((tk.get("external") or {}).get("id") or "").startswith(f"isales:{new}:")]
        assert ticket["location"]["id"] == location["id"], ticket
