# Givance: make run | make test | make lint | make proto | make bench
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
GEN := build/gen
STAMP := $(VENV)/.installed
# Which services `make migrate` and `make run` take: empty means every one listed in
# pyproject.toml ([tool.givance] services, the one list); `make run SERVICES=identity` runs some.
SERVICES :=

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint proto bench fuzz faults soak venv migrate services-up clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Generated code goes to build/gen (ignored), rooted at the proto package root, so the
# modules import as givance.crm.v1...; a .pth file puts it on the venv's path.
proto: $(STAMP)
	@rm -rf $(GEN) protos/third_party && mkdir -p $(GEN) protos/third_party/google
	@SP=$$($(BIN)/python -c 'import google.type, os; print(os.path.dirname(os.path.dirname(list(google.type.__path__)[0])))'); \
	  for d in type rpc api; do mkdir -p protos/third_party/google/$$d; cp $$SP/google/$$d/*.proto protos/third_party/google/$$d/; done
	@WKT=$$($(BIN)/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))'); \
	  $(BIN)/python -m grpc_tools.protoc -Iprotos -Iprotos/third_party -I$$WKT \
	    --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) \
	    $$(find protos/givance -name '*.proto' | sort)
	@SITE=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  echo "$(CURDIR)/$(GEN)" > $$SITE/givance_generated.pth
	@echo "proto: generated into $(GEN)"

lint: proto
	$(BIN)/ruff check .
	cd protos && ../$(BIN)/buf lint --path givance
	$(BIN)/lint-imports

# Starts PostgreSQL and RabbitMQ when they are local and down (the dev and CI machines).
services-up:
	@$(BIN)/python -m tools.devservices

# Development runs give every service its own broker user (givance-<service>, password
# dev-<service>) where rabbitmqctl can create it; GIVANCE_DEV_BROKER_USERS=0 runs them all as guest.
migrate: proto services-up
	GIVANCE_DEV_BROKER_USERS=$${GIVANCE_DEV_BROKER_USERS:-1} $(BIN)/python -m chassis.migrate $(SERVICES)

# The /docs page is tested in headless Chromium (Debian's package): installed here when missing
# and this runs as root with apt-get; otherwise that one test is skipped, saying why.
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium (apt-get) for the /docs browser test"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: the /docs browser test will be skipped"; fi; }

test: lint browser  # the test setup brings PostgreSQL and RabbitMQ up itself (tests/infra.py)
	$(BIN)/python -m pytest -q tests

# A development run: identity may use the published development keys (it refuses them otherwise).
# Services that act for a tenant without a caller get development service principals
# (tools/devprincipals.py); GIVANCE_DEV_PRINCIPALS=0 leaves them out.
run: migrate
	GIVANCE_DEV_PRINCIPALS=$${GIVANCE_DEV_PRINCIPALS:-1} $(BIN)/python -m tools.devprincipals
	IDENTITY_ALLOW_DEV_KEYS=$${IDENTITY_ALLOW_DEV_KEYS:-1} GIVANCE_DEV_BROKER_USERS=$${GIVANCE_DEV_BROKER_USERS:-1} \
	  COMMS_MAIL_CATCHER=$${COMMS_MAIL_CATCHER:-1} GIVANCE_DEV_PRINCIPALS=$${GIVANCE_DEV_PRINCIPALS:-1} \
	  $(BIN)/python -m tools.runall $(SERVICES)

# The long profile of the fuzz suite (make test runs a quick one).
fuzz: proto services-up
	GIVANCE_FUZZ_EXAMPLES=$${GIVANCE_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest -q tests/fuzz

# The fault-injection suite at full length (4,000 writes a fault, 20 s outages; make test runs 600 and 4 s).
faults: proto services-up
	GIVANCE_FAULTS_PROFILE=full $(BIN)/python -m pytest -q -s tests/faults

# crm's rollups after a long randomized run of writes (make test runs 2,000 writes).
soak: proto services-up
	GIVANCE_ROLLUP_WRITES=$${GIVANCE_ROLLUP_WRITES:-20000} $(BIN)/python -m pytest -q tests/crm/test_rollups_random.py

bench: proto services-up
	$(BIN)/python -m bench

clean:
	rm -rf build protos/third_party $(VENV)
