#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: system packages, a virtual environment in .venv,
# and the project (editable, with its test extras). Safe to run again: it only does what
# is missing. Used by ./run.sh and ./test.sh; run it alone with `scripts/setup.sh`.
#
#   PYTHON=python3.12 scripts/setup.sh     # choose the interpreter (>= 3.11)
#   SKIP_APT=1 scripts/setup.sh            # do not touch system packages
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# ---- 1. System packages -------------------------------------------------------------
# espeak-ng: speech output (pyttsx3); portaudio19-dev + gcc + python headers: PyAudio;
# pulseaudio (+ utils, ALSA plugin): the virtual microphone/speaker the audio tests use.
APT_PACKAGES=(espeak-ng libespeak-ng1 portaudio19-dev libasound2-plugins pulseaudio
              pulseaudio-utils libsndfile1 gcc python3-dev python3-venv)

missing_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || printf '%s ' "$pkg"
    done
}

if [[ "${SKIP_APT:-0}" != 1 ]]; then
    command -v dpkg-query >/dev/null || die "this set-up needs Debian or Ubuntu (dpkg/apt); install espeak-ng, PortAudio and PulseAudio by hand, then run with SKIP_APT=1"
    missing="$(missing_packages)"
    if [[ -n "$missing" ]]; then
        line="apt-get install -y --no-install-recommends $missing"
        if [[ "$(id -u)" == 0 ]]; then SUDO=""
        elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"
        else
            die "missing system packages and no root or passwordless sudo. Run as root:
    apt-get update && $line
then run this command again."
        fi
        say "installing system packages: $missing"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        # shellcheck disable=SC2086
        $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
        missing="$(missing_packages)"
        [[ -z "$missing" ]] || die "apt-get did not install: $missing"
    fi
fi

# ---- 2. Python and the virtual environment ------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer (or set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python >= 3.11 is needed; $PYTHON is $("$PYTHON" -V 2>&1). Set PYTHON=python3.11"

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment in .venv"
    "$PYTHON" -m venv "$VENV" || die "could not create .venv (on Debian: apt-get install python3-venv)"
fi

# ---- 3. The project ---------------------------------------------------------------
# Re-install only when pyproject.toml changed since the last successful install.
stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [[ ! -f "$stamp" ]] || ! "$VENV/bin/python" -c "import assistant, ser_model" 2>/dev/null; then
    say "installing the project and its dependencies into .venv (first time: a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
say "ready: $("$VENV/bin/python" -V), $(cd "$ROOT" && "$VENV/bin/python" -c 'import assistant; print("assistant", assistant.__version__)')"
