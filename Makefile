# Numa máquina nova (só Python 3.10+ e make): `make demo`, `make sandbox` e `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALADO := $(VENV)/.instalado
PYTEST_ARGS ?= -q -n 2 --dist loadfile

.PHONY: install test demo sandbox bench fidelidade lint clean

$(INSTALADO): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "é preciso Python 3.10 ou mais novo")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(INSTALADO)

test: $(INSTALADO)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(INSTALADO)
	$(PY) scripts/demo.py

# o sandbox da demonstração (com o estado dela, se existir) até Ctrl-C, e o .env para rodar os passos à mão
sandbox: $(INSTALADO)
	$(PY) scripts/demo.py --sandbox

bench: $(INSTALADO)
	$(PY) -m bench $(ARGS)

fidelidade: $(INSTALADO)
	$(PY) bench/fidelity.py $(ARGS)

lint: $(INSTALADO)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
