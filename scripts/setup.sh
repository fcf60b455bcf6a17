#!/usr/bin/env bash
# Installs what is missing on a Debian machine and builds everything: the Debian packages the
# BPF toolchain and harness need, the npm dependencies, the BPF objects and the TypeScript.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have clang || missing+=(clang)
have llvm-objdump || missing+=(llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
{ ldconfig -p 2>/dev/null | grep -q 'libbpf.so.1 '; } || missing+=(libbpf1)
have bpftool || missing+=(bpftool)
have ip || missing+=(iproute2)
have unshare || missing+=(util-linux)
have setpriv || missing+=(util-linux)
have make || missing+=(make)
have gcc || missing+=(gcc)
# genhtml turns `check --coverage-out lcov.info` into browsable pages (and tests the tracefile)
have genhtml || missing+=(lcov)

if [ ${#missing[@]} -gt 0 ]; then
  # de-duplicate for the message and the install line
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    echo "kmesh-check: missing Debian packages: ${missing[*]}. Install them as root: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "kmesh-check setup: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! have node || ! have npm; then
  echo "kmesh-check: Node.js 20.19 or newer with npm is required: install it first (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

# npm dependencies: (re)install when missing or when the lock file is newer than the install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "kmesh-check setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build-bpf.sh
npx --no-install tsc -p tsconfig.json
