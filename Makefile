# The three commands: `make lab` (the course), `make run` (the main job, offline) and `make test`.
# Without make (Windows): the same steps as commands are in docs/install.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.costtrain-installed

.PHONY: run readme-figures test check lab student data notebooks benchmarks clean handout kit diagrams

# The main job: every method on 20,000 images x 2 epochs of work, 3 alternating repeats
# (medians, ranges, "within noise"); results and figures go to results/ (not tracked).
# The full-size job: `costtrain compare --repeats 3 --target-accuracy 75` (all 60,000 images).
RUN_ARGS ?= --subset 20000 --repeats 3 --target-accuracy 70

run: $(STAMP) data
	$(VENV)/bin/costtrain compare $(RUN_ARGS) --out results/compare.json --figures results/figures

# Write the main job's figures into figures/ (compare_*.png), with a fresh run of it.
readme-figures: $(STAMP) data
	$(VENV)/bin/costtrain compare $(RUN_ARGS) --out results/compare.json --figures figures

test: $(STAMP) data
	$(PY) -m pytest -q --durations=12

# The inner loop (under 90 s on 2 cores): every test outside tests/slow/ (the folder marks them
# slow), i.e. no notebook, browser, torchrun or multi-second fault injection. `make test` (what CI
# runs) runs them all.
# It uses the data that `make data` (or `make test`, `make run`) fetched, without checking again.
check: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The course in JupyterLab: the students' copies (`make student`), opened at
# $(STUDENT)/00_setup.ipynb (as root, JupyterLab needs --allow-root). The repository is the
# root, so the notebooks' links to docs/teaching/ open.
lab: $(STAMP) data student
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(STUDENT)/00_setup.ipynb \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Copies of the notebooks without outputs, to predict in, from the jupytext sources, into
# $(STUDENT)/ (ignored by git). A copy you edited or ran is kept; `make student FORCE=1`
# replaces it (yours goes to $(STUDENT)/backup/ first). notebooks/ keeps the executed references.
STUDENT ?= student
student: $(STAMP)
	$(VENV)/bin/costtrain student $(STUDENT) $(if $(FORCE),--force)

# TORCH_INDEX: a PyTorch wheel index for torch and torchvision, used only when set, e.g.
# `make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu` for the CPU-only build (no NVIDIA
# CUDA libraries; see docs/install.md). Unset, pip takes them from PyPI with the rest: what CI
# tests. The versions are pyproject.toml's (tests/test_packaging.py keeps them equal).
TORCH_INDEX ?=
TORCH_SPECS := 'torch>=2.4,<2.15' 'torchvision>=0.19,<0.30'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --index-url $(TORCH_INDEX) $(TORCH_SPECS))
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Fashion-MNIST: use a copy that is already there, else the Debian package (offline), else
# torchvision's download. WordNet 3.0 (wordnet-supersense): a copy already there, else the
# Debian package wordnet-base (offline); elsewhere the tests that need it are skipped.
data: $(STAMP)
	@$(PY) -c "import costtrain as d; d.load_dataset('fashion-mnist', subset=10)" 2>/dev/null \
	|| { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	       (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	     fi; } ; \
	$(PY) -c "import costtrain as d; d.load_dataset('fashion-mnist', subset=10)" 2>/dev/null \
	|| $(PY) -c "import costtrain as d; d.load_dataset('fashion-mnist', download=True)"
	@$(PY) -c "import costtrain as d; d.load_dataset('wordnet-supersense')" 2>/dev/null \
	|| { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	       (apt-get update -qq && apt-get install -y -qq wordnet-base) >/dev/null; \
	     fi; } ; \
	$(PY) -c "import costtrain as d; d.load_dataset('wordnet-supersense')" 2>/dev/null \
	|| echo "make data: WordNet 3.0 not found (sudo apt-get install wordnet-base); its tests are skipped"

notebooks: $(STAMP) data
	$(VENV)/bin/costtrain notebooks --reference
	$(PY) -m costtrain.course.handout --update-docs

# The teacher's kit (docs/teaching): the printable handout and the teacher's pages, as HTML with
# the diagrams embedded (print them, or save them as PDF, from a browser).
handout: $(STAMP)
	$(PY) -m costtrain.course.handout build/handout

# Refresh the generated parts of docs/ and README.md (course tables, run times, objectives,
# solutions with the reference run's values, the class command) from the notebooks.
kit: $(STAMP)
	$(PY) -m costtrain.course.handout --update-docs

# Redraw the committed SVG diagrams (deterministic: the same matplotlib gives the same bytes).
diagrams: $(STAMP)
	$(PY) -m costtrain.course.diagrams notebooks/diagrams

benchmarks: $(STAMP) data
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf results notebooks/out .pytest_cache test-artifacts
