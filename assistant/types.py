"""Small frozen messages passed between the stages of a turn: the source's Utterance, the
speech-to-text Transcript, the EmotionWindows of a long utterance, the responder's Reply (with
its TtsStyle), and the Turn that the loop logs and shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ser_model.result import EmotionResult

Source = Literal["mic", "file", "text"]


@dataclass(frozen=True)
class EndpointTrace:
    """How the endpointer ended a live utterance (``vad.Endpointer``), kept for the log."""

    words_at_pause: str | None = None
    """The words decoded at the last pause, when the endpointer asked for them."""
    end_prob: float | None = None
    """Whisper's probability of a sentence end after those words (:attr:`Transcript.end_prob`)."""
    silence_s: float = 0.0
    """Seconds of silence after the last voiced frame (the hang-over) kept in the samples."""
    pauses: int = 0
    """Pauses long enough to start a speculative decode."""
    words_after_s: float | None = None
    """Silence (s) after the last voiced frame when the last pause's words were known; None
    when the turn ended without them."""
    last_word_s: float | None = None
    """Voiced audio (s) under the last of those words (:attr:`Transcript.last_word_s`)."""

    def record(self) -> dict[str, Any]:
        """The log's ``endpoint`` record (times and probability to 3 decimals)."""
        def r3(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {"words_at_pause": self.words_at_pause, "end_prob": r3(self.end_prob),
                "silence_s": r3(self.silence_s), "pauses": self.pauses, "words_after_s": r3(self.words_after_s),
                "last_word_s": r3(self.last_word_s)}


@dataclass(frozen=True, eq=False)
class Utterance:
    """One captured utterance: mono float32 samples, or typed text in text mode."""

    samples: np.ndarray
    """Mono float32 samples in [-1, 1]; empty in text mode."""
    sample_rate: int = 16000
    """Samples per second of ``samples``."""
    started_at: float = 0.0
    """Wall-clock (``time.time()``) start of the utterance."""
    ended_at: float = 0.0
    """Wall-clock end of the utterance: the reference point of ``latency_ms.total``."""
    source: Source = "mic"
    """Where it came from: ``mic``, ``file`` or ``text``."""
    file: str | None = None
    """Path of the file, for ``--input``."""
    text: str | None = None
    """The typed line, for ``--text``."""
    offset: float | None = None
    """Seconds into ``file`` where this utterance starts, when a long file is replayed in
    pieces (see ``sources.FileSource``); None for a whole file, the microphone or text."""

    speech_ended_at: float | None = None
    """Wall-clock end of the last voiced frame (microphone): ``ended_at - speech_ended_at`` is
    the endpointing delay (``latency_ms.endpoint``)."""
    voiced_seconds: float | None = None
    """Voiced time the VAD found (microphone); None: not measured yet."""
    endpoint: EndpointTrace | None = None
    """How the endpointer ended it (microphone; logged as the turn's ``endpoint`` record)."""

    @property
    def seconds(self) -> float:
        """Duration of the audio in seconds (0 in text mode)."""
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0


@dataclass(frozen=True)
class EmotionWindow:
    """The emotion in one stretch of a long utterance (emotion over time)."""

    start_s: float
    """Start, in seconds from the start of the utterance."""
    end_s: float
    """End, in seconds from the start of the utterance."""
    emotion: EmotionResult | None
    """None when the stretch holds no speech."""
    uncertain: bool = True
    """True when there is no emotion or its confidence is below the threshold."""


@dataclass(frozen=True)
class Transcript:
    """What speech-to-text heard."""

    text: str
    """The recognised words ('' when nothing was recognised)."""
    engine: str
    """Engine that produced ``text``: ``sphinx``, ``whisper``, ``google`` or ``text``."""
    confidence: float | None = None
    """Engine confidence in [0, 1], when the engine gives one."""
    seconds: float = 0.0
    """Wall-clock time the transcription took."""
    error: str | None = None
    """One-line error of the engine that was asked first, when it failed."""
    fallback: str | None = None
    """Engine used instead after ``error`` (e.g. ``sphinx``)."""
    end_prob: float | None = None
    """Probability the engine gave a sentence end (. ! ?) right after the last word, when it
    gives one (Whisper's short decode): low when the speech so far sounds unfinished."""
    last_word_s: float | None = None
    """Seconds of voiced audio under the last word, from where the engine aligns the word's
    start to the end of the last voiced frame, in a decode at a pause (Whisper's short
    decode; None otherwise): near zero when the engine filled in a word nobody said yet
    ("Kids are talking by the |" heard as "... by the door.")."""


@dataclass(frozen=True)
class TtsStyle:
    """Prosody for speaking a reply, chosen from the user's emotional state."""

    rate: int = 175
    """Words per minute."""
    volume: float = 0.9
    """0.0 to 1.0."""
    pitch: int = 50
    """espeak-ng pitch, 0 to 99."""


@dataclass(frozen=True)
class Reply:
    """What the assistant answers."""

    text: str
    """The words to say."""
    strategy: str
    """Name of the strategy that chose them (e.g. ``validate_sadness``, ``safety``)."""
    tts_style: TtsStyle = field(default_factory=TtsStyle)
    """How to say them."""
    words_emotion: Mapping[str, object] | None = None
    """The emotion the words alone carry (label, confidence, valence, why, ``source: "words"``),
    when the reply used it because the voice gave none or an unsure one."""


@dataclass(frozen=True)
class Turn:
    """One completed turn of the conversation, as logged."""

    session: str
    turn: int
    utterance: Utterance
    transcript: Transcript
    emotion: EmotionResult | None
    """None in text mode or when no speech was detected."""
    uncertain: bool
    """True when the emotion's confidence is below the threshold (or there is no emotion)."""
    reply: Reply
    latency_ms: Mapping[str, float]
    """Per-stage latency: ``stt``, ``ser``, ``reply``, ``total``."""
    emotion_note: str | None = None
    """Why ``emotion`` is None (``text``, ``no speech detected``, ``model unavailable``, an error)."""
    voice_clips: int | None = None
    """Utterances in the user's voice profile before this turn (the profile that scored it);
    None when adaptation is off or the model has no voice profiles."""
    windows: tuple[EmotionWindow, ...] = ()
    """Emotion per window for an utterance longer than ``emotion.LONG_UTTERANCE_S``
    (``emotion`` is then their duration-weighted mean); empty for shorter ones."""
