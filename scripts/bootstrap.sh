#!/usr/bin/env bash
# Bring the working tree up to date for running optinode and its tests. Idempotent, and
# fast when nothing changed: each step is keyed on a hash of its inputs.
#   1. .venv        created with python3 >= 3.11 if missing (or broken)
#   2. pip install  -e '.[test]' when pyproject.toml changed   (stamp: .venv/.optinode-pip.sha256)
#   3. npm ci       when node_modules is missing or package-lock.json changed
#                                                              (stamp: node_modules/.optinode-npm.sha256)
#   4. contracts    node contracts/build.js (skips itself when contracts/artifacts/sources.sha256 matches)
# Environment: PYTHON=/path/to/python3.x to choose the interpreter for a new .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

sha256_of() { python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1" 2>/dev/null \
  || sha256sum "$1" | cut -d' ' -f1; }

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }

# ---- 1. virtualenv -----------------------------------------------------------------------
VENV=.venv
if [[ -x $VENV/bin/python ]] && ! py_ok "$VENV/bin/python"; then
  say "$VENV is broken or older than Python 3.11: recreating it"
  rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
  PY=""
  for cand in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null 2>&1 && py_ok "$cand"; then PY=$cand; break; fi
  done
  [[ -n $PY ]] || die "Python >= 3.11 is required (found: $(python3 --version 2>&1 || echo 'no python3')). Install it, or set PYTHON=/path/to/python3.11+"
  say "creating $VENV with $($PY --version 2>&1) ($(command -v "$PY"))"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi

# ---- 2. Python dependencies ----------------------------------------------------------------
PIP_STAMP=$VENV/.optinode-pip.sha256
want=$(sha256_of pyproject.toml)
if [[ ! -f $PIP_STAMP || $(cat "$PIP_STAMP") != "$want" ]]; then
  say "installing optinode and its pinned dependencies into $VENV (pyproject.toml changed)"
  rm -f "$PIP_STAMP"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]'
  echo "$want" >"$PIP_STAMP"
fi

# ---- 3. Node toolchain (solc-js, anvil) ----------------------------------------------------
command -v node >/dev/null 2>&1 || die "Node.js >= 20 is required (node not found)"
command -v npm >/dev/null 2>&1 || die "npm is required (npm not found)"
node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' \
  || die "Node.js >= 20 is required (found $(node --version))"
NPM_STAMP=node_modules/.optinode-npm.sha256
want=$(sha256_of package-lock.json)
if [[ ! -d node_modules || ! -f $NPM_STAMP || $(cat "$NPM_STAMP") != "$want" ]]; then
  say "npm ci (solc, anvil)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$NPM_STAMP"
fi

# ---- 4. Contracts --------------------------------------------------------------------------
node contracts/build.js
