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

mkdir -p "$OUT/blindfold/lib" "$OUT/state"
OUT=$(realpath "$OUT")
go build -trimpath -o "$OUT/blindfold/blindfold-server" ./cmd/blindfold-server
CGO_ENABLED=0 go build -trimpath -o "$OUT/blindfold" ./cmd/blindfold
scripts/setup-onnxruntime.sh
cp .cache/onnxruntime/libonnxruntime.so.1 "$OUT/blindfold/lib/"
cp deploy/gramine/blindfold.toml "$OUT/blindfold/blindfold.toml"
cp "${SGX_AUTH_KEY:?set SGX_AUTH_KEY to the token-signing public key (PEM) that the enclave will trust}" "$OUT/blindfold/auth_key.pem"

ARCH_LIBDIR=/lib/$(gcc -dumpmachine)
gramine-manifest \
	-Dlog_level="${SGX_LOG_LEVEL:-error}" \
	-Darch_libdir="$ARCH_LIBDIR" \
	-Dblindfold_dir="$(realpath "$OUT/blindfold")" \
	-Dstate_dir="$(realpath "$OUT/state")" \
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
echo "enclave: $OUT/blindfold-server.manifest.sgx; give clients $OUT/policy.toml (BlindAI 0.6 clients: $OUT/manifest.toml)"
echo "run:     cd $OUT && gramine-sgx blindfold-server"
