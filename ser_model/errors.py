"""The library's own exception types. Every error the library raises on purpose is a SerError."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path


class SerError(Exception):
    """Base class of every error raised on purpose by ser_model."""


class ParameterError(SerError, ValueError):
    """A function was given a parameter outside its domain (librosa's style)."""


class AudioLoadError(SerError):
    """An audio file could not be read. ``str(err)`` is one line naming the path and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BundleError(SerError):
    """A model bundle is missing, incomplete, or fails its integrity check."""


class NoSpeechError(SerError):
    """The audio holds no speech (silence or near-silence), so no emotion can be inferred."""


def one_line(err: BaseException, *, join: bool = False) -> str:
    """``err`` as one line for a message: its first non-blank line, or its type's name if it is empty.

    With ``join=True`` every line is kept, folded into one (runs of whitespace become one space).
    """
    if join:
        return " ".join(str(err).split()) or type(err).__name__
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def unknown_keys(data: Iterable[str], known: type | Iterable[str]) -> list[str]:
    """The keys of ``data`` that ``known`` lacks, sorted; ``known`` is a dataclass (its field names) or names."""
    names = {f.name for f in dataclasses.fields(known)} if isinstance(known, type) else set(known)
    return sorted(set(data) - names)


def check_keys(data: Iterable[str], known: type | Iterable[str], what: str) -> None:
    """ParameterError ``unknown {what}: a, b`` when ``data`` has keys ``known`` lacks (see ``unknown_keys``)."""
    if unknown := unknown_keys(data, known):
        raise ParameterError(f"unknown {what}: {', '.join(unknown)}")
