# Two commands set up everything on a fresh Debian bookworm machine:
#   make demo   - installs what is missing, runs the main job end to end on the embedded PostGIS
#   make test   - installs what is missing, runs the whole test suite
# Debian packages need root: as a normal user, sudo is used for apt-get.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := python3 python3-venv postgresql-15 postgresql-15-postgis-3 postgresql-contrib \
	gdal-bin proj-data proj-bin chromium cgi-mapserver mapserver-bin spawn-fcgi nginx-light \
	fonts-dejavu-core wrk python3-qgis qgis-providers python3-gdal
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo test notebook bench lint clean

setup: system-packages $(VENV)/.installed

# Installs only the Debian packages that are missing, so a prepared machine needs no root.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml exporters/web/package.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,notebook]"
	$(BIN)/python -m ipykernel install --sys-prefix --name kataster --display-name "Kataster (.venv)" >/dev/null
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }
	cd exporters/web && SCARF_ANALYTICS=false npm install --no-audit --no-fund --silent
	@touch $@

demo: setup
	$(BIN)/kataster demo

# The suite starts with the linters (make lint), so CI runs both.
test: setup lint
	$(BIN)/python -m pytest -p no:cacheprovider tests

notebook: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: setup
	$(BIN)/python bench/import_vector.py
	$(BIN)/python bench/import_nas.py
	$(BIN)/python bench/corpus.py
	$(BIN)/python bench/validate.py --nas 8695
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/georef.py
	$(BIN)/python bench/update_nba.py
	$(BIN)/python bench/flat_layout.py

# The public API: what analysts, plug-in importers and exporters and the command line build on.
PUBLIC_API := pipeline/api.py pipeline/errors.py pipeline/registry.py pipeline/steps.py \
	importers/base.py exporters/layers.py pipeline/validation/rules.py \
	pipeline/validation/findings.py pipeline/validation/run.py

# ruff everywhere (rules in pyproject.toml); docstrings and types checked on the public API;
# pylint only for repeated code (4 lines or more) inside the packages.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff check --select D1,D3,D419 --ignore D105,D107 $(PUBLIC_API)
	$(BIN)/mypy $(PUBLIC_API)
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=4 \
	  --ignore=node_modules,migrations --score=n pipeline importers exporters schemas

clean:
	-$(BIN)/kataster db down
	rm -rf $(VENV) out .kataster
