#!/usr/bin/env bash
# Builds the BPF objects (bpf/src -> build/bpf) through bpf/Makefile. Idempotent: make rebuilds
# only what changed (sources, headers, flags). Extra arguments go to make, e.g.
#   bash scripts/build-bpf.sh OUT=../build/other EXTRA_CFLAGS=-DSOMETHING
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
  echo 'clang not found: run `npm test` or `bash scripts/setup.sh` to install clang, llvm and libbpf-dev' >&2
  exit 1
fi
# One compiler per core: the objects are independent.
exec make --no-print-directory -j"$(nproc)" -C bpf "$@"
