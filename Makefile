# otelcol-o365 — two commands: `make run` (distribution + Graph simulator, no credentials) and
# `make test` (every test). Tools are pinned and fetched through the Go module proxy on first use.

GO            ?= go
OCB_VERSION   := v0.161.0
OCB           := $(GO) run go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
MDATAGEN      := $(GO) tool -modfile=$(CURDIR)/internal/tools/go.mod mdatagen
DIST          := _build/otelcol-o365
GRAPHSIM      := bin/graphsim
GO_MIN        := 1.26

.PHONY: all build distribution package run count test test-deps unit e2e bench soak fuzz generate fmt vet check-go clean

all: build

check-go:
	@command -v $(GO) >/dev/null || { echo "Go $(GO_MIN)+ is required (https://go.dev/dl/)"; exit 1; }
	@$(GO) version | awk '{ split(substr($$3,3),v,"."); if (v[1] < 1 || (v[1] == 1 && v[2] < 26)) { print "Go $(GO_MIN)+ is required, found " $$3; exit 1 } }'

## build: compile the otelcol-o365 distribution with ocb into _build/otelcol-o365, and the simulator
build: distribution $(GRAPHSIM)

## distribution: only the distribution (static: ocb builds with CGO_ENABLED=0); the Dockerfile runs it
distribution: check-go
	$(OCB) --config builder-config.yaml

## package: .deb and .rpm of the distribution (nfpm, pinned in internal/tools) into dist/
package: distribution
	GO=$(GO) ./scripts/package.sh $(DIST) dist

$(GRAPHSIM): check-go $(shell find internal/graphsim -name '*.go' -o -name '*.yaml')
	$(GO) build -o $(GRAPHSIM) ./internal/graphsim/cmd/graphsim

## run: start the Graph simulator and the collector; records land in run/o365-raw.json (kept across runs)
run: build
	./scripts/run.sh

## count: records and duplicates in run/o365-raw.json, across every `make run` (installs Debian's jq if missing)
count:
	@command -v jq >/dev/null || { echo "installing Debian's jq for the count"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq) >/dev/null || \
	  { echo "could not install jq (apt-get needs root): install jq and run make count again"; exit 1; }; }
	./scripts/count-records.sh

FUZZTIME      ?= 5s

## test: vet, unit and integration tests, the end-to-end and reliability tests against the built
## distribution (short forms), and FUZZTIME of fuzzing per fuzz target
test: build vet test-deps
	OTELCOL_O365_BIN=$(CURDIR)/$(DIST) $(GO) test -count=1 -timeout 20m ./...
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

## fuzz: every fuzz target for FUZZTIME (default 5s)
fuzz: check-go
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

## soak: the long forms of the reliability suite and 2 min of fuzzing per target; prints the summary
## table that docs/reliability.md records (raw output in soak-results/)
soak: build
	./scripts/soak.sh

## unit: the Go tests without building the distribution (the end-to-end test then builds it itself)
unit: check-go
	$(GO) test -count=1 ./...

# test-deps: headless Chromium renders the readiness status page in its test (Debian's package).
test-deps:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the status page test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || \
	  { echo "could not install chromium (apt-get needs root): the status page test will be skipped"; }; }

## vet: go vet, gofmt, and go.mod/go.sum of the root and tools modules exactly as `go mod tidy` leaves them
vet: check-go
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@cd internal/tools && $(GO) mod tidy -diff || { echo "internal/tools/go.mod is not tidy: run 'cd internal/tools && go mod tidy' and commit"; exit 1; }
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v /testdata/)); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

## bench: the benchmark suite (docs/benchmarks.md); results in bench-results/
bench: build
	./scripts/bench.sh

## generate: regenerate component metadata code (mdatagen v0.159.0, pinned in internal/tools)
generate:
	for d in receiver/o365receiver processor/o365mappingprocessor exporter/o365exportexporter \
	         exporter/o365eventsexporter extension/sqlstorageextension extension/o365readinessextension; do \
	  (cd $$d && $(MDATAGEN) metadata.yaml) || exit 1; done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf _build bin run dist bench-results soak-results
