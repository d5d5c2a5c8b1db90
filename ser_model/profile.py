"""Per-speaker adaptation: a :class:`VoiceProfile` of one speaker's feature statistics and the
:class:`PopulationPrior` it is shrunk toward.

A profile holds only a clip count and the running mean and M2 (Welford's sum of squared
deviations) of utterance-level feature vectors: no audio, no words. It is stored as a small
JSON file (mode 0600, written atomically).

Standardising with a profile of ``n`` clips and a prior of strength ``k`` (pseudo-clips)
treats the prior as ``k`` clips with the population mean and variance::

    mean_s = (n * mean_p + k * mean_0) / (n + k)
    var_s  = (m2 + k * var_0 + n * k / (n + k) * (mean_p - mean_0) ** 2) / (n + k)
    z      = (x - mean_s) / sqrt(var_s + eps)

so an empty profile standardises by the population statistics, and a profile of many clips
by the speaker's own.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_model.errors import SerError, one_line

#: Format marker written into every profile file.
PROFILE_FORMAT = "ser-voice-profile-v1"
_KEYS = {"format", "feature_id", "dim", "count", "mean", "m2"}
_EPS = 1e-6


class ProfileError(SerError):
    """A voice profile is malformed, unreadable, or made for another feature extractor; one line."""


def _vector(value: Any, dim: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"profile {name!r} must be a list of {dim} numbers") from None
    if arr.shape != (dim,):
        raise ProfileError(f"profile {name!r} must have {dim} values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ProfileError(f"profile {name!r} holds NaN or infinite values")
    return arr


@dataclass
class VoiceProfile:
    """Running statistics (Welford) of one speaker's utterance-level feature vectors."""

    feature_id: str
    """The feature extractor the vectors come from (see ``encoder_features.feature_id``)."""
    dim: int
    """Length of each feature vector."""
    count: int = 0
    """Number of utterances added."""
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """float64 (dim,): mean of the vectors added."""
    m2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """float64 (dim,): sum of squared deviations from the mean (variance = m2 / count)."""

    def __post_init__(self) -> None:
        if not isinstance(self.feature_id, str) or not self.feature_id:
            raise ProfileError("profile 'feature_id' must be a non-empty string")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim <= 0:
            raise ProfileError(f"profile 'dim' must be a positive integer, got {self.dim!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ProfileError(f"profile 'count' must be a non-negative integer, got {self.count!r}")
        self.mean = np.zeros(self.dim) if np.size(self.mean) == 0 else _vector(self.mean, self.dim, "mean")
        self.m2 = np.zeros(self.dim) if np.size(self.m2) == 0 else _vector(self.m2, self.dim, "m2")
        if (self.m2 < 0).any():
            raise ProfileError("profile 'm2' must not be negative")

    @classmethod
    def new(cls, feature_id: str, dim: int) -> VoiceProfile:
        """An empty profile for vectors of ``dim`` values from ``feature_id``."""
        return cls(feature_id=feature_id, dim=dim)

    def add(self, x: np.ndarray) -> None:
        """Add one utterance-level feature vector (Welford's update)."""
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.shape != (self.dim,):
            raise ProfileError(f"feature vector has {v.size} values, the profile holds {self.dim}")
        if not np.isfinite(v).all():
            raise ProfileError("feature vector holds NaN or infinite values")
        self.count += 1
        delta = v - self.mean
        self.mean = self.mean + delta / self.count
        self.m2 = self.m2 + delta * (v - self.mean)

    @property
    def var(self) -> np.ndarray:
        """Population variance of the vectors added (zeros while empty)."""
        return self.m2 / self.count if self.count else np.zeros(self.dim)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (format, feature_id, dim, count, mean, m2)."""
        return {
            "format": PROFILE_FORMAT,
            "feature_id": self.feature_id,
            "dim": self.dim,
            "count": self.count,
            "mean": [float(v) for v in self.mean],
            "m2": [float(v) for v in self.m2],
        }

    @classmethod
    def from_dict(cls, d: Any) -> VoiceProfile:
        """The profile ``to_dict`` wrote; ProfileError for missing/unknown keys, bad lengths, NaN."""
        if not isinstance(d, dict):
            raise ProfileError("a voice profile must be a JSON object")
        missing, unknown = sorted(_KEYS - d.keys()), sorted(d.keys() - _KEYS)
        if missing or unknown:
            raise ProfileError(f"voice profile keys wrong: missing {missing}, unknown {unknown}")
        if d["format"] != PROFILE_FORMAT:
            raise ProfileError(f"not a voice profile of format {PROFILE_FORMAT!r}: {d['format']!r:.40}")
        dim = d["dim"]
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ProfileError(f"profile 'dim' must be a positive integer, got {dim!r:.40}")
        for key in ("mean", "m2"):
            if not isinstance(d[key], list):
                raise ProfileError(f"profile {key!r} must be a list of {dim} numbers")
        return cls(feature_id=d["feature_id"], dim=dim, count=d["count"],
                   mean=_vector(d["mean"], dim, "mean"), m2=_vector(d["m2"], dim, "m2"))

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON to ``path`` atomically (temp file + ``os.replace``), mode 0600."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, allow_nan=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | Path) -> VoiceProfile:
        """Read a profile file; ProfileError (one line, naming the file) when it is bad."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or err
            raise ProfileError(f"{path}: cannot read the voice profile: {reason}") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, ProfileError) as err:
            raise ProfileError(f"{path}: not a valid voice profile (bad JSON: {one_line(err)})") from None
        try:
            return cls.from_dict(data)
        except ProfileError as err:
            raise ProfileError(f"{path}: {err}") from None


