#!/usr/bin/env bash
# Refresh the lock file on purpose: resolve the newest releases inside pyproject.toml's
# ranges, write uv.lock, then set .venv up from it.
# Run it when you change a dependency in pyproject.toml, or to take newer releases;
# then run ./test.sh and commit uv.lock with the change that needed it.
#   scripts/lock.sh              re-resolve only what pyproject.toml's changes need
#   scripts/lock.sh --upgrade    take the newest release of everything (a deliberate update)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SKIP_APT="${SKIP_APT:-1}" "$ROOT/scripts/setup.sh" >/dev/null 2>&1 || true
UV="$ROOT/.cache/bootstrap/bin/uv"
[[ -x "$UV" ]] || { echo "[lock] error: scripts/setup.sh did not install uv" >&2; exit 1; }
export UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=1
"$UV" lock --project "$ROOT" --python "${PYTHON:-python3}" "$@"
"$ROOT/scripts/setup.sh"
