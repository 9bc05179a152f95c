"""Options of the reliability suites (CI runs them small; larger by hand) and their fixtures.

  pytest tests/reliability --trials 50 --projetos 200 --semente 1234
The same through the environment (for `make test`): RELIABILITY_TRIALS, RELIABILITY_PROJETOS,
RELIABILITY_SEED.
"""

from __future__ import annotations

import os
import random
import time

import pytest

DEFAULT_TRIALS = 3  # per crash-trial test and backend: 04 and 03 × SQLite and MariaDB = 12 in CI
DEFAULT_PROJETOS = 24


def pytest_addoption(parser):
    group = parser.getgroup("confiabilidade", "suítes de confiabilidade (tests/reliability)")
    group.addoption("--trials", type=int, default=None,
                    help=f"tentativas de kill -9 por teste de queda (padrão {DEFAULT_TRIALS}; ou RELIABILITY_TRIALS)")
    group.addoption("--projetos", type=int, default=None,
                    help=f"projetos gerados no sandbox (padrão {DEFAULT_PROJETOS}; ou RELIABILITY_PROJETOS)")
    group.addoption("--semente", type=int, default=None,
                    help="semente dos sorteios (padrão: aleatória, impressa; ou RELIABILITY_SEED)")


def _option(config, name: str, variable: str) -> int | None:
    value = config.getoption(name, default=None)
    if value is None and os.environ.get(variable, "").strip():
        value = int(os.environ[variable])
    return value


@pytest.fixture(scope="session")
def trials(pytestconfig) -> int:
    value = _option(pytestconfig, "trials", "RELIABILITY_TRIALS")
    return max(1, value if value is not None else DEFAULT_TRIALS)


@pytest.fixture(scope="session")
def projetos(pytestconfig) -> int:
    value = _option(pytestconfig, "projetos", "RELIABILITY_PROJETOS")
    return max(8, value if value is not None else DEFAULT_PROJETOS)


@pytest.fixture(scope="session")
def seed(pytestconfig) -> int:
    """The seed of every draw of the session, printed (and named in every assertion message) so
    that a failure can be reproduced with --semente."""
    value = _option(pytestconfig, "semente", "RELIABILITY_SEED")
    if value is None:
        value = time.time_ns() % 1_000_000
    print(f"\nconfiabilidade: semente {value} (reproduza com --semente {value})")
    return value


@pytest.fixture
def rng(seed) -> random.Random:
    return random.Random(seed)


@pytest.fixture
def databases(db_url, tmp_path):
    """Cloned/empty databases of the backend of `db_url` (SQLite or MariaDB), dropped at the end."""
    from tests.reliability.harness import Databases, backend

    made = Databases(backend(db_url), tmp_path)
    yield made
    made.close()
