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


def test_example_config_loads_and_covers_every_setting():
    """docs/assistant.example.toml is the page that says what goes in --config: it loads, its
    values are the defaults, and it names every section and key (set, or commented out for
    the keys whose default is unset)."""
    import dataclasses
    import re

    from assistant.config import EXAMPLE_FILE, FLAGS, AssistantConfig

    example = REPO / EXAMPLE_FILE
    assert load_toml(example) == AssistantConfig()
    text = example.read_text()
    for section in dataclasses.fields(AssistantConfig):
        body = re.search(rf"^\[{section.name}\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
        assert body, f"[{section.name}] missing from {EXAMPLE_FILE}"
        for key in dataclasses.fields(section.default_factory):
            assert re.search(rf"^(# )?{key.name} = ", body.group(1), re.M), \
                f"[{section.name}] {key.name} missing from {EXAMPLE_FILE}"
            flag = FLAGS.get((section.name, key.name))
            if flag:
                assert flag in body.group(1), f"{EXAMPLE_FILE} does not name {flag}"
    # every flag named in FLAGS is a real flag of the command
    options = {o for a in build_parser()._actions for o in a.option_strings}
    assert set(FLAGS.values()) <= options


def test_config_errors_list_what_is_valid_and_name_flags(tmp_path):
    """Keys written at the top level (as flags are spelled) or misspelled: the error says
    where each belongs and lists the valid sections and keys; range errors name the flag."""
    bad = tmp_path / "top.toml"
    bad.write_text("log_dir = 'x'\nmax_turns = 3\nno_speak = true\n")
    with pytest.raises(ConfigError) as err:
        load_toml(bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert "max_turns in [input]" in msg and "dir in [log]" in msg and "speak = false in [speech]" in msg
    assert "[input] files, text," in msg and "[emotion] model, min_confidence" in msg
    assert "docs/assistant.example.toml" in msg
    typo = tmp_path / "typo.toml"
    typo.write_text("[emotion]\nmin_confidance = 0.6\n")
    with pytest.raises(ConfigError, match=r"did you mean min_confidence in \[emotion\].*"
                                          r"valid keys in \[emotion\]: model, min_confidence"):
        load_toml(typo)
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text("[input]\nmax_turns = '3'\n")
    with pytest.raises(ConfigError, match=r"max_turns \(--max-turns\) must be a whole number"):
        load_toml(wrong_type)
    res = run_cli("--text", "--max-turns", "0")
    assert res.returncode == 2, res.stderr
    assert "--max-turns must be at least 1" in res.stderr and "max_turns" not in res.stderr
    res = run_cli("--text", "--min-confidence", "1.5")
    assert res.returncode == 2 and "--min-confidence must be between 0 and 1" in res.stderr


def test_whisper_is_the_default_engine():
    """The default config and the bare command line both pick Whisper (tiny.en, bundled)."""
    cfg = config_from_args(build_parser().parse_args([]))
    assert cfg.stt.engine == "whisper" and cfg.stt.model is None
    assert config_from_args(build_parser().parse_args(["--stt", "sphinx"])).stt.engine == "sphinx"


def test_missing_stt_model_name_is_a_clear_error(tmp_path):
    """A hub name that is not on disk (no --allow-download): one line, exit 1, no network."""
    wav = sorted((Path("/work/shared/datasets") / "ravdess" / "Actor_01").glob("*.flac"))[:1]
    if not wav:
        pytest.skip("corpora not found")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = run_cli("--input", str(wav[0]), "--stt-model", "no-such-org/no-such-whisper", "--no-speak",
                  "--plain", "--log-dir", str(tmp_path), env=env)
    assert res.returncode == 1, res.stderr
    errs = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errs) == 1 and "no-such-org/no-such-whisper" in errs[0], res.stderr
    assert "--allow-download" in errs[0] and "local_files_only" not in res.stderr
    assert "Traceback" not in res.stderr


def test_tampered_whisper_weights_are_refused_before_loading(tmp_path):
    """A copy of the bundled folder with one byte of model.bin changed: refused, one line."""
    from ser_model.whisper_model import bundled_model_dir

    src = bundled_model_dir()
    copy = tmp_path / "tampered"
    copy.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.bin").write_bytes(bytes(data))
    wav = sorted((Path("/work/shared/datasets") / "ravdess" / "Actor_01").glob("*.flac"))[:1]
    if not wav:
        pytest.skip("corpora not found")
    env = {**os.environ, "ASSISTANT_CACHE_DIR": str(tmp_path / "cache")}
    res = run_cli("--input", str(wav[0]), "--stt-model", str(copy), "--no-speak", "--plain",
                  "--log-dir", str(tmp_path / "logs"), env=env)
    assert res.returncode == 1, res.stderr
    errs = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errs) == 1, res.stderr
    assert str(copy / "model.bin") in errs[0] and "SHA-256" in errs[0] and "Traceback" not in res.stderr
    assert not list((tmp_path / "logs").glob("session-*.jsonl")), "no session ran"
    # the intact copy of the same folder is accepted by the same check
    from ser_model.whisper_model import WhisperModelError, expected_hash_for, verify_weights

    assert expected_hash_for(copy) is not None
    with pytest.raises(WhisperModelError, match="SHA-256"):
        verify_weights(copy, expected_hash_for(copy), use_cache=False)
    assert verify_weights(src, use_cache=False) == src


