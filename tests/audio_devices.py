"""A private PulseAudio daemon with a virtual microphone and a virtual speaker, for tests.

The daemon runs in its own runtime directory (no system instance, no D-Bus) with two null
sinks:

- ``vmic``: tests play audio into this sink; its monitor ``vmic.monitor`` is the default
  capture device, so anything that records from the default PortAudio input hears it;
- ``vspk``: the default playback device; tests record ``vspk.monitor`` to hear what the
  assistant said.

PortAudio reaches the daemon through the ALSA ``pulse`` plugin (Debian's
``libasound2-plugins``), so the real PyAudio capture and playback code runs. The daemon is
stopped by its PID when the test session ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

MIC_SINK = "vmic"
MIC_SOURCE = "vmic.monitor"
SPEAKER_SINK = "vspk"
SPEAKER_SOURCE = "vspk.monitor"


def _as_mono_float32(path_or_samples, sample_rate: int) -> tuple[np.ndarray, int]:
    if isinstance(path_or_samples, (str, Path)):
        import soundfile as sf

        data, sr = sf.read(str(path_or_samples), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(sr)
    samples = np.asarray(path_or_samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError("samples must be a 1-D mono array")
    return samples, int(sample_rate)


class SpeakerRecording:
    """Records the virtual speaker's monitor until :meth:`stop` is called."""

    def __init__(self, env: dict[str, str], sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self._proc = subprocess.Popen(
            ["pacat", "--record", "-d", SPEAKER_SOURCE, "--format=float32le",
             f"--rate={sample_rate}", "--channels=1", "--latency-msec=100"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while True:
            chunk = self._proc.stdout.read(4096)
            if not chunk:
                return
            self._chunks.append(chunk)

    def stop(self) -> np.ndarray:
        """Stop recording and return what was heard, mono float32 at ``sample_rate``."""
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        raw = b"".join(self._chunks)
        raw = raw[: len(raw) - len(raw) % 4]
        return np.frombuffer(raw, dtype=np.float32).copy()

    def __enter__(self) -> SpeakerRecording:
        return self

    def __exit__(self, *exc) -> None:
        if self._proc.poll() is None:
            self.stop()


class PulseRig:
    """A running private PulseAudio daemon and helpers to use its virtual devices."""

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        self.socket = runtime_dir / "pulse" / "native"
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._mic_module: str | None = None

    # -- environment -------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment that points PulseAudio clients (and PortAudio via ALSA) at this daemon."""
        env = dict(os.environ)
        env.update(self.client_vars())
        return env

    def client_vars(self) -> dict[str, str]:
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_SOURCE": MIC_SOURCE,
            "PULSE_SINK": SPEAKER_SINK,
            "PULSE_RUNTIME_PATH": str(self.runtime_dir / "pulse"),
            "JACK_NO_START_SERVER": "1",
        }

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        home = self.runtime_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(XDG_RUNTIME_DIR=str(self.runtime_dir), HOME=str(home),
                   PULSE_RUNTIME_PATH=str(self.runtime_dir / "pulse"))
        env.pop("PULSE_SERVER", None)
        self._log = open(self.runtime_dir / "pulseaudio.log", "wb")  # noqa: SIM115 (closed in stop())
        self._proc = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--use-pid-file=no",
             "--disable-shm=yes", "--log-target=stderr",
             f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
             f"--load=module-null-sink sink_name={MIC_SINK} rate=16000 channels=1",
             f"--load=module-null-sink sink_name={SPEAKER_SINK} rate=16000 channels=1",
             "--load=module-always-sink"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("pulseaudio exited at start:\n" + self.log_text())
            if self.socket.exists() and self.pactl("info", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("pulseaudio did not start in 15 s:\n" + self.log_text())
        self.pactl("set-default-source", MIC_SOURCE)
        self.pactl("set-default-sink", SPEAKER_SINK)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log_text(self) -> str:
        try:
            return (self.runtime_dir / "pulseaudio.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=10)

    # -- test helpers ------------------------------------------------------------------
    def play_into_mic(self, path_or_samples, sample_rate: int = 16000, *,
                      wait: bool = True) -> subprocess.Popen:
        """Play a file or mono float samples into the virtual microphone.

        With ``wait`` (the default) return once playback has finished; otherwise return the
        running ``pacat`` process.
        """
        samples, sr = _as_mono_float32(path_or_samples, sample_rate)
        proc = subprocess.Popen(
            ["pacat", "--playback", "-d", MIC_SINK, "--format=float32le", f"--rate={sr}",
             "--channels=1", "--latency-msec=200"],
            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env,
        )
        assert proc.stdin is not None

        def feed() -> None:
            try:
                proc.stdin.write(samples.tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass

        if wait:
            feed()
            proc.wait(timeout=60 + len(samples) / sr)
        else:
            threading.Thread(target=feed, daemon=True).start()
        return proc

    def record_speaker(self, sample_rate: int = 16000) -> SpeakerRecording:
        """Start recording the virtual speaker; call ``.stop()`` to get the samples."""
        return SpeakerRecording(self.env, sample_rate)

    def unload_mic(self) -> None:
        """Remove the virtual microphone (its sink and monitor), as if it were unplugged."""
        self.pactl("unload-module", "module-null-sink", check=False)
        # Unloading by name removes both null sinks; bring the speaker back.
        self.pactl("load-module", "module-null-sink", f"sink_name={SPEAKER_SINK}",
                   "rate=16000", "channels=1")
        self.pactl("set-default-sink", SPEAKER_SINK)

    def reload_mic(self) -> None:
        """Plug the virtual microphone back in."""
        self.pactl("load-module", "module-null-sink", f"sink_name={MIC_SINK}",
                   "rate=16000", "channels=1")
        self.pactl("set-default-source", MIC_SOURCE)


def _pulse_available() -> str | None:
    for tool in ("pulseaudio", "pactl", "pacat"):
        if shutil.which(tool) is None:
            return f"{tool} not found (run the README's test command, which installs PulseAudio)"
    return None


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseRig]:
    """A session-wide private PulseAudio daemon; this process's environment points at it."""
    missing = _pulse_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    runtime = Path(tempfile.mkdtemp(prefix="pulse-test-"))
    os.chmod(runtime, 0o700)
    rig = PulseRig(runtime)
    rig.start()
    saved = {k: os.environ.get(k) for k in rig.client_vars()}
    os.environ.update(rig.client_vars())
    try:
        yield rig
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        rig.stop()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def play_into_mic(pulse: PulseRig):
    """``play_into_mic(path_or_samples, sample_rate=16000, wait=True)``."""
    return pulse.play_into_mic


@pytest.fixture
def record_speaker(pulse: PulseRig):
    """``with record_speaker() as rec: ...; samples = rec.stop()``."""
    return pulse.record_speaker