def _reject_constant(name: str) -> Any:
    raise ProfileError(f"{name} is not allowed")


@dataclass(frozen=True)
class PopulationPrior:
    """Population feature statistics a profile is shrunk toward."""

    mean: np.ndarray
    """float64 (dim,): mean of the training population's vectors."""
    var: np.ndarray
    """float64 (dim,): variance of the training population's vectors (within-speaker)."""
    strength: float
    """Pseudo-count: how many clips the prior weighs as."""

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        var = np.asarray(self.var, dtype=np.float64).reshape(-1)
        if mean.shape != var.shape or mean.size == 0:
            raise ProfileError("prior mean and var must be non-empty and of equal length")
        if not (np.isfinite(mean).all() and np.isfinite(var).all()) or (var < 0).any():
            raise ProfileError("prior mean/var must be finite, var >= 0")
        if not (isinstance(self.strength, (int, float)) and math.isfinite(self.strength) and self.strength > 0):
            raise ProfileError(f"prior strength must be a positive number, got {self.strength!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    def speaker_stats(self, count: int, mean: np.ndarray, m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shrunk (mean, var) of a speaker with ``count`` clips, mean ``mean`` and M2 ``m2``."""
        n, k = float(count), float(self.strength)
        if n == 0:
            return self.mean, self.var
        d = np.asarray(mean, np.float64) - self.mean
        mean_s = (n * np.asarray(mean, np.float64) + k * self.mean) / (n + k)
        var_s = (np.asarray(m2, np.float64) + k * self.var + n * k / (n + k) * d * d) / (n + k)
        return mean_s, var_s

    def standardise(self, x: np.ndarray, profile: VoiceProfile | None) -> np.ndarray:
        """``x`` (dim,) or (batch, dim) standardised by the shrunk statistics of ``profile``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.dim:
            raise ProfileError(f"feature vector has {x.shape[-1]} values, the prior holds {self.dim}")
        if profile is None:
            mean_s, var_s = self.mean, self.var
        else:
            if profile.dim != self.dim:
                raise ProfileError(f"profile holds {profile.dim} values, the prior {self.dim}")
            mean_s, var_s = self.speaker_stats(profile.count, profile.mean, profile.m2)
        return (x - mean_s) / np.sqrt(var_s + _EPS)
