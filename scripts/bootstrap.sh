#!/usr/bin/env bash
# Bring the working tree up to date for running optinode and its tests. Idempotent, and
# fast when nothing changed: each step is keyed on a hash of its inputs.
#   1. .venv        created if missing (or broken) with the best Python >= 3.11 found: one for which
#                   every pinned dependency ships a wheel (3.12, then 3.11) before a newer one
#                   (3.13+) that must build plyvel from source
#   2. pip install  -e '.[test]' when pyproject.toml changed   (stamp: .venv/.optinode-pip.sha256);
#                   a source build of plyvel first gets its prerequisites (LevelDB headers, g++,
#                   Python headers): apt-get installs them when run as root, else a message says how
#   3. npm ci       when node_modules is missing or package-lock.json changed
#                                                              (stamp: node_modules/.optinode-npm.sha256)
#   4. contracts    node contracts/build.js (skips itself when contracts/artifacts/sources.sha256 matches)
# Usage: scripts/bootstrap.sh [--which-python]   (--which-python: print the interpreter a new .venv
#        would get, and exit)
# Environment: PYTHON=/path/to/python3.x to choose the interpreter for a new .venv (only that one);
#              OPTINODE_NO_APT=1 never installs system packages (prints the command instead);
#              PIP_NO_BINARY=plyvel (pip's own variable) builds plyvel from source on any Python.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

sha256_of() { python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1" 2>/dev/null \
  || sha256sum "$1" | cut -d' ' -f1; }

py_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }

# ---- 1. virtualenv -----------------------------------------------------------------------
VENV=.venv
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
# plyvel 1.5.1 (pinned) publishes wheels for CPython <= 3.12 only; every other pin has wheels for
# 3.11-3.13. On a newer Python plyvel is compiled from its sdist, which needs LevelDB's headers.
WHEELS_UP_TO=3.12
has_all_wheels() { "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] <= (${WHEELS_UP_TO/./, }) else 1)" >/dev/null 2>&1; }

if [[ -x $VENV/bin/python ]] && ! py_ok "$VENV/bin/python"; then
  say "$VENV is broken or older than Python 3.11: recreating it"
  rm -rf "$VENV"
fi
# A name like python3.13 that does not run (pyenv's shim for a version that is not selected) may still
# be installed under pyenv: use that interpreter directly.
resolve_python() {
  local name=$1 found
  if command -v "$name" >/dev/null 2>&1 && py_ok "$name"; then echo "$name"; return 0; fi
  if [[ $name =~ ^python3\.[0-9]+$ ]]; then
    for found in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${name#python}"*/bin/"$name"; do
      [[ -x $found ]] && py_ok "$found" && { echo "$found"; return 0; }
    done
  fi
  return 1
}

choose_python() {  # prints the interpreter for a new .venv, or dies with what to install
  local cand found fallback=""
  if [[ -n ${PYTHON:-} ]]; then
    resolve_python "$PYTHON" \
      || die "PYTHON=$PYTHON is not a Python >= 3.11 (found: $("$PYTHON" --version 2>&1 || echo 'not found'))"
    return
  fi
  # First an interpreter with every wheel (no compiler needed), then any other >= 3.11.
  for cand in python3.12 python3.11 python3 python3.13 python3.14; do
    found=$(resolve_python "$cand") || continue
    if has_all_wheels "$found"; then echo "$found"; return; fi
    [[ -n $fallback ]] || fallback=$found
  done
  [[ -n $fallback ]] || die "Python >= 3.11 is required (found: $(python3 --version 2>&1 || echo 'no python3')).
  Install python3.12 or python3.11 (every dependency has a wheel for them), or set PYTHON=/path/to/python3.11+"
  echo "$fallback"
}
if [[ ${1:-} == --which-python ]]; then  # for tests and the curious: the choice, nothing installed
  choose_python; exit 0
fi

if [[ ! -x $VENV/bin/python ]]; then
  PY=$(choose_python)
  say "creating $VENV with Python $(py_version "$PY") ($(command -v "$PY"))"
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" 2>/tmp/optinode-venv.$$; then
    cat /tmp/optinode-venv.$$ >&2; rm -rf /tmp/optinode-venv.$$ "$VENV"
    die "$PY cannot create a virtualenv (Debian/Ubuntu ship venv separately): apt-get install python$(py_version "$PY")-venv, then rerun"
  fi
  rm -f /tmp/optinode-venv.$$
fi

# ---- 2. Python dependencies ----------------------------------------------------------------
is_root() { [[ ${OPTINODE_NO_APT:-0} != 1 && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }

# Prerequisites of building plyvel from source: LevelDB headers and library, a C++ compiler and the
# interpreter's own headers. Installed with apt-get when we are root; otherwise one clear message.
ensure_plyvel_build_deps() {
  local why=$1 ver include missing=() pkgs=()
  ver=$(py_version "$VENV/bin/python")
  include=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [[ -f /usr/include/leveldb/db.h || -f /usr/local/include/leveldb/db.h ]] || { missing+=("LevelDB headers (leveldb/db.h)"); pkgs+=(libleveldb-dev); }
  command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || { missing+=("a C++ compiler"); pkgs+=(g++); }
  [[ -f $include/Python.h ]] || { missing+=("Python $ver headers ($include/Python.h)"); pkgs+=("python$ver-dev"); }
  ((${#missing[@]})) || return 0
  if is_root; then
    say "$why: installing what its source build needs: ${pkgs[*]}"
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } \
      || die "apt-get install ${pkgs[*]} failed; install them by hand, or use Python 3.12/3.11 (PYTHON=python3.12, after rm -rf $VENV)"
  else
    die "$why, and this machine lacks: ${missing[*]}.
  Either install them:   sudo apt-get install ${pkgs[*]}     (Fedora: sudo dnf install leveldb-devel gcc-c++ python3-devel; macOS: brew install leveldb)
  or use a Python with wheels:  rm -rf $VENV && PYTHON=python3.12 scripts/bootstrap.sh   (3.11 works too)"
  fi
}

PIP_STAMP=$VENV/.optinode-pip.sha256
want=$(sha256_of pyproject.toml)
if [[ ! -f $PIP_STAMP || $(cat "$PIP_STAMP") != "$want" ]]; then
  say "installing optinode and its pinned dependencies into $VENV (pyproject.toml changed)"
  rm -f "$PIP_STAMP"
  if ! has_all_wheels "$VENV/bin/python"; then
    ensure_plyvel_build_deps "plyvel must be built from source on Python $(py_version "$VENV/bin/python") (its wheels stop at $WHEELS_UP_TO)"
  elif [[ ,${PIP_NO_BINARY:-}, == *,plyvel,* || ${PIP_NO_BINARY:-} == ":all:" ]]; then
    ensure_plyvel_build_deps "PIP_NO_BINARY asks for plyvel to be built from source"
  fi
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]' \
    || die "pip install failed (above). With Python $(py_version "$VENV/bin/python") a failed plyvel build usually means missing LevelDB headers: apt-get install libleveldb-dev g++ python$(py_version "$VENV/bin/python")-dev, or recreate $VENV with PYTHON=python3.12"
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
