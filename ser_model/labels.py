"""The one label set shared by every corpus, model and report."""

from __future__ import annotations

#: Canonical emotion labels, in the order models output them.
LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