def test_weights_hash_verdict_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    from ser_model import whisper_model as wm

    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path))
    calls = []
    real = wm.sha256_file
    monkeypatch.setattr(wm, "sha256_file", lambda p: calls.append(p) or real(p))
    folder = wm.bundled_model_dir()
    wm.verify_weights(folder)
    wm.verify_weights(folder)
    assert len(calls) == 1 and (tmp_path / "whisper-verified.json").is_file()


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


def test_default_engine_transcribes_replayed_clips(tmp_path, datasets):
    """`assistant --input` over 20 clips of ../shared with the default engine: WER <= 0.10."""
    from bench.stt_wer import pick_clips, reference, wer

    clips = pick_clips(datasets, 20, seed=1)
    res = run_cli("--input", *map(str, clips), "--no-speak", "--plain", "--log-dir", str(tmp_path),
                  timeout=600)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip() == "", res.stderr
    turns = [line for line in read_log(tmp_path) if line["type"] == "turn"]
    assert [t["file"] for t in turns] == list(map(str, clips))
    assert all(t["stt"]["engine"] == "whisper" and "error" not in t["stt"] for t in turns)
    score = wer([(reference(Path(t["file"])), t["transcript"]) for t in turns])
    assert score <= 0.10, [(t["file"], t["transcript"]) for t in turns]


def test_whisper_says_nothing_for_silence_and_noise_and_catches_loops():
    import numpy as np

    from assistant.stt import WhisperTranscriber, _loops
    from assistant.types import Utterance

    w = WhisperTranscriber(None, background=False)
    rng = np.random.default_rng(0)
    for samples in (np.zeros(32000, np.float32), rng.normal(0, 0.02, 32000).astype(np.float32),
                    np.zeros(800, np.float32)):
        assert w.transcribe(Utterance(samples=samples)).text == ""
    assert _loops("Dogs are sitting by the door. Dogs are sitting by")
    assert _loops("Dogs are sitting by the door. Dogs are sitting by the door. Dogs are")
    assert _loops("Say the word bar. Say the word bar. Say the word bar.")
    assert not _loops("Kids are talking by the door.") and not _loops("no no no")
    # the shared model: one object for every caller in the process
    from ser_model.whisper_model import shared_whisper

    assert shared_whisper() is shared_whisper() is w._model


