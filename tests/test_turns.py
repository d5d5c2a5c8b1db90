"""Turn-taking: silence is no turn (issue 14 item 3), the VAD endpointer, and barge-in on the rig."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from assistant import vad
from assistant.types import Transcript
from tests.test_assistant_cli import REPO, read_log, run_cli


@pytest.mark.parametrize("engine", ["whisper", "sphinx"])
def test_digital_silence_file_is_no_turn(tmp_path, engine):
    import soundfile as sf

    silence = tmp_path / "silence.wav"
    sf.write(str(silence), np.zeros(32000, np.float32), 16000)
    res = run_cli("--input", str(silence), "--no-speak", "--stt", engine, "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    assert "you:" not in res.stdout and "assistant" not in res.stdout.split("Session summary")[0].lower()
    assert "no speech" in res.stderr and "Traceback" not in res.stderr
    lines = read_log(tmp_path / "logs")
    assert not [l for l in lines if l["type"] == "turn"]
    (event,) = [l for l in lines if l["type"] == "no_speech"]
    assert event["file"] == str(silence) and event["audio_seconds"] == 2.0


def test_has_speech_on_real_speech_silence_and_noise(datasets):
    import soundfile as sf

    y, _ = sf.read(str(sorted((datasets / "ravdess" / "Actor_01").glob("*.flac"))[0]), dtype="float32")
    assert vad.has_speech(y)
    assert not vad.has_speech(np.zeros(32000, np.float32))
    assert not vad.has_speech(np.random.default_rng(0).normal(0, 1e-3, 32000).astype(np.float32))


@pytest.mark.parametrize(("text", "goes_on"), [
    ("Kids are talking by the", True), ("I went there and", True), ("um", True), ("so,", True),
    ("Kids are talking by the door.", False), ("Kids are talking", True), ("Fine!", False),
    ("the door.", False), ("", False)])
def test_continues(text, goes_on):
    assert vad.continues(text) is goes_on


def test_a_sentence_end_whisper_doubts_does_not_end_the_turn():
    assert vad.continues("Kids are talking.", end_prob=0.4)
    assert not vad.continues("Kids are talking.", end_prob=0.8)
    assert vad.continues("Kids are talking by the", end_prob=0.9)  # the words still go on


def test_a_last_word_with_no_audio_under_it_does_not_end_the_turn():
    # "Kids are talking by the |" decoded as "... by the door." at the pause: "door" not said yet
    assert vad.continues("Kids are talking by the door.", end_prob=0.9, last_word_s=0.07)
    assert not vad.continues("Kids are talking by the door.", end_prob=0.9, last_word_s=0.35)
    assert not vad.continues("Kids are talking by the door.", end_prob=0.9, last_word_s=None)


def _heard(text: str, end_prob: float | None = None, last_word_s: float | None = None) -> Transcript:
    return Transcript(text=text, engine="whisper", end_prob=end_prob, last_word_s=last_word_s)


class _ScriptVad(vad.Vad):
    """Voiced where the frame's first sample is 1."""

    name = "script"

    def prob(self, frame):
        return float(frame[0])


def _run(pattern: str, words=None, settings=None) -> list[tuple[int, str]]:
    ep = vad.Endpointer(_ScriptVad(), settings or vad.EndpointSettings())
    out = []
    for i, c in enumerate(pattern):
        e = ep.push(np.full(512, 1.0 if c == "#" else 0.0, np.float32))
        if e == "pause" and words is not None:
            ep.words = words
        if e:
            out.append((i, e))
        if e == "end":
            break
    return out


def test_endpointer_hangover_and_continuation():
    # 32 ms frames: onset after 2 voiced, pause after 4 silent (0.128 s), end at 10 (0.32 s)
    speech = "." * 5 + "#" * 20 + "." * 40
    assert _run(speech) == [(6, "start"), (28, "pause"), (34, "end")]
    # words that go on: the pause may last continue_s (0.9 s: 29 frames)
    assert _run(speech, words=lambda: _heard("Kids are talking by the"))[-1] == (53, "end")
    # a finished sentence, unless Whisper doubted its full stop
    assert _run(speech, words=lambda: _heard("Kids are talking.", 0.9))[-1] == (34, "end")
    assert _run(speech, words=lambda: _heard("Kids are talking.", 0.2))[-1] == (53, "end")
    # ... or its last word has (next to) no audio under it
    assert _run(speech, words=lambda: _heard("Kids are talking by the door.", 0.9, 0.05))[-1] == (53, "end")
    assert _run(speech, words=lambda: _heard("Kids are talking by the door.", 0.9, 0.4))[-1] == (34, "end")
    # a decode still running: wait for it, at most until continue_s
    assert _run(speech, words=lambda: None)[-1] == (53, "end")
    # a short pause inside speech does not end the turn
    assert [e for _, e in _run("#" * 10 + "." * 6 + "#" * 10 + "." * 20)] == ["start", "pause", "pause", "end"]


