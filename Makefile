# Targets a developer runs are the targets CI runs (.ci/run calls `make test`).
GO        ?= go
CONFIG    ?=
FUZZTIME  ?= 30000x
BIN       := bin/llama

.PHONY: help build run test deps vet unit e2e fuzz bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/llama
	$(GO) build -trimpath -o $(BIN) ./cmd/llama

run: build ## build and run the server: make run CONFIG=./config.yaml (no CONFIG: the built-in starter)
	./$(BIN) stack run $(CONFIG)

test: deps vet fuzz unit ## everything CI runs: tools, vet, all tests with -race (end-to-end included), fuzz smoke

deps: ## install what the tests need (npm packages of e2e/js; curl, jq from Debian if missing)
	@command -v curl >/dev/null && command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq curl jq; }
	cd e2e/js && npm ci --no-audit --no-fund --loglevel=error

vet: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit: ## go test -race across the module; PostgreSQL store and replica tests against a throwaway server from .ci/postgres.sh
	@dsn=$$(bash .ci/postgres.sh) || { echo "could not start PostgreSQL for the tests"; exit 1; }; export "$$dsn"; \
	  $(GO) test -race -shuffle=on -count=1 -timeout=30m ./...; rc=$$?; bash .ci/postgres.sh stop >/dev/null; exit $$rc

fuzz: ## run each fuzz target for FUZZTIME executions (a count, not a duration: time-boxed fuzzing can fail spuriously, golang/go#75804)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list='^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; out=$$($(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  done; done

bench: ## hot-path micro-benchmarks with allocations
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/...

clean:
	rm -rf bin
