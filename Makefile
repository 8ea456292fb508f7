# Lucid's build, test, lint and benchmark entry points. `make test` is the README's (and
# CI's) test command.

GOLANGCI_LINT_VERSION := v2.15.0
BIN := $(CURDIR)/bin
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build test unit test-kubelet fuzz-short kube-bins telemetry-bins test-kube lint e2e bench bench-kube clean

all: build

## build: the static lucid binary in bin/lucid
build:
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/lucid ./cmd/lucid

## test: every package's tests with the race detector, the kubelet verdict check, then each fuzz target briefly
## (first builds the Kubernetes and telemetry test binaries if they are not cached yet)
test: kube-bins telemetry-bins unit test-kubelet fuzz-short

unit:
	go test -race -count=1 ./...

## test-kubelet: app probes checked against the kubelet's own probe code (a separate module, test/kubelet)
test-kubelet:
	cd test/kubelet && go test -count=1 ./...

fuzz-short:
	./scripts/fuzz-short.sh

## kube-bins: kube-apiserver, kube-controller-manager and etcd for the Kubernetes tests (module test/kubebin), cached in
## ${LUCID_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/kube/<version>}; a no-op once built
kube-bins:
	./scripts/kube-bins.sh

## telemetry-bins: an OpenTelemetry Collector and Prometheus for the telemetry tests (module test/telemetrybin),
## cached in ${LUCID_TELEMETRY_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/telemetry/<versions>}; a no-op once built
telemetry-bins:
	./scripts/telemetry-bins.sh

## test-kube: only the tests that run against the real API server (packages using internal/testutil/kubetest)
test-kube: kube-bins
	go test -race -count=1 ./internal/kubetest $$(go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
		| awk '/ github.com\/lucid-mesh\/lucid\/internal\/kubetest( |$$)/ {print $$1}')

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

## bench: sidecar vs direct vs HAProxy vs nginx on loopback; writes bench/RESULTS.md
bench:
	./bench/run.sh

## bench-kube: the Kubernetes scale check (1,000 Services, 10,000 endpoints, 50 sidecars against a real
## kube-apiserver); prints a Markdown report (bench/kubescale/README.md). BENCH_KUBE_ARGS="-sidecars 10" for a shorter run
bench-kube: kube-bins
	go run ./bench/kubescale $(BENCH_KUBE_ARGS)

clean:
	rm -rf $(BIN)
