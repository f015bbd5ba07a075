# The two commands of the README are `make demo` and `make test`; both bootstrap .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ogae-installed
PORT   ?= 8501
# see ogae_core/__init__.py: spinning OpenMP waits slow small torch ops 10-15x on shared cores
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv demo demo-ocsvm test bench report lab dashboard clean-venv

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# The main job: real MNIST -> the exact OCSVM layer checked against libsvm -> the `quick`
# preset for 3 vs 8 through notebook 01 -> report in reports/ -> the dashboard.
demo: $(STAMP)
	$(VENV)/bin/ogae data fetch
	$(VENV)/bin/ogae demo
	$(VENV)/bin/ogae notebooks --only 01 --out reports -p preset=quick -p normal=3 -p anomaly=8
	$(VENV)/bin/ogae report --experiment mnistc-3v8-quick --format html --out reports
	@$(MAKE) --no-print-directory dashboard

# Only the OCSVM layer demonstration (seconds).
demo-ocsvm: $(STAMP)
	$(VENV)/bin/ogae demo

dashboard: $(STAMP)
	@echo "Dashboard: http://localhost:$(PORT)  (Ctrl-C to stop)"
	$(VENV)/bin/streamlit run app/Home.py --server.port $(PORT) --server.headless true

# Everything: the test suite and the docstring examples of ogae_core (pyproject: --doctest-modules).
test: $(STAMP)
	$(PY) -m pytest -q

# The inner loop (about a minute): the same without the tests marked `slow`.
.PHONY: test-fast
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

report: $(STAMP)
	$(VENV)/bin/ogae notebooks --out reports --kernel python3

lab: $(STAMP)
	$(PY) -m ipykernel install --user --name ogae --display-name "OgAE (.venv)"
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
