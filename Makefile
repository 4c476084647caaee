# The two commands a new user needs:
#   make example   builds pipeline and runs examples/train.yaml on the bundled shards
#   make test      vet, unit tests, the race detector on the runtime packages, the Python client
GO ?= go
PYTHON ?= .venv/bin/python
RACE_PKGS = ./pipeline/... ./job/... ./monitor/... ./schema/... ./stages/... ./sink/null/... ./sink/arrowfile/... ./sink/arrowsocket/... ./sink/rankqueue/... ./sink/netsec/... ./sink/flight/...

.PHONY: deps build-deps build example test bench

deps:
	./scripts/deps.sh

# What building and running needs: Debian's packages and the PJRT plugin, not the test tools.
build-deps:
	SKIP_VENV=1 SKIP_VERSITYGW=1 ./scripts/deps.sh

build: build-deps
	$(GO) build -o bin/pipeline ./cmd/pipeline

example: build
	./bin/pipeline run examples/train.yaml --summary-json out/example-summary.json

test: deps
	$(GO) vet ./...
	@# sink/moco runs its trainer tests on SimpleGo and on XLA: 8 minutes on a loaded 2-core machine.
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	CGO_ENABLED=0 $(GO) build ./...
	@# The Python client in .venv (pyarrow, torch), against the real Go producer. Under CI=true a
	@# test that would skip for a missing dependency fails instead.
	@# test_pipeline_run.py runs the real bin/pipeline; one torch thread per process, as the
	@# tests run several torch processes beside the producer.
	$(GO) build -o bin/pipeline ./cmd/pipeline
	CGO_ENABLED=0 $(GO) test -c -o bin/arrowsocket.test ./sink/arrowsocket
	PIPELINE_PRODUCER="cd $(CURDIR) && bin/arrowsocket.test -test.run '^TestServeSynthetic$$'" \
	  PIPELINE_BIN=$(CURDIR)/bin/pipeline OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -rs --durations=8 \
	  python/tests bench/moco_reference

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./stages/decode/ ./augment/...
