#!/usr/bin/env bash
# Renders, signs and measures the Gramine enclave of blindfold-server, and
# writes the client policy (policy.toml, and BlindAI 0.6's manifest.toml) from the SIGSTRUCT. Run by
# `make sgx`. Needs Gramine (gramine-manifest, gramine-sgx-sign) and an
# enclave signing key (RSA-3072, exponent 3: gramine-sgx-gen-private-key).
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${SGX_OUT:-build/sgx}
KEY=${SGX_SIGNING_KEY:-$HOME/.config/gramine/enclave-key.pem}

for tool in gramine-manifest gramine-sgx-sign; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "make sgx: $tool not found: Gramine is not installed (see https://gramine.readthedocs.io and docs/sgx.md)" >&2
		exit 1
	fi
done
if [ ! -f "$KEY" ]; then
	echo "make sgx: no enclave signing key at $KEY (make one with gramine-sgx-gen-private-key, or set SGX_SIGNING_KEY)" >&2
	exit 1
fi

# Everything below enters MRENCLAVE, so it is pinned: the Go toolchain
# (go.mod's version; the go command fetches it, checked against the Go
# checksum database, if the local one differs), the build flags (the same
# as internal/reprobuild's test, which shows the binaries do not depend on
# the build folder or caches), the ONNX Runtime library (its SHA-256 in
# setup-onnxruntime.sh), and the paths the manifest names: SGX_OUT, which
# the published policy is built with as /blindfold-enclave (the
# Dockerfile.sgx build). The Gramine version enters through
# gramine-manifest's runtime files; it is written to build-info.txt.
GO_VERSION=$(awk '$1 == "go" { print $2; exit }' go.mod)
export GOTOOLCHAIN="go$GO_VERSION" GOFLAGS=-mod=readonly
if [ "$(go env GOVERSION)" != "go$GO_VERSION" ]; then
	echo "make sgx: cannot use Go $GO_VERSION (go.mod's version): go env GOVERSION says $(go env GOVERSION)" >&2
	exit 1
fi
REPRO_FLAGS=(-trimpath -buildvcs=false -ldflags=-buildid=)
case "$OUT" in
/blindfold-enclave) ;;
*) echo "make sgx: note: SGX_OUT=$OUT; the manifest names this folder, so MRENCLAVE differs from a build in /blindfold-enclave (the published policy's)" >&2 ;;
esac

mkdir -p "$OUT/blindfold/lib" "$OUT/state" "$OUT/shared"
OUT=$(realpath "$OUT")
go build "${REPRO_FLAGS[@]}" -o "$OUT/blindfold/blindfold-server" ./cmd/blindfold-server
CGO_ENABLED=0 go build "${REPRO_FLAGS[@]}" -o "$OUT/blindfold" ./cmd/blindfold
scripts/setup-onnxruntime.sh
ORT_LIB_SHA256=$(sed -n 's/^ORT_LIB_SHA256=//p' scripts/setup-onnxruntime.sh)
cp .cache/onnxruntime/libonnxruntime.so.1 "$OUT/blindfold/lib/"
echo "$ORT_LIB_SHA256  $OUT/blindfold/lib/libonnxruntime.so.1" | sha256sum --check --status || {
	echo "make sgx: libonnxruntime.so.1 is not the pinned one (sha256 $ORT_LIB_SHA256)" >&2
	exit 1
}
cp deploy/gramine/blindfold.toml "$OUT/blindfold/blindfold.toml"
cp deploy/gramine/cluster-policy.toml "$OUT/blindfold/cluster-policy.toml"
cp "${SGX_AUTH_KEY:?set SGX_AUTH_KEY to the token-signing public key (PEM) that the enclave will trust}" "$OUT/blindfold/auth_key.pem"

ARCH_LIBDIR=/lib/$(gcc -dumpmachine)
gramine-manifest \
	-Dlog_level="${SGX_LOG_LEVEL:-error}" \
	-Darch_libdir="$ARCH_LIBDIR" \
	-Dblindfold_dir="$(realpath "$OUT/blindfold")" \
	-Dstate_dir="$(realpath "$OUT/state")" \
	-Dshared_dir="$(realpath "$OUT/shared")" \
	-Denclave_size="${SGX_ENCLAVE_SIZE:-8G}" \
	-Dmax_threads="${SGX_MAX_THREADS:-128}" \
	-Dgo_max_procs="${SGX_GOMAXPROCS:-8}" \
	-Disvprodid="${SGX_ISVPRODID:-1}" \
	-Disvsvn="${SGX_ISVSVN:-1}" \
	deploy/gramine/blindfold-server.manifest.template "$OUT/blindfold-server.manifest"
gramine-sgx-sign --key "$KEY" \
	--manifest "$OUT/blindfold-server.manifest" \
	--output "$OUT/blindfold-server.manifest.sgx"
"$OUT/blindfold" policy from-sigstruct "$OUT/blindfold-server.sig" -o "$OUT/policy.toml"
{
	echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
	echo "go: $(go env GOVERSION)"
	echo "gramine: $(gramine-sgx-sign --version 2>/dev/null | sed -n 1p || echo unknown)"
	echo "sgx_out: $OUT"
	(cd "$OUT" && sha256sum blindfold/blindfold-server blindfold/lib/libonnxruntime.so.1 blindfold/blindfold.toml blindfold/cluster-policy.toml blindfold/auth_key.pem blindfold-server.manifest)
} >"$OUT/build-info.txt"
echo "enclave: $OUT/blindfold-server.manifest.sgx; give clients $OUT/policy.toml (BlindAI 0.6 clients: $OUT/manifest.toml; inputs: $OUT/build-info.txt)"
echo "run:     cd $OUT && gramine-sgx blindfold-server"
