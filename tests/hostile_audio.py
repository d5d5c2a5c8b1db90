"""Generators of hostile and edge-case audio files, and helpers shared by the hardening suites.

Everything is synthesised into a folder the caller gives (a pytest tmp dir); nothing is
downloaded and no corpus audio is copied. Used by tests/test_hostile_inputs.py,
tests/test_faults.py, tests/test_privacy.py, tests/test_soak.py and bench/soak.py.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ASSISTANT = str(VENV_BIN / "assistant")
SER_MODEL = str(VENV_BIN / "ser-model")

RATE = 16000


def _real_speech_16k() -> np.ndarray | None:
    """One RAVDESS sentence (Actor_01, neutral), 16 kHz float32, or None without the corpora."""
    root = Path(os.environ.get("SER_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    clips = sorted((root / "ravdess" / "Actor_01").glob("03-01-01-01-01-01-01.*"))
    if not clips:
        return None
    import soundfile as sf

    y, sr = sf.read(str(clips[0]), dtype="float32", always_2d=False)
    if sr != RATE:
        return None
    loud = np.flatnonzero(np.abs(y) > 0.05 * float(np.max(np.abs(y))))  # the sentence, not its silences
    return y[loud[0]:loud[-1] + 1]


def speechlike(seconds: float, rate: int = RATE, *, f0: float = 140.0, seed: int = 0,
               channels: int = 1) -> np.ndarray:
    """Real speech (a RAVDESS sentence, repeated to ``seconds``) at ``rate`` when the corpora
    are there, since the assistant's VAD rightly calls a synthetic signal no speech; otherwise
    a voiced, syllable-modulated harmonic signal. float32, frames x channels when channels > 1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    real = _real_speech_16k()
    if real is not None:
        if rate != RATE:
            import soxr

            real = soxr.resample(real, RATE, rate).astype(np.float32)
        y = np.tile(real, n // len(real) + 1)[:n].astype(np.float32)
    else:
        t = np.arange(n) / rate
        pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        y = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < rate / 2.2)
        env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
        y = (0.2 * y * env + 0.003 * rng.standard_normal(t.size)).astype(np.float32)
    if channels > 1:
        y = np.stack([y * (0.6 + 0.4 * c / channels) for c in range(channels)], axis=1)
    return y


def _write(path: Path, data: np.ndarray, rate: int, **kw) -> Path:
    import soundfile as sf

    sf.write(str(path), data, rate, **kw)
    return path


@dataclass(frozen=True)
class Hostile:
    """One generated file and what a correct program must do with it."""

    name: str
    path: Path
    expect: str
    """``error`` (unreadable: one stderr line with a reason), ``nospeech`` (readable, but no
    speech: "no speech detected", never an emotion), or ``ok`` (an emotion is reported)."""
    reason: str = ""
    """Regex the stderr line must match (case-insensitive) besides the file name."""


