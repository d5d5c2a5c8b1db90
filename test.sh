#!/usr/bin/env bash
# Set everything up (first time only), lint, and run the whole test suite. Arguments go to pytest:
#   ./test.sh                     everything (the audio tests start their own PulseAudio)
#   ./test.sh -k reply -x         a subset
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
# Lint first (rules in pyproject.toml): a finding fails the run before the slow tests start.
"$ROOT/.venv/bin/ruff" check --no-cache . || { echo "[test] ruff check found problems (see above)" >&2; exit 1; }
exec "$ROOT/.venv/bin/python" -m pytest "$@"
