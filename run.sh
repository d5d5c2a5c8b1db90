#!/usr/bin/env bash
# Set everything up (first time only) and start the assistant. Arguments go to `assistant`:
#   ./run.sh                      talk through the microphone
#   ./run.sh --text               type instead
#   ./run.sh --input a.wav b.wav  replay recordings
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/assistant" "$@"
