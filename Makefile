# Everything a fresh machine with python3 needs: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: demo test lint typecheck unit test-slow bench packer venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "installing python3-venv"; \
	  $(APT) update -q && $(APT) install -y -q python3-venv python3-pip; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@rm -f $(VENV)/.installed-*; touch $@

# Debian's packer (1.6.6): the image templates are validated and built with the real binary.
packer:
	@command -v packer >/dev/null 2>&1 || { echo "installing packer (Debian package)"; \
	  $(APT) update -q && $(APT) install -y -q packer; }

demo: venv packer
	$(BIN)/opsgit validate
	$(BIN)/opsgit render --env dev
	@echo; echo "The dev environment's graph: build/envs/dev/graph.json; image templates: build/images/"

lint: venv
	$(BIN)/ruff check opsgit tests bench tasks.py

typecheck: venv
	$(BIN)/mypy

unit: venv packer
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck unit

test-slow: venv packer
	$(BIN)/pytest -q -m slow

bench: venv
	$(BIN)/python bench/render.py

clean:
	rm -rf build .opsgit bench/out .pytest_cache .mypy_cache .ruff_cache
