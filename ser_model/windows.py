"""Windows over audio, and audio files read block by block: the one implementation of each.

Callers differ in their parameters, not in the mechanism: ``EmotionRecognizer.predict_windows``
uses 3 s windows every 1.5 s whose last one ends at the end of the audio;
``assistant.emotion`` uses consecutive 3 s windows whose short remainder joins the last one
(``join_below``); ``EmotionRecognizer.predict_file_windows`` and ``assistant.sources.FileSource``
stream long files through :func:`mono_blocks`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ser_model.errors import AudioLoadError, ParameterError, one_line

#: Default window length and hop (seconds) of ``EmotionRecognizer.predict_windows`` and
#: ``ser-model predict`` on long files.
DEFAULT_WINDOW_S = 3.0
DEFAULT_HOP_S = 1.5


def window_sizes(window_s: float, hop_s: float, rate: int) -> tuple[int, int]:
    """(window, hop) in samples at ``rate``; ParameterError unless ``0 < hop_s <= window_s``."""
    if not (isinstance(window_s, (int, float)) and math.isfinite(window_s) and window_s > 0):
        raise ParameterError(f"window_s must be a positive number of seconds, got {window_s!r}")
    if not (isinstance(hop_s, (int, float)) and math.isfinite(hop_s) and 0 < hop_s <= window_s):
        raise ParameterError(f"hop_s must be in (0, window_s], got {hop_s!r}")
    win = max(1, int(round(window_s * rate)))
    hop = max(1, min(win, int(round(hop_s * rate))))
    return win, hop


def window_bounds(n: int, win: int, hop: int, *, join_below: int = 0) -> Iterator[tuple[int, int]]:
    """(start, end) sample ranges of windows of ``win`` samples starting every ``hop`` over
    ``n`` samples; the last one ends at ``n`` (it may be shorter). ``join_below``: when what
    would be left after a window is shorter than this, that window runs to ``n`` instead."""
    start = 0
    while start < n:
        end = min(n, start + win)
        if n - end < join_below:
            end = n
        yield start, end
        if end >= n:
            return
        start += hop


@contextmanager
def mono_blocks(path: str | Path):
    """Open an audio file libsndfile reads and give ``(rate, blocks)``; ``blocks(size)``
    iterates float32 mono blocks (channels averaged) of ``size`` samples at the file's rate,
    one block in memory at a time. The decoders' own warnings (mpg123 on a cut MP3) are kept
    off stderr. Raises AudioLoadError (one line, naming ``path``) when the file cannot be
    opened or a block cannot be decoded."""
    import soundfile as sf

    from ser_model.quiet import quiet_library_stderr

    try:
        with quiet_library_stderr():
            f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as err:
        raise AudioLoadError(path, one_line(err)) from err

    def blocks(size: int) -> Iterator[np.ndarray]:
        it = f.blocks(blocksize=size, dtype="float32", always_2d=True)
        while True:
            try:
                with quiet_library_stderr():
                    block = next(it, None)
            except (sf.LibsndfileError, RuntimeError, ValueError) as err:
                raise AudioLoadError(path, one_line(err)) from err
            if block is None:
                return
            yield block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]

    with f:
        yield int(f.samplerate), blocks
