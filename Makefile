# Blindfold: build, test and demo targets. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -buildid= -X github.com/blindfold-ai/blindfold/server.Version=$(VERSION)
# Reproducible: the same commit builds the same bytes in any folder, with
# any GOPATH or build cache (internal/reprobuild tests it).
BUILDFLAGS := -trimpath -buildvcs=false

.PHONY: all build onnxruntime test cluster-test demo lint fmt generate clean soak bench sgx verify-page

all: build

## onnxruntime: fetch and verify libonnxruntime.so.1 into .cache/onnxruntime
onnxruntime:
	scripts/setup-onnxruntime.sh

## build: the server (cgo) and the CLI (pure Go) into bin/
build:
	$(GO) build $(BUILDFLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/blindfold-server ./cmd/blindfold-server
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/blindfold ./cmd/blindfold

## test: the whole test suite (installs what it needs first)
test:
	scripts/test.sh

## cluster-test: replicas behind a real HAProxy (TCP, round robin): join, shared identity and models, SIGKILL mid-load, refused joiners, key rotation (needs haproxy; `make test` runs these too when it is installed, and scripts/test.sh installs it as root)
cluster-test: onnxruntime
	$(GO) test -race -count=1 -timeout 10m ./cluster/ ./cmd/blindfold-server/ ./client/ -run 'Cluster|Join|Bundle|Secret|Impostor|SGXAttestor'

## demo: start a simulation server, upload, run and delete a model, stop
demo: onnxruntime build
	scripts/demo.sh

## soak: mixed load from many clients for SOAK_DURATION (default 10m), with room in memory for fewer models than they use (eviction throughout); checks answers and leaks
SOAK_DURATION ?= 10m
SOAK_CLIENTS ?= 16
soak: onnxruntime
	$(GO) run ./cmd/blindfold-soak --duration $(SOAK_DURATION) --clients $(SOAK_CLIENTS) --evict

## lint: gofmt, go vet, staticcheck
lint:
	scripts/test.sh lint

## generate: regenerate protobuf code and test models
generate:
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" $(GO) generate ./...

## bench: engine alone vs the full confidential path; writes bench/results/latest.json and docs/benchmarks.md
bench: onnxruntime
	$(GO) run ./cmd/blindfold-bench $(BENCHFLAGS)

## sgx: Gramine enclave of the server: render and sign the manifest, write policy.toml and BlindAI 0.6's manifest.toml (needs Gramine; see docs/sgx.md)
sgx:
	deploy/gramine/sgx.sh

## verify-page: the browser verifier: docs/verify/blindfold-verify.wasm and Go's wasm_exec.js next to the page (serve docs/verify over HTTP; see docs/verify.md)
WASM_EXEC = $(firstword $(wildcard $(shell $(GO) env GOROOT)/lib/wasm/wasm_exec.js $(shell $(GO) env GOROOT)/misc/wasm/wasm_exec.js))
verify-page:
	GOOS=js GOARCH=wasm $(GO) build $(BUILDFLAGS) -ldflags "-s -w -buildid=" -o docs/verify/blindfold-verify.wasm ./cmd/blindfold-verify-wasm
	@test -n "$(WASM_EXEC)" || { echo "wasm_exec.js not found under $$($(GO) env GOROOT)"; exit 1; }
	cp $(WASM_EXEC) docs/verify/wasm_exec.js

clean:
	rm -rf $(BIN) docs/verify/blindfold-verify.wasm docs/verify/wasm_exec.js
