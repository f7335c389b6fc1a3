# LunaSentri — the newcomer's two commands are `make run` and `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
BIN      := bin/lunasentri
# go test flags for `make test`; CI and newcomers run the same thing.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: soak-100k soak-chaos build run test unit e2e soak lint bench bench-quick bench-micro clean tools docker prometheus-image compose-up compose-down

## build: static binary in bin/lunasentri
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lunasentri

## run: a local three-node cluster on loopback (Ctrl-C stops it)
run: build
	./$(BIN) dev

# go test -json through internal/testsummary: the output of a plain go test
# (each package's "ok"/"FAIL" line, failing tests' logs), then every skipped
# test with its reason. With CI set, a missing capability fails instead of
# skipping (internal/testenv), so CI shows "skipped tests: 0".
GOTEST   := $(GO) run ./internal/testsummary -- $(GO) test -json

## test: lint, then every test (unit, in-process cluster, e2e with real processes)
test: tools lint build
	LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GOTEST) $(TESTFLAGS) ./...

## unit: everything but the process-level e2e suite
unit:
	$(GOTEST) $(TESTFLAGS) $$($(GO) list ./... | grep -v /e2e)

## e2e: only the suite that runs real processes
e2e: build
	LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) -v ./e2e/

## soak: the 100k-machine soak (issue 14: 100,000 machines beating every 10s through all
## three nodes for 10 minutes, a leader kill, a follower restart and a snapshot), then the
## chaos suite longer and with more machines (LUNASENTRI_SOAK=1). Neither runs in CI.
## LUNASENTRI_SOAK_MACHINES / LUNASENTRI_SOAK_DURATION size the first.
soak: soak-100k soak-chaos

soak-100k: build
	LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GO) test -tags soak -count=1 -timeout 60m -v -run 'TestSoak_100kMachines' ./e2e/

soak-chaos: build
	LUNASENTRI_SOAK=1 LUNASENTRI_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 60m -v -run 'TestChaos' ./e2e/

## tools: what the tests need beyond Go, each checked, and installed from Debian's apt
## when missing: prometheus and promtool (the observability tests run the real server and
## check rules), prometheus-alertmanager and amtool (the alertmanager channel against the
## real one), chromium (the dashboard's real-browser tests), gcc (-race needs cgo), ip and
## iptables or nft (the netns partition scenario, as root). Docker (the Compose test) is
## checked, not installed: it needs a running daemon.
TOOLS_APT := prometheus:prometheus promtool:prometheus \
	prometheus-alertmanager:prometheus-alertmanager amtool:prometheus-alertmanager \
	chromium:chromium gcc:gcc ip:iproute2 iptables,nft:iptables
tools:
	@missing=""; \
	for pair in $(TOOLS_APT); do \
	  bins=$${pair%%:*}; pkg=$${pair#*:}; found=""; \
	  for b in $$(echo $$bins | tr ',' ' '); do command -v $$b >/dev/null 2>&1 && found=$$b; done; \
	  [ -n "$$found" ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  pkgs=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	  echo "make tools: installing Debian packages: $$pkgs"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$pkgs || exit 1; \
	fi; \
	for pair in $(TOOLS_APT); do \
	  bins=$${pair%%:*}; found=""; \
	  for b in $$(echo $$bins | tr ',' ' '); do command -v $$b >/dev/null 2>&1 && found=$$b; done; \
	  [ -n "$$found" ] || { echo "make tools: $$bins still missing"; exit 1; }; \
	done; \
	if ! command -v docker >/dev/null 2>&1; then \
	  echo "make tools: no docker: the Compose test skips (and fails when CI is set); install Docker Engine"; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags measure,docs,soak ./...

## bench: the performance harness (BENCHMARKS.md): a three-node cluster against the bare
## net/http ceiling, Raft entries, detection, failover, 100k/1M scale. Prints a table and
## writes .bench/results.json; about 5 minutes on two cores. BENCHFLAGS adds flags.
BENCHBIN   ?= bin/lunasentri-bench
BENCHFLAGS ?=
bench: build
	$(GO) build -o $(BENCHBIN) ./cmd/lunasentri-bench
	$(BENCHBIN) -bin $(BIN) -out .bench/results.json $(BENCHFLAGS)

## bench-quick: a smoke run of the harness (2000 machines, short windows, no 1M step)
bench-quick: build
	$(GO) build -o $(BENCHBIN) ./cmd/lunasentri-bench
	$(BENCHBIN) -bin $(BIN) -quick -out .bench/quick.json $(BENCHFLAGS)

## bench-micro: Go benchmarks of the hot paths
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/ ./monitor/ ./transport/

clean:
	rm -rf bin

## fuzz: every `func Fuzz` target for FUZZTIME each (issue 11); seeds also run in `make test`
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash .ci/fuzz

# ---- deployment (Dockerfile, configs/docker-compose.yml) ----
DOCKER_IMAGE    ?= lunasentri:local
CA_BUNDLE       ?= /etc/ssl/certs/ca-certificates.crt
COMPOSE_YML     := configs/docker-compose.yml
COMPOSE_PROJECT ?= lunasentri
# `docker compose` (v2 plugin) when it works, else the standalone docker-compose.
COMPOSE         ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

## docker: the scratch image $(DOCKER_IMAGE) (static binary, CA bundle, UID 65532); nothing is pulled
docker: build
	rm -rf bin/docker && mkdir -p bin/docker/data
	cp $(BIN) bin/docker/lunasentri
	cp $(CA_BUNDLE) bin/docker/ca-certificates.crt
	docker build -t $(DOCKER_IMAGE) -t lunasentri:$(VERSION) .

## prometheus-image: lunasentri/prometheus-local from this host's Prometheus (Debian's package)
prometheus-image:
	configs/prometheus/build-image.sh

## compose-up: three nodes on 127.0.0.1:8081-8083, plus Prometheus on :9090 when this host has prometheus
compose-up: docker
	@if command -v prometheus >/dev/null 2>&1; then \
	  configs/prometheus/build-image.sh && COMPOSE_PROFILES=prometheus $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_YML) up -d; \
	else \
	  echo "no prometheus binary on this host (make tools installs it): starting without Prometheus"; \
	  $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_YML) up -d; \
	fi
	@echo "nodes: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 (admin token: $${LUNASENTRI_ADMIN_TOKEN:-demo-admin-token-change-me})"
	@echo "demo agent: see configs/production.md (register a machine, then start the agent profile)"

## compose-down: stop the compose stack and delete its volumes (all cluster state)
compose-down:
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_YML) --profile agent --profile prometheus down -v --remove-orphans
