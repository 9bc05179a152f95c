"""What a reconciliation finds: differences (expected none), intended differences (documented rules,
not counted), pending projects (bad data in iSales, listed apart) and the number of comparisons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def shown(value: Any, size: int = 120) -> str:
    text = "∅" if value is None else repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= size else text[:size - 1] + "…"


@dataclass
class Findings:
    differences: list[dict[str, Any]] = field(default_factory=list)
    intended: Counter[str] = field(default_factory=Counter)
    intended_examples: dict[str, str] = field(default_factory=dict)
    compared: Counter[str] = field(default_factory=Counter)  # comparisons made, per area

    def diff(self, area: str, record: str, what: str, expected: Any, found: Any) -> None:
        self.differences.append({"area": area, "registro": record, "campo": what,
                                 "esperado": shown(expected), "encontrado": shown(found)})

    def check(self, area: str, record: str, what: str, expected: Any, found: Any) -> bool:
        """Count one comparison; a difference when the values differ."""
        self.compared[area] += 1
        if expected != found:
            self.diff(area, record, what, expected, found)
            return False
        return True

    def rule(self, name: str, example: str) -> None:
        """An intended difference under a documented rule (counted apart, one example kept)."""
        self.intended[name] += 1
        self.intended_examples.setdefault(name, example)

    def as_dict(self) -> dict[str, Any]:
        return {"diferencas": len(self.differences), "comparacoes": dict(self.compared),
                "lista_diferencas": self.differences,
                "intencionais": [{"regra": name, "casos": n, "exemplo": self.intended_examples[name]}
                                 for name, n in sorted(self.intended.items())]}
