"""The whole remote-side state (iSales projects, short links, FieldControl store), its generation
from the seed, its edits, and its optional JSON persistence (atomic temp file + rename).
"""

from __future__ import annotations

import copy
import json
import os
import random
import tempfile
import threading
from datetime import date
from pathlib import Path
from typing import Any

from . import links
from .data import FUNNEL_ID, generate_projects
from .fcstore import FCStore, seed_manual_customers

STATE_VERSION = 1
CLIENT_FIELDS = ("nome", "cpf", "email", "telefone", "telefone_secundario", "cep", "logradouro",
                 "numero", "complemento", "bairro", "cidade", "estado", "link_localizacao",
                 "data_fechamento")
PROJECT_KEYS = ("coluna_id", "vendedor", "data_card", "proposta", "campos")


class StateError(Exception):
    """An invalid request to change the state (unknown client, bad argument); message in pt-BR."""


class State:
    def __init__(self, seed: int, projetos: int, hoje: date, path: str | os.PathLike | None = None) -> None:
        self.lock = threading.RLock()
        self.seed, self.projetos, self.hoje = seed, projetos, hoje
        self.path = Path(path) if path else None
        self.loaded_from_file = False
        if self.path and self.path.exists():
            self._load()
            self.loaded_from_file = True
        else:
            self.regenerate()

    # -- generation and persistence ------------------------------------------------------------
    def regenerate(self) -> None:
        with self.lock:
            rng = random.Random(f"isales:{self.seed}")
            self.funnel_id = FUNNEL_ID
            self.shortlinks: dict[str, dict] = links.fixed_shortlinks()
            generated = generate_projects(rng, self.projetos, self.hoje, self.shortlinks)
            self.projects: dict[int, dict] = {p["cliente_id"]: p for p in generated}
            self.added = 0
            self.fc = FCStore(self.seed)
            seed_manual_customers(self.fc, random.Random(f"fc:{self.seed}"), generated, self.hoje)
            self.save()

    def dump(self) -> dict:
        with self.lock:
            return {"versao": STATE_VERSION, "seed": self.seed, "projetos": self.projetos,
                    "hoje": self.hoje.isoformat(), "funil_id": self.funnel_id, "added": self.added,
                    "projects": list(self.projects.values()), "shortlinks": self.shortlinks,
                    "fieldcontrol": self.fc.dump()}

    def save(self) -> None:
        if not self.path:
            return
        with self.lock:
            text = json.dumps(self.dump(), ensure_ascii=False, indent=1)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".estado-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def _load(self) -> None:
        assert self.path is not None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("versao") != STATE_VERSION:
                raise StateError(f"versão de estado não suportada: {raw.get('versao')!r}")
            self.seed, self.projetos = raw["seed"], raw["projetos"]
            self.hoje = date.fromisoformat(raw["hoje"])
            self.funnel_id, self.added = raw["funil_id"], raw["added"]
            self.projects = {p["cliente_id"]: p for p in raw["projects"]}
            self.shortlinks = raw["shortlinks"]
            self.fc = FCStore.load(self.seed, raw["fieldcontrol"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"arquivo de estado inválido ({self.path}): {exc}") from exc

    # -- iSales reads --------------------------------------------------------------------------
    def cards(self, desde: date | None, ate: date | None) -> list[dict]:
        with self.lock:
            result = []
            for cid in sorted(self.projects):
                p = self.projects[cid]
                if p.get("funil_id", self.funnel_id) != self.funnel_id:
                    continue
                day = date.fromisoformat(p["data_card"])
                if (desde and day < desde) or (ate and day > ate):
                    continue
                result.append({"id": p["card_id"], "cliente_id": cid, "coluna_id": p["coluna_id"],
                               "cliente": {"nome": p["cliente"].get("nome"), "vendedor": p["vendedor"]}})
            return result

    def project(self, cliente_id: Any) -> dict | None:
        try:
            key = int(str(cliente_id).strip())
        except ValueError:
            return None
        with self.lock:
            project = self.projects.get(key)
            return copy.deepcopy(project) if project else None

    def all_projects(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy([self.projects[k] for k in sorted(self.projects)])

    # -- iSales edits --------------------------------------------------------------------------
    def _project(self, cliente_id: Any) -> dict:
        try:
            return self.projects[int(cliente_id)]
        except (KeyError, ValueError, TypeError):
            raise StateError(f"cliente_id desconhecido: {cliente_id!r}") from None

    def move_card(self, cliente_id: int, coluna_id: int) -> dict:
        with self.lock:
            project = self._project(cliente_id)
            project["coluna_id"] = int(coluna_id)
            project.pop("funil_id", None)
            self.save()
            return copy.deepcopy(project)

    def remove_card(self, cliente_id: int) -> None:
        with self.lock:
            self._project(cliente_id)["funil_id"] = None
            self.save()

    def edit_cliente(self, cliente_id: int, fields: dict) -> dict:
        with self.lock:
            project = self._project(cliente_id)
            project["cliente"].update(fields)
            self.save()
            return copy.deepcopy(project["cliente"])

    def edit_proposta(self, cliente_id: int, value: Any) -> None:
        with self.lock:
            self._project(cliente_id)["proposta"] = copy.deepcopy(value)
            self.save()

    def edit_campos(self, cliente_id: int, mapping: dict, replace: bool, remove: list[str]) -> dict:
        with self.lock:
            project = self._project(cliente_id)
            campos = {} if replace else dict(project["campos"])
            campos.update(mapping)
            for label in remove:
                campos.pop(label, None)
            project["campos"] = campos
            self.save()
            return copy.deepcopy(campos)

    def add_projects(self, n: int, overrides: dict) -> list[int]:
        bad = {"cliente_id", "card_id"} & set(overrides)
        if bad:
            raise StateError(f"não é possível escolher {sorted(bad)} em add_projects")
        if int(n) < 0:
            raise StateError("n deve ser >= 0")
        overrides = dict(overrides)
        overrides.setdefault("data_card", max(self.hoje, date.today()).isoformat())
        with self.lock:
            self.added += 1
            rng = random.Random(f"isales:{self.seed}:add:{self.added}")
            last = max(self.projects, default=4700)
            new = generate_projects(rng, int(n), self.hoje, self.shortlinks, last_id=last,
                                    first_index=len(self.projects) + 1, **overrides)
            for project in new:
                self.projects[project["cliente_id"]] = project
            self.save()
            return [p["cliente_id"] for p in new]
