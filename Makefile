# The two commands of the README are `make demo` and `make test`; both bootstrap .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ogae-installed

.PHONY: venv demo test bench lab clean-venv

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ogae data fetch
	$(VENV)/bin/ogae demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

lab: $(STAMP)
	$(PY) -m ipykernel install --user --name ogae --display-name "OgAE (.venv)"
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
