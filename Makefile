# LunaSentri — the newcomer's two commands are `make run` and `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
BIN      := bin/lunasentri
# go test flags for `make test`; CI and newcomers run the same thing.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: build run test unit e2e lint bench clean tools

## build: static binary in bin/lunasentri
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lunasentri

## run: a local three-node cluster on loopback (Ctrl-C stops it)
run: build
	./$(BIN) dev

## test: lint, then every test (unit, in-process cluster, e2e with real processes)
test: tools lint build
	LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) ./...

## unit: everything but the process-level e2e suite
unit:
	$(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v /e2e)

## e2e: only the suite that runs real processes
e2e: build
	LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) -v ./e2e/

## tools: what the tests need beyond Go (Debian's prometheus for promtool)
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus (promtool and the server, for the observability tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends prometheus; }

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/ ./monitor/ ./transport/

clean:
	rm -rf bin
