"""The ``assistant`` command as a user runs it: help, version, config, text mode, replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.cli import build_parser, config_from_args
from assistant.config import ConfigError, load_toml

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def shipped_bundle() -> Path | None:
    """The first model bundle in models/, or None while none has been trained."""
    models = REPO / "models"
    found = sorted(p.parent for p in models.glob("*/config.json")) if models.is_dir() else []
    return found[0] if found else None


needs_model = pytest.mark.skipif(shipped_bundle() is None,
                                 reason="no emotion model bundle in models/ yet (ser_model has not shipped one)")


def run_cli(*args, input=None, env=None, timeout=120):
    return subprocess.run([PY, "-m", "assistant.cli", *args], input=input, capture_output=True,
                          text=True, env=env or dict(os.environ), timeout=timeout, cwd=REPO)


def read_log(log_dir: Path) -> list[dict]:
    (path,) = sorted(log_dir.glob("session-*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_are_fast_and_light(flag):
    t0 = time.perf_counter()
    res = run_cli(flag)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0
    assert elapsed < 1.0, f"{flag} took {elapsed:.2f} s"
    assert ("--input" in res.stdout) if flag == "--help" else res.stdout.startswith("assistant ")


def test_cli_module_imports_nothing_heavy():
    code = ("import sys, assistant.cli; heavy = {'tensorflow', 'librosa', 'pyaudio', "
            "'speech_recognition', 'matplotlib', 'pocketsphinx', 'pyttsx3', 'numpy'}; "
            "print(sorted(heavy & set(sys.modules)))")
    res = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.stdout.strip() == "[]", res.stdout


def test_text_mode_via_stdin(tmp_path):
    res = run_cli("--text", "--no-speak", "--log-dir", str(tmp_path),
                  input="hello\nI lost my job today\nthanks\ngoodbye\nnot reached\n")
    assert res.returncode == 0, res.stderr
    assert "you lost your job today" in res.stdout
    lines = read_log(tmp_path)
    turns = [l for l in lines if l["type"] == "turn"]
    assert [t["transcript"] for t in turns] == ["hello", "I lost my job today", "thanks", "goodbye"]
    assert turns[-1]["reply"]["strategy"] == "farewell" and lines[-1]["type"] == "summary"
    assert "\x1b[" not in res.stdout  # not a terminal: plain lines


def test_config_file_then_flags(tmp_path):
    toml = tmp_path / "a.toml"
    toml.write_text('[emotion]\nmin_confidence = 0.6\n[input]\nmax_turns = 4\n[speech]\nspeak = false\n')
    args = build_parser().parse_args(["--config", str(toml), "--max-turns", "2"])
    cfg = config_from_args(args)
    assert cfg.emotion.min_confidence == 0.6  # from the file
    assert cfg.input.max_turns == 2  # the flag wins
    assert cfg.speech.speak is False
    bad = tmp_path / "b.toml"
    bad.write_text("[emotion]\nmin_confidance = 0.6\n")
    with pytest.raises(ConfigError, match="min_confidance"):
        load_toml(bad)
    res = run_cli("--config", str(bad), "--text")
    assert res.returncode == 1 and "min_confidance" in res.stderr and "Traceback" not in res.stderr


def test_whisper_without_extra_is_a_clear_error(tmp_path):
    try:
        import faster_whisper  # noqa: F401
        pytest.skip("faster-whisper is installed here")
    except ImportError:
        pass
    wav = sorted((Path("/work/shared/datasets") / "ravdess" / "Actor_01").glob("*.flac"))[:1]
    if not wav:
        pytest.skip("corpora not found")
    res = run_cli("--input", str(wav[0]), "--stt", "whisper", "--no-speak", "--log-dir", str(tmp_path))
    assert res.returncode == 1
    assert "faster-whisper" in res.stderr and "Traceback" not in res.stderr


@needs_model
def test_replay_input_files_with_real_model(tmp_path, datasets):
    files = [sorted((datasets / "ravdess" / "Actor_07").glob("*.flac"))[i] for i in (0, 20, 40)]
    files.append(sorted((datasets / "tess").rglob("*.flac"))[5])
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    res = run_cli("--input", *map(str, files[:2]), str(bad), *map(str, files[2:]),
                  "--no-speak", "--log-dir", str(tmp_path / "logs"), timeout=300)
    assert res.returncode == 2, res.stderr
    errs = [l for l in res.stderr.splitlines() if "broken.wav" in l]
    assert len(errs) == 1 and "Traceback" not in res.stderr
    lines = read_log(tmp_path / "logs")
    turns = [l for l in lines if l["type"] == "turn"]
    assert [t["file"] for t in turns] == list(map(str, files))
    for t in turns:
        assert t["type"] == "turn" and t["source"] == "file"
        assert t["transcript"].strip(), t
        emo = t["emotion"]
        assert emo is not None and emo["label"] in emo["probs"]
        assert abs(sum(emo["probs"].values()) - 1) < 1e-2
        assert emo["model_version"]
        assert t["reply"]["text"]
        assert t["latency_ms"]["ser"] > 0
    assert lines[-1]["type"] == "summary" and lines[-1]["failed_inputs"] == 1


@pytest.mark.parametrize("word", ["quit", "Exit", "stop.", "that's all", "goodbye"])
def test_end_words_end_a_typed_session(tmp_path, word):
    res = run_cli("--text", "--no-speak", "--log-dir", str(tmp_path), input=f"hello\n{word}\nnot reached\n")
    assert res.returncode == 0, res.stderr
    turns = [line for line in read_log(tmp_path) if line["type"] == "turn"]
    assert [t["transcript"] for t in turns] == ["hello", word]


def test_end_of_input_ctrl_d_ends_a_typed_session_cleanly(tmp_path):
    res = run_cli("--text", "--no-speak", "--log-dir", str(tmp_path), input="hello\nI feel fine")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    lines = read_log(tmp_path)
    assert [t["transcript"] for t in lines if t["type"] == "turn"] == ["hello", "I feel fine"]
    assert lines[-1]["type"] == "summary"


def test_text_and_input_together_is_a_usage_error_2(tmp_path):
    res = run_cli("--text", "--input", str(tmp_path / "a.wav"), "--log-dir", str(tmp_path), input="")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("assistant: error: --text and --input")
    assert not list(tmp_path.glob("session-*"))


def test_help_states_the_exit_convention():
    res = run_cli("--help")
    assert "130 interrupted" in res.stdout and "2 usage error" in res.stdout
