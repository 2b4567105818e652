# The README's two commands (`make test`, `make demo`) each build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MAN_PAGES := man/supervisorctl.1 man/printer-supervisor.conf.5 man/printer-supervisor.8

.PHONY: test demo bench lint clean man deb

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/supervisorctl demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The reference pages: reStructuredText rendered to roff by docutils' manpage writer. The roff
# is committed (installing needs no docutils); a test renders again and compares.
man: $(MAN_PAGES)

man/%: man/%.rst $(STAMP)
	$(BIN)/python -m docutils --writer=manpage --halt=warning $< $@

# The Debian package, dist/printer-supervisor_<version>_all.deb (Debian 12 or 13; it names the
# build dependencies that are missing). README: "Install on Debian".
deb:
	scripts/build-deb

lint: $(STAMP)
	$(BIN)/ruff check supervisor tests bench
	$(BIN)/mypy --strict supervisor

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
