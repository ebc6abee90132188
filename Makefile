# Conveniences around README's two commands (which need only Python 3.10+, not make).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: requirements.txt requirements-autograd.txt requirements-notebooks.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-autograd.txt -r requirements-notebooks.txt -e .
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/python -m reference demo --out demo_output

test: setup
	$(BIN)/python -m pytest -q -n auto -m "not slow and not integration"

test-integration: setup
	$(BIN)/python -m pytest -q -m "integration and not slow and not site"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python benchmarks/train_step.py --config configs/FashionMNIST_400_400.yaml --batch 100
	$(BIN)/python benchmarks/train_step.py --config configs/MNIST_CNN.yaml --batch 50

figures: setup
	$(BIN)/python figures/make_all.py

figures-fast: setup
	$(BIN)/python figures/make_all.py --fast

tutorials: setup
	for f in tutorials/[0-9][0-9]_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Notebook copies of the lessons (jupytext, from requirements-notebooks.txt; the .py files stay the one source).
notebooks: setup
	for f in tutorials/[0-9][0-9]_*.py; do $(BIN)/jupytext --quiet --to ipynb $$f || exit 1; done
	@echo "notebooks written beside the lessons: tutorials/*.ipynb (not committed)"

# The documentation site (docs/conf.py says what goes in); warnings fail the build.  The lessons run in full
# (about 90 s more than their fast mode on 2 cores); DOCS_FULL=0 make docs runs their fast mode, as CI does,
# and each page of a lesson with a fast mode says so.
DOCS_FULL ?= 1
docs: setup
	$(BIN)/pip install -q -r requirements-docs.txt
	DOCS_FULL=$(DOCS_FULL) $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "site: docs/_build/html/index.html"

# The built site in headless Chromium (Debian's package: apt-get install chromium).
test-site: docs
	$(BIN)/python -m pytest -q -m site tests/test_site.py tests/test_explore.py

.PHONY: setup demo test test-integration test-slow bench figures figures-fast tutorials notebooks docs test-site
