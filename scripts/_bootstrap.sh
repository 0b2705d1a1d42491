# Sourced by scripts/*: find Python 3.13, create .venv, install pinned dependencies, npm ci for Azurite.
# Idempotent and quick when nothing changed (stamps hold the hashes of the files that were installed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# pyenv's newest installed 3.13.x (any patch), so a `python3.13` shim resolves to it; empty without pyenv.
pyenv_313() {
  local v
  for v in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*; do [ -d "$v" ] && basename "$v"; done | sort -V | tail -n 1
}

# Run Python with pyenv pointed at a 3.13 it has (unless the caller chose a version).
py313() { PYENV_VERSION="${PYENV_VERSION:-$(pyenv_313)}" "$@"; }

find_python() {
  local candidate
  for candidate in "${TANDEM_PYTHON:-}" python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.*/bin/python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       py313 "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# `bootstrap python` skips Azurite (the administrator's CLI needs no Node.js).
bootstrap() {
  local py venv_stamp npm_stamp want
  local what="${1:-all}"
  if [ ! -x .venv/bin/python ]; then
    py="$(find_python)" || { echo "error: Python 3.13 not found (tried python3.13 and \$PYENV_ROOT/versions/3.13.*); install it or set TANDEM_PYTHON" >&2; exit 1; }
    echo "setup: creating .venv with $py" >&2
    py313 "$py" -m venv .venv
  fi
  want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
  venv_stamp=.venv/.tandem-installed
  if ! stamp_ok "$venv_stamp" "$want"; then
    echo "setup: installing pinned Python dependencies (about 40 s the first time)" >&2
    # pip's notes about this machine's extra wheel folders are noise; real errors still fail the install.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "error: pip install failed" >&2; exit 1; }
    echo "$want" > "$venv_stamp"
  fi
  if [ "$what" = python ]; then export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"; return 0; fi
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || {
    echo "error: npm not found; Node.js 20+ is needed for Azurite" >&2; exit 1; }
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || {
    echo "error: Node.js $(node --version) is too old; Azurite needs Node.js 20+" >&2; exit 1; }
  want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
  npm_stamp=node_modules/.tandem-installed
  if ! stamp_ok "$npm_stamp" "$want"; then
    echo "setup: npm ci (Azurite)" >&2
    npm ci --no-audit --no-fund --silent >&2
    echo "$want" > "$npm_stamp"
  fi
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
}

# The infra checks' own virtual environment (checkov pins packaging==23.2, which pytest cannot share).
bootstrap_tools() {
  local py want stamp=.venv-tools/.tandem-installed
  if [ ! -x .venv-tools/bin/python ]; then
    py="$(find_python)" || { echo "error: Python 3.13 not found (tried python3.13 and \$PYENV_ROOT/versions/3.13.*); install it or set TANDEM_PYTHON" >&2; exit 1; }
    echo "setup: creating .venv-tools with $py (checkov)" >&2
    py313 "$py" -m venv .venv-tools
  fi
  want="$(sha256sum requirements-tools.txt | cut -d' ' -f1)"
  if ! stamp_ok "$stamp" "$want"; then
    echo "setup: installing pinned infra tools (about 45 s the first time)" >&2
    .venv-tools/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "error: pip install of requirements-tools.txt failed" >&2; exit 1; }
    echo "$want" > "$stamp"
  fi
}
