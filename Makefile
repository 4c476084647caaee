# The two commands a new user needs:
#   make example   builds pipeline and runs examples/train.yaml on the bundled shards
#   make test      vet, unit tests, the race detector on the runtime packages, the Python client
GO ?= go
RACE_PKGS = ./pipeline/... ./stages/... ./sink/null/... ./sink/arrowfile/... ./sink/arrowsocket/... ./sink/flight/...

.PHONY: deps build example test bench

deps:
	./scripts/deps.sh

build: deps
	$(GO) build -o bin/pipeline ./cmd/pipeline

example: build
	./bin/pipeline run examples/train.yaml --summary-json out/example-summary.json

test: deps
	$(GO) vet ./...
	@# sink/moco runs its trainer tests on SimpleGo and on XLA: 8 minutes on a loaded 2-core machine.
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	CGO_ENABLED=0 $(GO) build ./...
	@# The Python client: the wire protocol runs anywhere; the pyarrow/torch tests skip, saying so.
	@if command -v python3 >/dev/null; then cd python/tests && python3 -m unittest; \
	  else echo "python3 not found: Python client tests skipped"; fi

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./stages/decode/ ./augment/...
