#!/usr/bin/env bash
# Fetches the ONNX Runtime CPU library (linux x64) that Blindfold's engine
# loads, from the npm package onnxruntime-node, checks its SHA-256 against the
# value pinned here, and keeps it in the ignored cache folder
# .cache/onnxruntime/. Idempotent: does nothing when a good copy is there.
#
# Usage: scripts/setup-onnxruntime.sh [DEST_DIR]
set -euo pipefail

ORT_NPM_VERSION=1.30.0
ORT_LIB_PATH_IN_PACKAGE=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
# SHA-256 of libonnxruntime.so.1 inside onnxruntime-node@1.30.0.
ORT_LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-"$root/.cache/onnxruntime"}
lib="$dest/libonnxruntime.so.1"

say() { printf 'setup-onnxruntime: %s\n' "$*" >&2; }

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  say "this script fetches the linux x86_64 build; on $(uname -s)/$(uname -m) point --onnxruntime-lib or BLINDFOLD_ONNXRUNTIME_LIB at a libonnxruntime built for this machine (C API version 24 or later)"
  exit 1
fi

if [ -f "$lib" ] && echo "$ORT_LIB_SHA256  $lib" | sha256sum --check --status; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing npm (Debian package), needed to fetch onnxruntime-node@$ORT_NPM_VERSION"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    say "npm is needed to fetch onnxruntime-node@$ORT_NPM_VERSION; install it (Debian: sudo apt-get install npm) and run again"
    exit 1
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "fetching onnxruntime-node@$ORT_NPM_VERSION with npm pack (about 110 MB)"
(cd "$work" && npm pack --silent "onnxruntime-node@$ORT_NPM_VERSION" >/dev/null)
tgz=$(ls "$work"/onnxruntime-node-*.tgz)
tar -xzf "$tgz" -C "$work" "$ORT_LIB_PATH_IN_PACKAGE"
got=$(sha256sum "$work/$ORT_LIB_PATH_IN_PACKAGE" | cut -d' ' -f1)
if [ "$got" != "$ORT_LIB_SHA256" ]; then
  say "SHA-256 mismatch for libonnxruntime.so.1: got $got, pinned $ORT_LIB_SHA256; refusing to install it"
  exit 1
fi
mkdir -p "$dest"
install -m 0644 "$work/$ORT_LIB_PATH_IN_PACKAGE" "$lib.tmp"
mv -f "$lib.tmp" "$lib"
say "installed $lib (sha256 $got)"