def make_unreadable_files(d: Path) -> list[Hostile]:
    """Files that cannot be decoded at all."""
    d.mkdir(parents=True, exist_ok=True)
    out: list[Hostile] = []
    p = d / "zero_bytes.wav"
    p.write_bytes(b"")
    out.append(Hostile("zero_bytes", p, "error", r"empty"))
    # A WAV header cut in the middle of the fmt chunk.
    full = d / "_full.wav"
    _write(full, speechlike(0.5), RATE, subtype="PCM_16")
    p = d / "truncated_header.wav"
    p.write_bytes(full.read_bytes()[:30])
    full.unlink()
    out.append(Hostile("truncated_header", p, "error", r"unreadable|not an audio|header|error|format"))
    p = d / "random_bytes.wav"
    p.write_bytes(np.random.default_rng(3).integers(0, 256, 48000, dtype=np.uint8).tobytes())
    out.append(Hostile("random_bytes", p, "error", r"not an audio|unrecognised|format"))
    p = d / "text_file.wav"
    p.write_text("this is not audio, it is a shopping list\n" * 50)
    out.append(Hostile("text_file", p, "error", r"not an audio|unrecognised|format"))
    p = d / "a_directory.wav"
    p.mkdir()
    out.append(Hostile("directory", p, "error", r"directory"))
    p = d / "missing.wav"
    out.append(Hostile("missing", p, "error", r"no such file|not found|does not exist"))
    # A WAV whose header is intact but holds zero frames.
    p = d / "empty_audio.wav"
    _write(p, np.zeros(0, dtype=np.float32), RATE, subtype="PCM_16")
    out.append(Hostile("empty_audio", p, "error|nospeech", r"empty|0 samples|no speech"))
    # Every sample NaN / Inf in a float WAV.
    p = d / "all_nan.wav"
    _write(p, np.full(RATE, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    out.append(Hostile("all_nan", p, "error|nospeech", r"finite|nan|no speech"))
    return out


def make_nospeech_files(d: Path) -> list[Hostile]:
    """Readable audio with nothing to recognise: too short, silent, DC only."""
    d.mkdir(parents=True, exist_ok=True)
    out = []
    p = _write(d / "one_sample.wav", np.array([0.3], dtype=np.float32), RATE, subtype="PCM_16")
    out.append(Hostile("one_sample", p, "nospeech|error", r"no speech|empty|short"))
    p = _write(d / "ten_ms.wav", speechlike(0.010), RATE, subtype="PCM_16")
    out.append(Hostile("ten_ms", p, "nospeech|error", r"no speech|short"))
    p = _write(d / "digital_silence_3s.wav", np.zeros(3 * RATE, dtype=np.float32), RATE, subtype="PCM_16")
    out.append(Hostile("digital_silence", p, "nospeech", r"no speech"))
    near = (1e-4 * np.random.default_rng(5).standard_normal(3 * RATE)).astype(np.float32)  # -80 dBFS
    p = _write(d / "near_silence_3s.wav", near, RATE, subtype="FLOAT")
    out.append(Hostile("near_silence", p, "nospeech", r"no speech"))
    p = _write(d / "dc_offset_3s.wav", np.full(3 * RATE, 0.4, dtype=np.float32), RATE, subtype="PCM_16")
    out.append(Hostile("dc_offset", p, "nospeech", r"no speech"))
    return out


def make_readable_variants(d: Path) -> list[Hostile]:
    """Unusual but valid audio that must give an emotion."""
    import soundfile as sf

    d.mkdir(parents=True, exist_ok=True)
    out = []
    t = np.arange(2 * RATE) / RATE
    square = np.sign(np.sin(2 * np.pi * 150 * t)).astype(np.float32)  # full-scale, clipped
    y = speechlike(2.0)
    y_dc = np.clip(y + 0.3, -1, 1)
    out.append(Hostile("speech_plus_dc", _write(d / "speech_plus_dc.wav", y_dc, RATE, subtype="PCM_16"), "ok"))
    bad = y.copy()
    bad[1000:1100] = np.nan
    bad[5000:5010] = np.inf
    bad[9000:9010] = -np.inf
    out.append(Hostile("nan_inf_float", _write(d / "nan_inf_float.wav", bad, RATE, subtype="FLOAT"), "ok"))
    out.append(Hostile("rate_8k", _write(d / "rate_8k.wav", speechlike(2.0, 8000), 8000, subtype="PCM_16"), "ok"))
    out.append(Hostile("rate_96k", _write(d / "rate_96k.wav", speechlike(2.0, 96000), 96000, subtype="PCM_24"), "ok"))
    out.append(Hostile("pcm_u8", _write(d / "pcm_u8.wav", y, RATE, subtype="PCM_U8"), "ok"))
    out.append(Hostile("float32", _write(d / "float32.wav", y, RATE, subtype="FLOAT"), "ok"))
    out.append(Hostile("stereo", _write(d / "stereo.wav", speechlike(2.0, channels=2), RATE, subtype="PCM_16"), "ok"))
    out.append(
        Hostile("six_channels", _write(d / "six_ch.wav", speechlike(2.0, channels=6), RATE, subtype="PCM_16"), "ok")
    )
    formats = sf.available_formats()
    out.append(Hostile("flac", _write(d / "clip.flac", y, RATE, format="FLAC"), "ok"))
    if "OGG" in formats:
        out.append(Hostile("ogg", _write(d / "clip.ogg", y, RATE, format="OGG", subtype="VORBIS"), "ok"))
    if "MP3" in formats:
        out.append(Hostile("mp3", _write(d / "clip.mp3", y, RATE, format="MP3", subtype="MPEG_LAYER_III"), "ok"))
    # Last: the assistant's VAD calls a square wave no speech (ser-model still gives an emotion),
    # so the tests that take the first readable files get speech.
    out.append(Hostile("clipped_square", _write(d / "clipped_square.wav", square, RATE, subtype="PCM_16"), "ok"))
    return out


def make_long_file(path: Path, minutes: float = 10.0, *, rate: int = RATE) -> Path:
    """A long 16-bit WAV of alternating speech-like sound and silence, written in blocks
    (the generator itself never holds the whole file)."""
    import soundfile as sf

    block = speechlike(4.0, rate)
    gap = np.zeros(2 * rate, dtype=np.float32)
    total = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            piece = np.concatenate([block, gap])[: total - done]
            f.write(piece)
            done += len(piece)
    return path


# -- subprocess helpers -----------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SER_MODEL_BUNDLE", None)
    if extra:
        env.update(extra)
    return env


def run_cli(args: list[str], *, timeout: float = 240, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=env or child_env(), cwd=str(cwd) if cwd else None)


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \".*\", line \d+", re.M)


def assert_no_traceback(text: str) -> None:
    assert not TRACEBACK.search(text), f"traceback in output:\n{text[-3000:]}"


def read_jsonl(path: Path) -> list[dict]:
    """Parse every line; fail on a partial or invalid line."""
    import json

    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"{path} ends with a partial line: {raw[-200:]!r}"
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def session_logs(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("session-*.jsonl"))


# -- /proc sampling ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) and thread count of ``pid`` from /proc, plus its open fds."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
            elif key == "Threads":
                out[key] = int(value)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def tree_peak_rss_kb(pid: int) -> int:
    """Peak RSS (VmHWM, kB) of ``pid`` read just now; 0 if it is gone."""
    try:
        return proc_status(pid).get("VmHWM", 0)
    except (FileNotFoundError, ProcessLookupError):
        return 0


def run_measuring_peak_rss(args: list[str], *, timeout: float = 300,
                           env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``args`` and return (completed, peak RSS in MiB of the process itself).

    The peak comes from ``resource.getrusage(RUSAGE_CHILDREN)`` in a fresh helper process
    that only runs this one child, so earlier children do not count. (``ru_maxrss`` of the
    children is the largest among them; the helper runs only one.)
    """
    helper = (
        "import resource, subprocess, sys, json\n"
        "try:\n"
        "    p = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))\n"
        "except subprocess.TimeoutExpired as e:\n"
        "    p = subprocess.CompletedProcess(e.cmd, -9, '', f'timed out after {e.timeout} s')\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "sys.stdout.write(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr,"
        " 'maxrss_kb': ru.ru_maxrss}))\n"
    )
    import json

    done = subprocess.run([sys.executable, "-c", helper, str(max(1.0, timeout - 15)), *args],
                          capture_output=True, text=True, timeout=timeout, env=env or child_env())
    data = json.loads(done.stdout)
    cp = subprocess.CompletedProcess(args, data["rc"], data["out"], data["err"])
    return cp, data["maxrss_kb"] // 1024


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wav_pcm16(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """A minimal hand-written PCM16 WAV (no soundfile needed)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(pcm))
    path.write_bytes(header + pcm)
    return path


# -- the model --------------------------------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random bundle (tests/test_bundle.make_tiny_bundle), built once per test session
    in a child process (keeps TensorFlow out of this one). ``$HARDENING_MODEL`` (a bundle
    folder, e.g. models/ser-crnn-v2) replaces it, to run the suites on the shipped model."""
    override = os.environ.get("HARDENING_MODEL")
    if override:
        return Path(override).resolve()
    root = tmp_path_factory.getbasetemp() / "hardening-bundle"
    bundle = root / "tiny-v1"
    if not (bundle / "config.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        code = ("import sys; from pathlib import Path; from tests.test_bundle import make_tiny_bundle; "
                "make_tiny_bundle(Path(sys.argv[1]))")
        subprocess.run([sys.executable, "-c", code, str(root)], check=True, cwd=str(REPO_ROOT),
                       env=child_env(), capture_output=True, timeout=300)
    return bundle


# -- a running assistant ----------------------------------------------------------------

import signal  # noqa: E402
import threading  # noqa: E402

STACKS_ENV = "ASSISTANT_STACKS_ON_SIGUSR1"  # assistant.cli.STACKS_ENV (not imported: keeps tests light)


class Watched:
    """An ``assistant`` subprocess whose stdout and stderr are collected line by line in the
    background. When :meth:`wait_out` times out, the assistant is asked for every thread's
    stack (SIGUSR1, see ``assistant.cli.STACKS_ENV``), so the failure shows where it stalled."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None) -> None:
        env = dict(env or child_env())
        env[STACKS_ENV] = "1"
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, cwd=str(REPO_ROOT))
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf: list[str]) -> None:
        for line in stream:
            buf.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_out(self, needle: str, timeout: float, *, count: int = 1) -> bool:
        if wait_for(lambda: self.stdout.count(needle) >= count, timeout):
            return True
        self.dump_stacks()
        return False

    def dump_stacks(self) -> None:
        """Have the running assistant print its threads' stacks to stderr (see :attr:`stderr`)."""
        if self.proc.poll() is not None:
            return
        before = len(self.err)
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: any("Thread 0x" in line or "Current thread" in line for line in self.err[before:]), 5)
        time.sleep(0.2)  # the rest of the dump

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.proc.kill()
            self.proc.wait()
            for t in self._threads:
                t.join(timeout=5)
            raise AssertionError(
                f"did not exit in {timeout} s; stdout:\n{self.stdout[-2000:]}\nstderr:\n{self.stderr[-2000:]}"
            ) from err
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def corpus_clips(datasets: Path, n: int, *, corpus: str = "ravdess", start: int = 0) -> list[Path]:
    """``n`` real clips (sorted, deterministic), cycling if the corpus has fewer."""
    files = sorted((datasets / corpus).rglob("*.flac"))
    assert files, f"no clips under {datasets / corpus}"
    return [files[(start + i) % len(files)] for i in range(n)]
