"""ser_model.windows: the one windowing and the one block streaming of files, with each
caller's parameters giving exactly what its own implementation gave before (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_model.errors import AudioLoadError
from ser_model.windows import mono_blocks, window_bounds, window_sizes


def _old_emotion_windows_of(n: int, win: int) -> list[tuple[int, int]]:
    """assistant.emotion.windows_of as it was: consecutive windows, a short remainder joins the last."""
    bounds, start = [], 0
    while start < n:
        end = min(n, start + win)
        if n - end < win // 2:
            end = n
        bounds.append((start, end))
        start = end
    return bounds


def _old_recognizer_windows(n: int, win: int, hop: int) -> list[tuple[int, int]]:
    """ser_model.recognizer._windows as it was: every hop, the last one ends at the end."""
    out, start = [], 0
    while start < n:
        out.append((start, min(n, start + win)))
        if start + win >= n:
            break
        start += hop
    return out


@pytest.mark.parametrize("n", [0, 1, 7, 47999, 48000, 48001, 71999, 72000, 72001, 100_000, 16000 * 11 + 3])
def test_each_callers_windows_are_what_they_were(n):
    win, hop = window_sizes(3.0, 1.5, 16000)
    assert list(window_bounds(n, win, hop)) == _old_recognizer_windows(n, win, hop)
    assert list(window_bounds(n, win, win, join_below=win // 2)) == _old_emotion_windows_of(n, win)
    for w, h in [(5, 2), (5, 5), (3, 1), (1, 1)]:
        assert list(window_bounds(n % 50, w, h)) == _old_recognizer_windows(n % 50, w, h)
        assert list(window_bounds(n % 50, w, w, join_below=w // 2)) == _old_emotion_windows_of(n % 50, w)


def test_mono_blocks_stream_a_file_and_fail_in_one_line(tmp_path):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, (22050 * 2 + 100, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, y, 22050, subtype="FLOAT")
    with mono_blocks(path) as (rate, blocks):
        got = list(blocks(22050))
    assert rate == 22050 and [len(b) for b in got] == [22050, 22050, 100]
    np.testing.assert_allclose(np.concatenate(got), y.mean(axis=1), atol=1e-7)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not audio")
    with pytest.raises(AudioLoadError) as err, mono_blocks(bad):
        pass
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
