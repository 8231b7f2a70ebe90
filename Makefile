# The two commands: `make run` (main job, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.costtrain-installed

.PHONY: run test lab data notebooks benchmarks clean

run: $(STAMP) data
	$(VENV)/bin/costtrain compare --target-accuracy 75 --out results/compare.json

test: $(STAMP) data
	$(PY) -m pytest -q

# The course in JupyterLab, opened at 00_setup.ipynb (as root, JupyterLab needs --allow-root).
lab: $(STAMP) data
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/00_setup.ipynb \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Fashion-MNIST: use a copy that is already there, else the Debian package (offline), else
# torchvision's download. WordNet 3.0 (wordnet-supersense): a copy already there, else the
# Debian package wordnet-base (offline); elsewhere the tests that need it are skipped.
data: $(STAMP)
	@$(PY) -c "import costtrain.data as d; d.load_dataset('fashion-mnist', subset=10)" 2>/dev/null \
	|| { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	       (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	     fi; } ; \
	$(PY) -c "import costtrain.data as d; d.load_dataset('fashion-mnist', subset=10)" 2>/dev/null \
	|| $(PY) -c "import costtrain.data as d; d.load_dataset('fashion-mnist', download=True)"
	@$(PY) -c "import costtrain.data as d; d.load_dataset('wordnet-supersense')" 2>/dev/null \
	|| { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	       (apt-get update -qq && apt-get install -y -qq wordnet-base) >/dev/null; \
	     fi; } ; \
	$(PY) -c "import costtrain.data as d; d.load_dataset('wordnet-supersense')" 2>/dev/null \
	|| echo "make data: WordNet 3.0 not found (sudo apt-get install wordnet-base); its tests are skipped"

notebooks: $(STAMP) data
	$(VENV)/bin/costtrain notebooks --reference

benchmarks: $(STAMP) data
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf results notebooks/out .pytest_cache test-artifacts
