# cityops — two commands on a fresh Debian machine with Python and Node:
#   make demo   set everything up, then run the live demo on SQLite
#   make test   set everything up, then run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_JS := node_modules/.installed
STAMP_DEB := $(VENV)/.debian
DEBIAN_PACKAGES := chromium fonts-noto-core mosquitto ffmpeg
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000

.PHONY: setup demo test check lint types bench serve clean screenshots

setup: $(STAMP_DEB) $(STAMP_PY) $(STAMP_JS)

# Debian packages the suite and the pages need: a browser for the page tests, a font with Vietnamese glyphs, and
# the Mosquitto broker program (the MQTT tests start their own to kill and restart it).
$(STAMP_DEB):
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP_PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(STAMP_JS): package.json package-lock.json $(STAMP_PY)
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/vendor.py
	@touch $@

demo: setup
	CITYOPS_DATA_DIR=$${CITYOPS_DATA_DIR:-cityops-data} $(BIN)/cityops demo --host $(DEMO_HOST) --port $(DEMO_PORT)

serve: setup
	$(BIN)/cityops serve

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

types: setup
	$(BIN)/mypy

check: lint types test

bench: setup
	$(BIN)/python -m bench

# The pictures in README.md and docs/: taken by the browser tests, then copied to docs/img.
SCREENSHOTS := overview-1366x768 overview-390x844 board-yte-1366x768 wall-5760x3240 map-desktop report-phone brief-phone
screenshots: setup
	$(BIN)/python -m pytest -q tests/web/test_overview_browser.py tests/web/test_boards_browser.py \
		tests/web/test_wall_browser.py tests/web/test_map_browser.py tests/web/test_report_browser.py \
		tests/reports/test_brief_browser.py
	mkdir -p docs/img
	for name in $(SCREENSHOTS); do cp test-artifacts/$$name.png docs/img/$$name.png; done

clean:
	rm -rf $(VENV) node_modules src/cityops/web/static/vendor .pytest_cache .mypy_cache .ruff_cache
