# The two commands of the README are `make demo` and `make test`; both bootstrap .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ogae-installed
PORT   ?= 8501
LAB_PORT ?= 8888
LAB_IP   ?= 127.0.0.1
# Jupyter refuses to start as root without --allow-root (most containers run as root)
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# see ogae_core/__init__.py: spinning OpenMP waits slow small torch ops 10-15x on shared cores
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv demo demo-ocsvm test bench report lab dashboard clean-venv system-deps

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# The main job: real MNIST -> the exact OCSVM layer checked against libsvm -> the `quick`
# preset for 3 vs 8 through notebook 01 -> report in reports/; then Experiment 2: the simulated
# `demo` brain-MRI cohort, the five MRI methods + the wm-prior reference through notebook 04 (two
# worker processes) -> report and Fig. 3-like PNG in reports/ -> the dashboard with both experiments.
demo: $(STAMP)
	$(VENV)/bin/ogae data fetch
	$(VENV)/bin/ogae demo
	$(VENV)/bin/ogae notebooks --only 01 --out reports -p preset=quick -p normal=3 -p anomaly=8
	$(VENV)/bin/ogae report --experiment mnistc-3v8-quick --format html --out reports
	$(VENV)/bin/ogae data mri --cohort demo
	$(VENV)/bin/ogae notebooks --only 04 --out reports -p cohort=demo -p "seeds=[0]" -p executor=local -p jobs=2 \
	    -p figure_path=reports/mri-demo-fig3.png
	$(VENV)/bin/ogae report --experiment mri-demo --format html --out reports
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

# JupyterLab on the notebooks, headless: no browser is opened; open the printed URL (with its
# token). The "OgAE (.venv)" kernel is installed into the venv itself (no write to $HOME).
lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name ogae --display-name "OgAE (.venv)"
	$(VENV)/bin/jupyter lab notebooks/ --no-browser --ip=$(LAB_IP) --port=$(LAB_PORT) $(LAB_ROOT)

# System packages of the optional tests (root, Debian/Ubuntu): Chromium for the dashboard's
# browser test, SLURM (with slurmdbd on MariaDB, for sacct) and munge for the local-cluster
# sweep tests. `make test` never installs
# them; without them those tests are skipped with this command as the reason.
system-deps:
	@test "$$(id -u)" = 0 || { echo "error: make system-deps needs root (it runs apt-get)"; exit 1; }
	@command -v apt-get >/dev/null 2>&1 || { echo "error: apt-get not found; install chromium, slurm-wlm (slurmctld, slurmd), slurmdbd, mariadb-server and munge with your package manager"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium slurm-wlm slurmdbd mariadb-server munge

clean-venv:
	rm -rf $(VENV)
