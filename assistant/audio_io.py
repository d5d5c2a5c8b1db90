"""PyAudio helpers: quiet initialisation, device listing, choosing a device by index or name.

PortAudio prints pages of ALSA and JACK messages to file descriptor 2 while it probes the
devices; :func:`quiet_stderr` redirects fd 2 to /dev/null around that, so the user sees only
our own one-line messages. pyaudio is imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.errors import AssistantError


class NoInputDeviceError(AssistantError):
    """No microphone can be opened; ``str(err)`` is one line."""


class DeviceError(AssistantError):
    """A ``--device`` value matches no device; ``str(err)`` is one line."""


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null for the duration (C libraries write there directly)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_pyaudio():
    """A ``pyaudio.PyAudio()`` instance, created without ALSA/JACK noise on stderr."""
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    with quiet_stderr():
        import pyaudio

        return pyaudio.PyAudio()


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device."""

    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: float
    is_default_input: bool = False
    is_default_output: bool = False


def list_devices(pa=None) -> list[DeviceInfo]:
    """Every PortAudio device with its input and output channel counts."""
    own = pa is None
    pa = pa or open_pyaudio()
    try:
        try:
            din = pa.get_default_input_device_info()["index"]
        except OSError:
            din = None
        try:
            dout = pa.get_default_output_device_info()["index"]
        except OSError:
            dout = None
        out = []
        for i in range(pa.get_device_count()):
            d = pa.get_device_info_by_index(i)
            out.append(DeviceInfo(index=i, name=str(d.get("name")),
                                  inputs=int(d.get("maxInputChannels", 0)),
                                  outputs=int(d.get("maxOutputChannels", 0)),
                                  default_rate=float(d.get("defaultSampleRate", 0)),
                                  is_default_input=(i == din), is_default_output=(i == dout)))
        return out
    finally:
        if own:
            with quiet_stderr():
                pa.terminate()


_PROBE = """
import json, os, sys
devnull = os.open(os.devnull, os.O_WRONLY); os.dup2(devnull, 2)
import pyaudio
pa = pyaudio.PyAudio()
try:
    try: din = pa.get_default_input_device_info()["index"]
    except (IOError, OSError): din = None
    try: dout = pa.get_default_output_device_info()["index"]
    except (IOError, OSError): dout = None
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        out.append([i, str(d.get("name")), int(d.get("maxInputChannels", 0)),
                    int(d.get("maxOutputChannels", 0)), float(d.get("defaultSampleRate", 0)),
                    i == din, i == dout])
finally:
    pa.terminate()
sys.stdout.write(json.dumps(out))
"""


class AudioSystemError(AssistantError):
    """PortAudio itself cannot start (it crashed while probing); ``str(err)`` is one line."""


def probe_devices(timeout: float = 15.0) -> list[DeviceInfo]:
    """Like :func:`list_devices`, but in a child process.

    PortAudio aborts the whole process on some broken ALSA set-ups (an ``assert`` in its
    device scan); probing in a child turns that into an AudioSystemError instead of a crash.
    """
    import json
    import subprocess

    env = dict(os.environ)
    env.setdefault("JACK_NO_START_SERVER", "1")
    try:
        res = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AudioSystemError("the audio system did not answer in time") from None
    if res.returncode != 0:
        how = f"signal {-res.returncode}" if res.returncode < 0 else f"status {res.returncode}"
        raise AudioSystemError(f"the audio system (PortAudio) failed to start ({how})")
    return [DeviceInfo(index=i, name=n, inputs=ci, outputs=co, default_rate=r,
                       is_default_input=di, is_default_output=do)
            for i, n, ci, co, r, di, do in json.loads(res.stdout)]


def resolve_device(spec: str | None, devices: list[DeviceInfo], *, kind: str) -> int | None:
    """Index of the device named by ``spec`` (an index or a name substring); None: default.

    ``kind`` is ``input`` or ``output``; only devices with channels of that kind match.
    """
    if spec is None or str(spec).strip() == "":
        return None
    usable = [d for d in devices if (d.inputs if kind == "input" else d.outputs) > 0]
    spec = str(spec).strip()
    if spec.isdigit():
        idx = int(spec)
        if any(d.index == idx for d in usable):
            return idx
        raise DeviceError(f"no {kind} device with index {idx} (see: assistant devices)")
    matches = [d for d in usable if spec.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(f"no {kind} device whose name contains {spec!r} (see: assistant devices)")
    return matches[0].index


# -- PulseAudio: which source a capture stream really uses -------------------------------
def _pactl(*args: str, timeout: float = 5.0) -> str | None:
    """Output of ``pactl ARGS`` (C locale), or None when PulseAudio is not reachable."""
    import shutil
    import subprocess

    if shutil.which("pactl") is None:
        return None
    try:
        res = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def pulse_sources() -> dict[int, str] | None:
    """PulseAudio source index -> name; None when there is no PulseAudio server."""
    out = _pactl("list", "short", "sources")
    if out is None:
        return None
    sources = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip().isdigit():
            sources[int(parts[0])] = parts[1].strip()
    return sources


def pulse_capture_source(pid: int) -> str | None:
    """Name of the PulseAudio source that process ``pid``'s capture stream reads from
    (None when PulseAudio is absent or the process has no capture stream there)."""
    out = _pactl("list", "source-outputs")
    sources = pulse_sources() if out else None
    if not out or not sources:
        return None
    index: int | None = None
    for line in out.splitlines() + ["Source Output #end"]:
        text = line.strip()
        if text.startswith("Source Output #"):
            index = None
        elif text.startswith("Source:"):
            value = text.split(":", 1)[1].strip()
            index = int(value) if value.isdigit() else None
        elif (text.startswith("application.process.id") and index is not None
              and text.split("=", 1)[1].strip().strip('"') == str(pid)):
            return sources.get(index)
    return None


def pulse_default_sink() -> str | None:
    """Name of PulseAudio's default sink (the speaker), or None."""
    out = _pactl("info")
    for line in (out or "").splitlines():
        if line.startswith("Default Sink:"):
            return line.split(":", 1)[1].strip() or None
    return None
