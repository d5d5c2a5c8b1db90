#!/usr/bin/env bash
# Set everything up (first time only) and run the whole test suite. Arguments go to pytest:
#   ./test.sh                     everything (the audio tests start their own PulseAudio)
#   ./test.sh -k reply -x         a subset
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