def _penalties(w, monkeypatch) -> list:
    """The repetition penalty of each Whisper generate call ``w`` makes from now on; the 30 s
    padded decode (~330 ms) is refused."""
    penalties = []

    class Spy:  # ctranslate2's objects are read-only: wrap them
        def __init__(self, inner, **over):
            self._inner, self._over = inner, over

        def __getattr__(self, name):
            return self._over[name] if name in self._over else getattr(self._inner, name)

    def generate(*args, **kwargs):
        penalties.append(kwargs.get("repetition_penalty"))
        return w_model.model.generate(*args, **kwargs)

    w_model = w._model
    monkeypatch.setattr(w, "_model", Spy(w_model, model=Spy(w_model.model, generate=generate)))
    monkeypatch.setattr(w, "_decode_padded", lambda s: pytest.fail("padded decode used"))
    return penalties


def test_a_looping_short_decode_is_retried_with_a_repetition_penalty(datasets, monkeypatch):
    """One actor's "Dogs are sitting by the door" loops in the short decode (the sentence
    again, cut off): the retry on the same encoder output gives the sentence once, without
    the 30 s padded decode."""
    import numpy as np
    import soundfile as sf

    from assistant.stt import WhisperTranscriber
    from assistant.types import Utterance

    y, _ = sf.read(str(datasets / "ravdess" / "Actor_04" / "03-01-03-01-02-02-04.flac"), dtype="float32")
    from bench.turn_latency import FRAME, speech_frames

    end = (np.flatnonzero(speech_frames(y))[-1] + 1) * FRAME + 1600  # 0.1 s after the speech
    w = WhisperTranscriber(None, background=False)
    penalties = _penalties(w, monkeypatch)
    text = w.transcribe(Utterance(samples=y[:end])).text
    assert text.lower().strip(".!") == "dogs are sitting by the door", text
    assert penalties == [1.0, w.LOOP_PENALTY], penalties


def test_a_sentence_said_twice_is_no_loop(datasets, monkeypatch):
    """Two people's "Kids are talking by the door", 0.25 s apart, is two sentences: the
    repeat has its pause and a speaking rate the audio holds, so it is not decoded again with
    the repetition penalty (which dropped one of them)."""
    import numpy as np

    from assistant.stt import WhisperTranscriber
    from assistant.types import Utterance
    from ser_model.audio import load_audio

    a = load_audio(str(datasets / "ravdess" / "Actor_02" / "03-01-04-01-01-02-02.flac"))
    b = load_audio(str(datasets / "ravdess" / "Actor_20" / "03-01-03-01-01-01-20.flac"))
    w = WhisperTranscriber(None, background=False)
    penalties = _penalties(w, monkeypatch)
    text = w.transcribe(Utterance(samples=np.concatenate([a, np.zeros(4000, np.float32), b]))).text
    assert text.lower().count("kids are talking by the door") == 2, text
    assert penalties == [1.0], penalties


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


def test_unknown_model_is_an_error_in_text_mode_too(tmp_path):
    """--model nonsense --text used to run a whole session: a named model that cannot be used
    is a set-up error (exit 1) in every mode, as with --input and in ser-model."""
    res = run_cli("--model", "nonsense", "--text", "--no-speak", "--log-dir", str(tmp_path), input="bye\n")
    assert res.returncode == 1, res.stderr
    errs = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errs) == 1 and "nonsense" in errs[0] and "Traceback" not in res.stderr
    assert not list(tmp_path.glob("session-*"))


def test_flags_that_do_nothing_in_the_mode_get_a_note(tmp_path):
    """Flags silently accepted where they do nothing: each gets one note, the session runs."""
    res = run_cli("--text", "--no-speak", "--device", "3", "--calibrate-seconds", "2", "--stt", "sphinx",
                  "--save-audio", "--voice", "en-us", "--log-dir", str(tmp_path), input="bye\n")
    assert res.returncode == 0, res.stderr
    for flag in ("--device", "--calibrate-seconds", "--stt", "--save-audio", "--voice"):
        assert f"note: {flag} does nothing" in res.stderr, (flag, res.stderr)
    res = run_cli("--text", "--no-speak", "--log-dir", str(tmp_path), input="bye\n")
    assert "note:" not in res.stderr


