"""The assistant's voice profiles: where they live, how they are kept, and causal adaptation."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.emotion import EmotionEngine
from assistant.profiles import ProfileStore, ProfileStoreError, check_user, default_user
from ser_model.profile import VoiceProfile
from ser_model.result import EmotionResult

PY = sys.executable


class FakeRecognizer:
    """Stands in for EmotionRecognizer: its 'feature' is the utterance's mean, and it records
    the profile count it scored each utterance with."""

    supports_profiles = True
    model_version = "fake-v1"

    def __init__(self, feature_id: str = "fake:dim=2") -> None:
        self.feature_id = feature_id
        self.seen: list[int] = []

    def new_profile(self) -> VoiceProfile:
        return VoiceProfile.new(self.feature_id, 2)

    def predict(self, samples, sample_rate, profile=None, *, learn=False):
        self.seen.append(profile.count if profile is not None else -1)
        if learn and profile is not None:
            profile.add(np.array([float(np.mean(samples)), float(np.std(samples))]))
        return EmotionResult("neutral", 0.9, {"neutral": 0.9, "sad": 0.1}, self.model_version)


def test_user_names_that_cannot_escape_the_folder():
    assert check_user("sam.o-k_1") == "sam.o-k_1"
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65, "a b"):
        with pytest.raises(ProfileStoreError):
            check_user(bad)
    assert check_user(default_user())


def test_engine_scores_before_it_learns_and_saves_each_turn(tmp_path: Path):
    store = ProfileStore("sam", tmp_path / "profiles")
    rec = FakeRecognizer()
    engine = EmotionEngine(lambda: rec, profiles=store)
    rng = np.random.default_rng(0)
    clips = []
    for i in range(3):
        y = rng.normal(0, 0.1, 16000).astype(np.float32)
        clips.append(y)
        assert engine.predict(y, 16000) is not None
        assert engine.profile_clips == i  # the count that scored this turn, before it was added
        assert VoiceProfile.load(store.path).count == i + 1
    assert rec.seen == [0, 1, 2]
    saved = json.loads(store.path.read_text())
    assert set(saved) == {"format", "feature_id", "dim", "count", "mean", "m2"}  # no audio, no words
    assert np.allclose(saved["mean"], np.mean([[c.mean(), c.std()] for c in clips], axis=0))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700

    # The next session starts from the stored profile.
    again = EmotionEngine(lambda: FakeRecognizer(), profiles=store)
    again.predict(clips[0], 16000)
    assert again.profile_clips == 3 and again.take_notices() == []


def test_a_profile_of_another_model_is_set_aside_not_used(tmp_path: Path):
    store = ProfileStore("sam", tmp_path)
    old = VoiceProfile.new("other-encoder:dim=2", 2)
    old.add(np.array([1.0, 2.0]))
    store.save(old)
    engine = EmotionEngine(lambda: FakeRecognizer(), profiles=store)
    engine.predict(np.zeros(16000, np.float32) + 0.01, 16000)
    assert engine.profile_clips == 0
    (notice,) = engine.take_notices()
    assert "another emotion model" in notice and "\n" not in notice
    assert (tmp_path / "sam.json.old").is_file()
    assert VoiceProfile.load(store.path).feature_id == "fake:dim=2"


def test_an_unreadable_profile_is_kept_aside_with_one_line(tmp_path: Path):
    store = ProfileStore("sam", tmp_path)
    store.path.write_text("{not json")
    engine = EmotionEngine(lambda: FakeRecognizer(), profiles=store)
    engine.predict(np.ones(16000, np.float32) * 0.01, 16000)
    (notice,) = engine.take_notices()
    assert "unreadable" in notice and "\n" not in notice
    assert (tmp_path / "sam.json.bad").read_text() == "{not json"


def test_without_a_store_or_support_nothing_adapts(tmp_path: Path):
    rec = FakeRecognizer()
    engine = EmotionEngine(lambda: rec, profiles=None)
    engine.predict(np.ones(100, np.float32), 16000)
    assert rec.seen == [-1] and engine.profile_clips is None

    class Old(FakeRecognizer):
        supports_profiles = False

    old = Old()
    engine = EmotionEngine(lambda: old, profiles=ProfileStore("sam", tmp_path))
    engine.predict(np.ones(100, np.float32), 16000)
    assert old.seen == [-1] and not (tmp_path / "sam.json").exists()


def test_profile_show_and_reset_commands(tmp_path: Path, _private_user_data: Path):
    def cli(*args):
        return subprocess.run([PY, "-m", "assistant.cli", *args], capture_output=True, text=True, timeout=60)

    done = cli("profile", "show", "--user", "sam")
    assert done.returncode == 0 and "none yet" in done.stdout
    store = ProfileStore.for_user("sam")
    assert store.path.is_relative_to(_private_user_data)
    profile = VoiceProfile.new("fake:dim=2", 2)
    for v in ([1.0, 2.0], [3.0, 4.0]):
        profile.add(np.array(v))
    store.save(profile)
    done = cli("profile", "show", "--user", "sam")
    assert done.returncode == 0, done.stderr
    assert "utterances: 2 (still learning" in done.stdout and "no audio, no words" in done.stdout
    done = cli("profile", "reset", "--user", "sam")
    assert done.returncode == 0 and "deleted" in done.stdout and not store.path.exists()
    done = cli("profile", "show", "--user", "../etc")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    store.path.write_text("[]")
    done = cli("profile", "show", "--user", "sam")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "profile reset" in done.stderr


def test_threshold_is_the_users_then_the_models_then_the_default():
    from assistant import config as cfgmod
    from assistant.loop import Session

    class Rec(FakeRecognizer):
        def __init__(self) -> None:
            super().__init__()
            self.config = {"min_confidence": 0.62}

    session = Session(cfgmod.AssistantConfig(), ui=None)
    assert session._threshold() == cfgmod.DEFAULT_MIN_CONFIDENCE  # no model yet
    session.recognizer = EmotionEngine(lambda: Rec(), profiles=None)
    session.recognizer.wait()
    assert session._threshold() == 0.62
    mine = Session(cfgmod.replace(cfgmod.AssistantConfig(), emotion={"min_confidence": 0.3}), ui=None)
    mine.recognizer = session.recognizer
    assert mine._threshold() == 0.3


def _run(*args, timeout=300):
    from tests.hostile_audio import ASSISTANT, child_env

    return subprocess.run([ASSISTANT, *args], capture_output=True, text=True, timeout=timeout, env=child_env())


def test_the_shipped_model_adapts_causally_in_a_real_session(tmp_path: Path, datasets, _private_user_data: Path):
    """Default model, three held clips: each turn is logged with the count that scored it
    (0, 1, 2); the file then holds 3 utterances and none of the words that were said."""
    from tests.hostile_audio import corpus_clips, read_jsonl, session_logs

    clips = corpus_clips(datasets, 3, start=40)
    done = _run("--input", *map(str, clips), "--no-speak", "--plain", "--user", "tester",
                "--log-dir", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr
    assert "still learning your voice: 0/10" in done.stdout
    records = read_jsonl(session_logs(tmp_path / "logs")[0])
    turns = [r for r in records if r["type"] == "turn"]
    assert [t["voice_profile"]["clips"] for t in turns] == [0, 1, 2]
    assert records[0]["adapt"] is True
    path = _private_user_data / "empathetic-assistant" / "profiles" / "tester.json"
    saved = json.loads(path.read_text())
    assert saved["count"] == 3 and stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text().lower()
    for t in turns:
        for word in t["transcript"].lower().strip(".!?").split():
            assert f'"{word}"' not in text
    shown = _run("profile", "show", "--user", "tester")
    assert shown.returncode == 0 and "utterances: 3" in shown.stdout

    # --no-adapt: nothing read, nothing written, nothing logged about a profile
    other = _run("--input", *map(str, clips[:1]), "--no-speak", "--plain", "--user", "nobody", "--no-adapt",
                 "--log-dir", str(tmp_path / "logs2"))
    assert other.returncode == 0, other.stderr
    (turn,) = [r for r in read_jsonl(session_logs(tmp_path / "logs2")[0]) if r["type"] == "turn"]
    assert "voice_profile" not in turn
    assert not (path.parent / "nobody.json").exists()


def test_calibrate_from_recordings_fills_the_profile(tmp_path: Path, datasets, _private_user_data: Path):
    from tests.hostile_audio import corpus_clips

    clips = corpus_clips(datasets, 4, start=60)
    done = _run("calibrate", "--user", "cal", "--input", *map(str, clips))
    assert done.returncode == 0, done.stderr
    assert "4 utterances" in done.stdout
    path = _private_user_data / "empathetic-assistant" / "profiles" / "cal.json"
    assert json.loads(path.read_text())["count"] == 4
    silence = tmp_path / "silence.wav"
    import soundfile as sf

    sf.write(str(silence), np.zeros(16000, np.float32), 16000)
    bad = _run("calibrate", "--user", "cal2", "--input", str(silence))
    assert bad.returncode == 2 and "nothing was added" in bad.stderr and "Traceback" not in bad.stderr
