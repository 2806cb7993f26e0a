# Everything a fresh machine with python3 needs: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: demo demo-cloud demo-down test lint typecheck unit test-slow test-faults bench packer strace graphviz chromium screenshots venv checkov clean

venv: $(STAMP)

# checkov, for the policy checks on every plan (opsgit's `policy` extra), in a virtual environment
# of its own: it pins dependencies (packaging<24) that the test tools cannot share.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell grep -o 'checkov==[0-9.]*' pyproject.toml)
export OPSGIT_CHECKOV := $(abspath $(CHECKOV_VENV))/bin/checkov
checkov: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): pyproject.toml
	@[ -x $(CHECKOV_VENV)/bin/python ] || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "$$(grep -o 'checkov==[0-9.]*' pyproject.toml)"
	@rm -f $(CHECKOV_VENV)/.installed-*; touch $@

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

# Graphviz's dot draws `opsgit graph --svg` and the dashboard's pictures (Debian's package).
graphviz:
	@command -v dot >/dev/null 2>&1 || { echo "installing graphviz (Debian package)"; \
	  $(APT) update -q && $(APT) install -y -q graphviz; }

# Debian's Chromium: the dashboard's browser tests and `make screenshots` drive it with Playwright.
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package)"; \
	  $(APT) update -q && $(APT) install -y -q chromium; }

# strace kills a process at an exact system call in the crash tests (Debian's package).
strace:
	@command -v strace >/dev/null 2>&1 || { echo "installing strace (Debian package)"; \
	  $(APT) update -q && $(APT) install -y -q strace; }

# The dev environment runs on loopback: moto_server as the AWS API, the opsgit dev agent as Consul
# (two checkouts on one machine: `make demo OPSGIT_DEMO_AWS_PORT=5100 OPSGIT_DEMO_CONSUL_PORT=8600`).
export OPSGIT_DEMO_AWS_PORT ?= 5000
export OPSGIT_DEMO_CONSUL_PORT ?= 8500
export OPSGIT_DEMO_DASHBOARD_PORT ?= 8800
DEV_ENV := AWS_ENDPOINT_URL=http://127.0.0.1:$(OPSGIT_DEMO_AWS_PORT) AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev \
	AWS_DEFAULT_REGION=us-east-1 CONSUL_HTTP_ADDR=127.0.0.1:$(OPSGIT_DEMO_CONSUL_PORT)

demo: venv packer checkov graphviz
	$(BIN)/opsgit validate
	$(BIN)/opsgit render --env dev
	$(BIN)/python scripts/devservices.py up
	$(BIN)/opsgit envs --graph
	$(DEV_ENV) $(BIN)/opsgit apply --env global --auto-approve
	$(DEV_ENV) $(BIN)/opsgit plan --env dev
	$(DEV_ENV) $(BIN)/opsgit apply --env dev build/plans/dev.plan.json
	$(DEV_ENV) HC_ROLE=binstore $(BIN)/opsgit image --env dev
	$(BIN)/opsgit verify --role binstore --hosts local://
	$(BIN)/python scripts/devservices.py dashboard
	@echo; echo "Run \`make demo\` again: nothing to change. \`make demo-down\` stops moto_server, the agent and the dashboard."
	@echo "The provider example (hashicorp/aws as a plugin: VPC, load balancer, IAM): \`make demo-cloud\`."

# The provider example: environments/cloud, applied by the real hashicorp/aws provider (a
# Terraform filesystem mirror holds it: TF_PLUGINS, default /opt/tf-plugins) against moto_server.
TF_PLUGINS ?= /opt/tf-plugins
demo-cloud: venv checkov
	@TF_PLUGIN_CACHE_DIR=$(TF_PLUGINS) $(BIN)/python -c "from pathlib import Path; from opsgit.plugin import discovery; \
	  discovery.find(discovery.parse_source('hashicorp/aws'), '5.100.0', Path('.'))" 2>/dev/null || { \
	  echo "hashicorp/aws 5.100.0 is not in $(TF_PLUGINS) or Terraform's mirrors. Unpack its release zip into"; \
	  echo "  $(TF_PLUGINS)/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/, or run: make demo-cloud TF_PLUGINS=DIR"; exit 1; }
	$(BIN)/python scripts/devservices.py up
	$(DEV_ENV) TF_PLUGIN_CACHE_DIR=$(TF_PLUGINS) $(BIN)/opsgit plan --env cloud
	$(DEV_ENV) TF_PLUGIN_CACHE_DIR=$(TF_PLUGINS) $(BIN)/opsgit apply --env cloud build/plans/cloud.plan.json

# docs/screenshots/*.png, shown in docs/guide.md: the demo's dashboard in Chromium.
screenshots: demo chromium
	$(BIN)/python scripts/screenshots.py http://127.0.0.1:$(OPSGIT_DEMO_DASHBOARD_PORT) docs/screenshots

demo-down: venv
	$(BIN)/python scripts/devservices.py down

lint: venv
	$(BIN)/ruff check opsgit tests bench scripts tasks.py

typecheck: venv
	$(BIN)/mypy

# Two workers (CI has two cores): most tests wait on processes they started, so the suite's wall
# time nearly halves. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
unit: venv packer strace checkov graphviz chromium
	$(BIN)/pytest -q -m "not slow" -n $(PYTEST_WORKERS)

test: lint typecheck unit

test-slow: venv packer strace checkov graphviz chromium
	$(BIN)/pytest -q -m slow -n $(PYTEST_WORKERS)

# The fault suite with many trials each; its figures go to docs/reliability.md.
FAULT_TRIALS ?= 20
test-faults: venv packer strace
	rm -f build/fault-report.jsonl
	OPSGIT_FAULT_TRIALS=$(FAULT_TRIALS) $(BIN)/pytest -q tests/faults
	$(BIN)/python scripts/fault_report.py build/fault-report.jsonl

bench: venv
	$(BIN)/python bench/render.py

clean:
	rm -rf build .opsgit bench/out .pytest_cache .mypy_cache .ruff_cache
