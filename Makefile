# Lucid's build, test, lint and benchmark entry points. `make test` is the README's (and
# CI's) test command.

GOLANGCI_LINT_VERSION := v2.15.0
BIN := $(CURDIR)/bin
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build test unit test-kubelet test-istioanalyze test-istioctl fuzz-short cross kube-bins telemetry-bins test-kube test-node lint e2e bench bench-kube bench-mtls clean

all: build

# What `lucid version` and the proxy's /server_info report: VERSION (default dev), the commit
# and whether the tree had uncommitted changes. -s -w leave out the DWARF debug tables
# (about a fifth of the file; stack traces and profiles do not need them).
VERSION ?= dev
VERSION_PKG := github.com/lucid-mesh/lucid/internal/version
LDFLAGS = -s -w -X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Commit=$(shell git rev-parse HEAD 2>/dev/null) \
	-X $(VERSION_PKG).Modified=$(shell test -z "$$(git status --porcelain 2>/dev/null)" && echo false || echo true)

## build: the static lucid binary in bin/lucid
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/lucid ./cmd/lucid

## test: every package's tests with the race detector, the kubelet verdict check, the Istio parity checks, istioctl
## reading Lucid's proxies, then each
## fuzz target briefly, then the cross-platform builds (first builds the Kubernetes and telemetry test binaries if they
## are not cached yet)
test: kube-bins telemetry-bins unit test-kubelet test-istioanalyze test-istioctl fuzz-short cross

# -timeout: test/node (a real Kubernetes node) runs about 6 minutes on a 2-core machine, too
# close to go test's 10-minute default per package.
unit:
	go test -race -count=1 -timeout 20m ./...

## test-kubelet: app probes checked against the kubelet's own probe code (a separate module, test/kubelet)
test-kubelet:
	cd test/kubelet && go test -count=1 ./...

## test-istioanalyze: lucid analyze and Lucid's validation checked against Istio's own analyzers and validation
## functions (a separate module, test/istioanalyze)
test-istioanalyze:
	cd test/istioanalyze && go test -count=1 ./...

## test-istioctl: istioctl's own config-dump parsing and table writers on real Lucid proxies, compared with
## lucid proxy-config (a separate module, test/istioctl, on the same istio.io/istio as test/istioanalyze)
test-istioctl:
	cd test/istioctl && go test -count=1 ./...

fuzz-short:
	./scripts/fuzz-short.sh

## cross: lucid builds for macOS (the CLI: up, analyze, why; capture and TPROXY are Linux's and say so there), and
## every package and test type-checks on a 32-bit platform
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go build -o /dev/null ./cmd/lucid
	GOARCH=386 go vet ./...

## kube-bins: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and etcd for the Kubernetes tests (module test/kubebin), cached in
## ${LUCID_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/kube/<version>}; a no-op once built
kube-bins:
	./scripts/kube-bins.sh

## telemetry-bins: an OpenTelemetry Collector and Prometheus for the telemetry tests (module test/telemetrybin),
## cached in ${LUCID_TELEMETRY_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/telemetry/<versions>}; a no-op once built
telemetry-bins:
	./scripts/telemetry-bins.sh

## test-kube: only the tests that run against the real API server (packages using internal/testutil/kubetest)
test-kube: kube-bins
	go test -race -count=1 ./internal/testutil/kubetest $$(go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
		| awk '/ github.com\/lucid-mesh\/lucid\/internal\/testutil\/kubetest( |$$)/ {print $$1}')

## test-node: Lucid on a real single-node Kubernetes (kubelet, containerd, pods; root on Linux): test/node, docs/kubernetes-node.md
test-node: kube-bins
	go test -count=1 -v ./internal/testutil/kubenode/ ./test/node/

## lint: golangci-lint at a pinned version, installed into bin/
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@

## e2e: the end-to-end tests that run the built binary (lucid up examples/bookinfo-lite)
e2e:
	go test -race -count=1 ./test/e2e/...

## bench: sidecar vs direct vs HAProxy vs nginx vs Go's ReverseProxy (and a Go floor) on loopback, at a fixed rate and at
## saturation on one core (medians of 3 and 5 interleaved rounds, Lucid's CPU profile); writes its sections of bench/RESULTS.md
bench:
	./bench/run.sh
	SAT_RESULTS=bench/RESULTS.md SAT_PROFILE=1 ./bench/saturate.sh

## bench-mtls: mutual TLS between two sidecars vs plaintext vs HAProxy with TLS (root; haproxy, nginx);
## prints Markdown tables (bench/README.md, "bench/mtls"). MTLS_ARGS="-rounds 1 -duration 3s" for a quick look
bench-mtls:
	./bench/mtls/run.sh

## bench-kube: the control plane at scale (1,000 Services, 10,000 endpoints, 1,000 sidecars against a real
## kube-apiserver); prints a Markdown report (bench/kubescale/README.md). BENCH_KUBE_ARGS="-mode local" for the
## twin without Kubernetes, "-sidecars 100 -sustain 20s" for a shorter run
bench-kube: kube-bins
	go run ./bench/kubescale $(BENCH_KUBE_ARGS)

clean:
	rm -rf $(BIN)