@pytest.mark.audio
def test_unfinished_sentence_stays_one_turn_and_barge_in_stops_reply(pulse, datasets, tmp_path):
    """On the rig: 'Kids are | talking by the door' with a 500 ms pause is one turn (the reply
    begins after the user went on; "Kids are talking by the | door" is cut there: Whisper
    hears "door" in "the d-" before the pause, `bench/turn_latency.py --clips unfinished`); then, with
    --barge-in, speech injected while the reply plays stops it within 200 ms."""
    from bench.turn_latency import FRAME, RATE, Recorder, voiced_frames
    from tests.audio_devices import MIC_SOURCE, SPEAKER_SOURCE
    from tests.joined_clips import _trim, unfinished_clips

    clip = next(c for c in unfinished_clips(datasets, 9) if c.cut_after.endswith("are") and c.pause_ms == 500)
    mic, spk = Recorder(pulse.env, MIC_SOURCE), Recorder(pulse.env, SPEAKER_SOURCE)
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "--plain", "--barge-in", "--max-turns", "2",
                             "--log-dir", str(tmp_path / "logs")], cwd=REPO, env=pulse.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "[listening]" in line:
                break
        time.sleep(0.3)
        played_at = mic.now_index()
        pulse.play_into_mic(clip.samples)
        # wait for the reply to start on the speaker, then talk over it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if spk.now_index() > 0 and voiced_frames(np.frombuffer(b"".join(spk._chunks)[-8000 * 4:], np.float32)
                                                     [: 8000 // FRAME * FRAME]).any():
                break
        time.sleep(0.4)
        import soundfile as sf

        y, _ = sf.read(str(sorted((datasets / "ravdess" / "Actor_04").glob("*.flac"))[2]), dtype="float32")
        # without the clip's ~1 s of leading silence: the speech must start while the reply
        # (2.1 s) still plays, however soon after the turn the reply came
        pulse.play_into_mic(_trim(y))
        time.sleep(4)
        proc.terminate()
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        heard_mic, heard_spk = mic.stop(), spk.stop()
    turns = [l for l in read_log(tmp_path / "logs") if l["type"] == "turn"]
    assert turns and "door" in turns[0]["transcript"].lower(), (turns, err)  # one turn, not cut at "the"
    # the log's endpoint record: the 500 ms pause started a speculative decode, and the turn
    # ended after the hang-over of silence
    ep = turns[0]["endpoint"]
    assert ep["pauses"] >= 1 and ep["silence_s"] >= 0.25, ep
    barge = turns[0]["speech"].get("barge_in")
    assert barge is not None, (turns[0]["speech"], err)
    # measured on the recordings: the injected speech's onset on the mic, the reply's last sound
    vm, vs = voiced_frames(heard_mic), voiced_frames(heard_spk)
    offset = (spk.t0 - mic.t0) * RATE / FRAME
    reply_on = np.flatnonzero(vs)
    assert len(reply_on), "the reply never sounded on the virtual speaker"
    reply_start = reply_on[0] + offset  # in microphone frames
    # one turn: the reply began after the user went on past the pause (a turn that ended in
    # the pause can still hold "door" when Whisper completes "by the d-")
    from bench.turn_latency import _resume_sample

    assert reply_start * FRAME > played_at + _resume_sample(clip.samples), "the reply began in the pause"
    # the barge-in: the first speech on the microphone once the reply sounds (the sentence's own
    # 500 ms pause lies before it, so it cannot be mistaken for an onset)
    later = [i for i in np.flatnonzero(vm) if i > reply_start]
    assert later, "no speech reached the microphone while the reply played"
    onset = later[0]
    i = int(onset - offset)  # speaker frame at the onset: the reply sounds until its first 200 ms gap
    while i < len(vs) and vs[i:i + 10].any():
        i += 1
    stop_ms = ((i + offset) - onset) * FRAME / RATE * 1000
    print(f"barge-in: reply stopped {stop_ms:.0f} ms after speech onset (log: {barge})")
    assert stop_ms <= 200, stop_ms


def test_the_gate_hears_loud_and_sad_speech_the_loader_prepared(datasets):
    """Two strong-intensity RAVDESS clips (angry, sad), trimmed by the loader, were taken for
    no speech by the endpointer's rule and silently dropped from a replay: real speech must
    pass the gate, while noise, tones, DC and clicks must not."""
    from assistant.sources import _load_audio

    for name in ("Actor_14/03-01-05-02-02-01-14.flac", "Actor_04/03-01-04-02-02-01-04.flac"):
        assert vad.has_speech(_load_audio(str(datasets / "ravdess" / name))), name
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    for y in (rng.normal(0, 0.1, 32000), 0.3 * np.sin(2 * np.pi * 440 * t), 0.2 + rng.normal(0, 1e-3, 32000),
              (rng.random(32000) > 0.999) * 0.8):
        assert not vad.has_speech(y.astype(np.float32))


def _endpoint(y: np.ndarray, offset: int = 0, settings=None, lead: int = 16000) -> list[tuple[float, str]]:
    """Events (time in the clip, s) for ``y`` after ``lead`` (+ ``offset``) samples of silence."""
    x = np.concatenate([np.zeros(lead + offset, np.float32), y, np.zeros(24000, np.float32)])
    v = vad.make_vad("silero")
    ep = vad.Endpointer(v, settings or vad.EndpointSettings())
    out = []
    for i in range(0, len(x) - 512, 512):
        e = ep.push(x[i:i + 512])
        if e in ("start", "end"):
            out.append(((i + 512 - lead - offset) / 16000, e))
        if e == "end":
            break
    return out


def _speech_end(y: np.ndarray) -> float:
    """End of the speech in ``y`` as bench/turn_latency.py measures it (s)."""
    from bench.turn_latency import FRAME, speech_frames

    return (np.flatnonzero(speech_frames(y))[-1] + 1) * FRAME / 16000


@pytest.mark.audio
def test_a_shouted_sentence_stays_one_utterance_at_every_frame_alignment(datasets):
    """Silero scores parts of this shouted clip 0.1-0.5. Depending on where the 32 ms frames
    fall, "Kids are" ended the utterance and "talking by the door" came as another, or the
    onset came 0.8 s late, after the pre-roll (9 of 64 alignments): the rig test's "Talking
    by the door!" and "They're talking by the door!". Loud frames, Silero's hysteresis and
    the onset's run rule keep it whole and on time."""
    import soundfile as sf

    y, _ = sf.read(str(datasets / "ravdess" / "Actor_06" / "03-01-05-02-01-01-06.flac"), dtype="float32")
    first = np.flatnonzero(np.abs(y) > 0.05)[0] / 16000
    end = _speech_end(y)
    for lead in (5000, 16000):
        for offset in range(0, 512, 16):
            events = _endpoint(y, offset, lead=lead)
            assert [e for _, e in events] == ["start", "end"], (lead, offset, events)
            assert events[0][0] - first < 0.3, (lead, offset, events, first)
            assert events[-1][0] > end, (lead, offset, events, end)


@pytest.mark.audio
def test_the_turn_ends_soon_after_the_last_word_and_noise_does_not_hold_it(datasets):
    """Silero stays voiced ~110 ms past the last word; frames 30 dB under the utterance's
    loudest count as silence, so the end comes sooner (measured against the rule without)."""
    import soundfile as sf

    files = sorted((datasets / "ravdess").glob("Actor_0[1-4]/03-01-0[1-4]-*.flac"))[::4][:12]
    assert len(files) >= 8
    lags, lags_without = [], []
    settings = vad.EndpointSettings()
    without = vad.EndpointSettings(quiet_db=None)
    for f in files:
        y, _ = sf.read(str(f), dtype="float32")
        end = _speech_end(y)
        for s, out in ((settings, lags), (without, lags_without)):
            events = _endpoint(y, settings=s)
            out.append(events[-1][0] - s.hangover_s - end)
    assert np.median(lags) < 0.1, lags
    assert np.median(lags) < np.median(lags_without) - 0.04, (lags, lags_without)
    # steady noise as loud as the speech after it does not keep the turn open
    y, _ = sf.read(str(files[0]), dtype="float32")
    peak = float(np.sqrt(np.mean(y[np.abs(y) > 0.01] ** 2)))
    noise = np.random.default_rng(0).normal(0, peak, 32000).astype(np.float32)
    events = _endpoint(np.concatenate([y, noise]))
    assert events and events[-1][1] == "end" and events[-1][0] < len(y) / 16000 + 1.6, events


def test_whisper_doubts_the_sentence_end_where_a_sentence_was_cut(datasets):
    """Whisper's probability of a sentence end after the last word, at a pause as the
    endpointer sees it (the words so far + 0.1 s of silence): higher for the whole sentence
    "Kids are talking by the door" than for the same audio cut after "talking" ("Kids are
    talking" is a sentence in words, but not in the voice; over actors 01-20:
    `bench/sentence_end_eval.py`, "whole above its cut after the 3rd word")."""
    from assistant.stt import WhisperTranscriber
    from assistant.types import Utterance
    from tests.joined_clips import _boundary, _clips, _load, word_times

    tr = WhisperTranscriber(background=False)
    pause = np.zeros(1600, np.float32)
    whole_p, cut_p = [], []
    for path in _clips(datasets, "01", 8):
        words = word_times(path)
        y = _load(path)
        cut = _boundary(y, words[2][2], words[3][1])  # after "talking"
        end = int((words[-1][2] + 0.05) * 16000)
        whole = tr.transcribe(Utterance(samples=np.concatenate([y[:end], pause]), sample_rate=16000))
        part = tr.transcribe(Utterance(samples=np.concatenate([y[:cut], pause]), sample_rate=16000))
        assert "door" in whole.text.lower() and "door" not in part.text.lower()
        whole_p.append(whole.end_prob)
        cut_p.append(part.end_prob)
    assert all(w > c for w, c in zip(whole_p, cut_p)), (whole_p, cut_p)
    assert sum(w >= vad.END_PROB for w in whole_p) >= 7, whole_p


def test_whisper_aligns_a_filled_in_last_word_where_no_voice_is(datasets):
    """At a pause after "Kids are talking by the |" Whisper often hears "... by the door"
    (``bench/cut_boundary_check.py``); its word alignment then puts "door" in the last frames
    before the end of the voice, where a said "door" has a few hundred ms of audio under it."""
    from assistant.stt import WhisperTranscriber
    from assistant.types import Utterance
    from tests.joined_clips import _boundary, _clips, _load, word_times

    tr = WhisperTranscriber(background=False)
    pause = np.zeros(1600, np.float32)
    filled, said = [], []
    for path in _clips(datasets, "01", 12):
        words = word_times(path)
        y = _load(path)
        cut = _boundary(y, words[4][2], words[5][1])  # after "the"
        end = int((words[-1][2] + 0.05) * 16000)
        whole = tr.transcribe(Utterance(samples=np.concatenate([y[:end], pause]), sample_rate=16000),
                              voiced_until=end)
        part = tr.transcribe(Utterance(samples=np.concatenate([y[:cut], pause]), sample_rate=16000),
                             voiced_until=cut)
        assert "door" in whole.text.lower()
        said.append(whole.last_word_s)
        if "door" in part.text.lower():
            filled.append(part.last_word_s)
    assert all(s is not None and s >= vad.LAST_WORD_S for s in said), said
    assert len(filled) >= 6, filled
    assert sum(s is not None and s < vad.LAST_WORD_S for s in filled) >= len(filled) - 1, filled
    # without voiced_until nothing is aligned (the final decode of a turn does not pay for it)
    assert tr.transcribe(Utterance(samples=np.concatenate([y[:end], pause]), sample_rate=16000)).last_word_s is None


def test_whisper_features_of_the_padded_utterance_are_faster_whispers_own(datasets):
    """The decode computes the log-mel only where the audio is and copies the silence's floor
    frames (``WhisperTranscriber._padded_log_mel``): bit for bit what faster-whisper's extractor
    gives for the utterance with ``PAD_S`` of silence appended, at any length, loud or near silence."""
    from assistant.stt import WhisperTranscriber
    from tests.joined_clips import _clips, _load

    tr = WhisperTranscriber(background=False)
    fe = tr._model.feature_extractor
    rng = np.random.default_rng(0)
    cases = [_load(p) for p in _clips(datasets, "02", 3)]
    cases += [rng.normal(0, 0.1, n).astype(np.float32) for n in (1600, 1601, 1759, 16161)]
    cases += [np.full(3200, 1e-4, np.float32)]  # so quiet that the floor is log10(1e-10), not max - 8
    for y in cases:
        whole = fe(np.concatenate([y, np.zeros(int(tr.PAD_S * tr.sample_rate), np.float32)]))
        mine = tr._padded_log_mel(y)
        assert mine.shape == whole.shape and np.array_equal(mine, whole), len(y)
