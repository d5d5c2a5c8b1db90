#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: system packages, then a virtual environment in .venv
# installed from the lock file uv.lock (the project editable, with its dev group). Safe to run again: it only does what
# is missing. Used by ./run.sh and ./test.sh; run it alone with `scripts/setup.sh`.
#
#   PYTHON=python3.12 scripts/setup.sh     # choose the interpreter (3.11-3.13)
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

# ---- 2. Python, the installer and the virtual environment -----------------------------
# The environment is installed from the committed lock file (uv.lock: every package, exact
# versions and hashes), so every machine gets what CI tested. uv itself comes from PyPI,
# pinned by hash in scripts/uv-bootstrap.txt, into .cache/bootstrap (not into .venv: uv sync
# keeps .venv exactly as the lock says and would remove it).
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11-3.13 (or set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))' \
    || die "Python 3.11-3.13 is needed (the lock is made for those); $PYTHON is $("$PYTHON" -V 2>&1). Set PYTHON=python3.11"

BOOT="$ROOT/.cache/bootstrap"
UV="$BOOT/bin/uv"
uv_pin="$(grep -o '^uv==[0-9.]*' "$ROOT/scripts/uv-bootstrap.txt")"
if [[ ! -x "$UV" ]] || [[ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "${uv_pin#uv==}" ]]; then
    say "installing the installer ($uv_pin, hash-checked) into .cache/bootstrap"
    rm -rf "$BOOT"
    "$PYTHON" -m venv "$BOOT" || die "could not create a virtual environment (on Debian: apt-get install python3-venv)"
    "$BOOT/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
        -r "$ROOT/scripts/uv-bootstrap.txt" || die "could not install $uv_pin from PyPI"
fi

# uv: use the chosen interpreter, never download one; trust the system's CA store.
export UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=1 UV_LINK_MODE="${UV_LINK_MODE:-copy}"
export UV_PROJECT_ENVIRONMENT="$VENV"
# ---- 3. The project ---------------------------------------------------------------
# `uv sync --frozen` installs exactly uv.lock (the project editable, with the dev group),
# never re-resolves, and removes anything else; a second run checks and does nothing.
if ! "$UV" sync --quiet --frozen --python "$PYTHON" --project "$ROOT"; then
    die "could not install the locked environment (uv sync --frozen); see the lines above"
fi
say "ready: $("$VENV/bin/python" -V), $(cd "$ROOT" && "$VENV/bin/python" -c 'import assistant; print("assistant", assistant.__version__)')"