def test_idle_flag_notes_for_replay():
    from assistant.cli import idle_flag_notes

    args = build_parser().parse_args(["--input", "a.wav", "--stt", "none", "--stt-model", "x",
                                      "--device", "2", "--model", "m"])
    notes = idle_flag_notes(args, config_from_args(args))
    assert any("--device does nothing with --input" in n for n in notes)
    assert any("--stt-model does nothing with --stt none" in n for n in notes)
    assert not any("--model" in n for n in notes)  # replayed audio is heard


@pytest.mark.parametrize("case", ["empty-text", "all-missing"])
def test_a_session_without_turns_keeps_no_log(tmp_path, case):
    """--text </dev/null, or --input files none of which can be read: no 0-turn log is left in
    the history; the summary says why there is no log."""
    logs = tmp_path / "logs"
    if case == "empty-text":
        res = run_cli("--text", "--no-speak", "--log-dir", str(logs), input="")
        assert res.returncode == 0, res.stderr
    else:
        res = run_cli("--input", str(tmp_path / "a.wav"), str(tmp_path / "b.flac"), "--stt", "none",
                      "--no-speak", "--plain", "--log-dir", str(logs))
        assert res.returncode == 2, res.stderr
    assert "Session summary: 0 turn(s)" in res.stdout and "log: none (no turn to keep)" in res.stdout
    assert not list(logs.glob("session-*")) if logs.exists() else True
    hist = run_cli("history", "--log-dir", str(logs))
    assert hist.returncode == 0 and "no sessions" in hist.stdout


def test_whisper_load_errors_are_in_our_words(tmp_path, monkeypatch):
    """--allow-download with no way to download: the error said 'set HF_HUB_OFFLINE=0' or
    carried the library's 'pass local_files_only=False' advice; it names the cause instead."""
    from ser_model.whisper_model import WhisperModelError, load_failure_reason, load_whisper

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WhisperModelError) as err:
        load_whisper("no-such-org/no-such-whisper", allow_download=True)
    msg = str(err.value)
    assert "no-such-org/no-such-whisper" in msg and "HF_HUB_OFFLINE" in msg and "=0" not in msg
    monkeypatch.delenv("HF_HUB_OFFLINE")

    class ConnectError(Exception):
        pass

    assert "cannot be reached" in load_failure_reason(ConnectError("[Errno -2] Name or service not known"), "a/b")
    library = RuntimeError("An error happened while trying to locate the files on the Hub. Cannot find the "
                           "requested files in the local cache. Please check your connection, or pass "
                           "'local_files_only=False' to fetch them.")
    reason = load_failure_reason(library, "a/b")
    assert "local_files_only" not in reason and reason.startswith("An error happened")


def test_the_assistants_errors_share_one_base_said_in_one_line(tmp_path, capsys):
    from assistant import audio_io, config, history, profiles, session_log, sources, stt, tts
    from assistant.cli import main
    from assistant.errors import AssistantError

    for cls in (config.ConfigError, audio_io.NoInputDeviceError, audio_io.DeviceError,
                audio_io.AudioSystemError, sources.UtteranceError, sources.MicrophoneLost,
                stt.SttError, tts.TtsError, history.HistoryError, profiles.ProfileStoreError,
                session_log.LogLineError):
        assert issubclass(cls, AssistantError), cls
    assert main(["history", "nosuch", "--log-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"assistant: no session 'nosuch' in {tmp_path} (run 'assistant history' to list them)\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[input]\nnonsense = 1\n")
    assert main(["--config", str(bad), "--text"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("assistant: ") and err.count("\n") == 1
