# Givance: make run | make test | make lint | make proto | make bench
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
GEN := build/gen
STAMP := $(VENV)/.installed
SERVICES := identity crm

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint proto bench venv migrate services-up clean

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
	@$(BIN)/python -m chassis.devservices

migrate: proto services-up
	$(BIN)/python -m chassis.migrate $(SERVICES)

test: lint services-up
	$(BIN)/python -m pytest -q tests

run: migrate
	$(BIN)/python -m chassis.runall $(SERVICES)

bench: proto services-up
	$(BIN)/python -m bench

clean:
	rm -rf build protos/third_party $(VENV)
