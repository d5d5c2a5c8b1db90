"""VoiceProfile / PopulationPrior: Welford, JSON round trip, 0600 files, shrinkage, strict loading."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from ser_model.profile import PopulationPrior, ProfileError, VoiceProfile

FID = "test-features:dim=4"


def _profile(xs: np.ndarray) -> VoiceProfile:
    p = VoiceProfile.new(FID, xs.shape[1])
    for x in xs:
        p.add(x)
    return p


def test_welford_equals_numpy() -> None:
    xs = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4))
    p = _profile(xs)
    assert p.count == 50
    np.testing.assert_allclose(p.mean, xs.mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.m2 / p.count, xs.var(0), rtol=1e-10)


def test_json_round_trip_and_mode(tmp_path) -> None:
    p = _profile(np.random.default_rng(1).normal(size=(5, 4)))
    path = tmp_path / "sub" / "me.json"
    p.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    q = VoiceProfile.load(path)
    assert (q.feature_id, q.dim, q.count) == (p.feature_id, p.dim, p.count)
    np.testing.assert_array_equal(q.mean, p.mean)
    np.testing.assert_array_equal(q.m2, p.m2)
    p.add(np.ones(4))
    p.save(path)  # replaced atomically, mode kept
    assert VoiceProfile.load(path).count == 6
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [f.name for f in path.parent.iterdir()] == ["me.json"]  # no temp file left


def test_file_holds_no_audio_or_words(tmp_path) -> None:
    p = _profile(np.zeros((2, 4)))
    p.save(tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert set(data) == {"format", "feature_id", "dim", "count", "mean", "m2"}
    assert all(len(data[k]) == 4 for k in ("mean", "m2"))


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"format": "ser-voice-profile-v1", "feature_id": "f", "dim": 2, "count": 1, "mean": [0, 0]}',
        '{"format": "ser-voice-profile-v1", "feature_id": "f", "dim": 2, "count": 1, "mean": [0, 0], '
        '"m2": [0, 0], "audio": [1]}',
        '{"format": "ser-voice-profile-v1", "feature_id": "f", "dim": 2, "count": 1, "mean": [0], "m2": [0, 0]}',
        '{"format": "ser-voice-profile-v1", "feature_id": "f", "dim": 2, "count": 1, "mean": [NaN, 0], '
        '"m2": [0, 0]}',
        '{"format": "ser-voice-profile-v1", "feature_id": "f", "dim": 2, "count": -1, "mean": [0, 0], '
        '"m2": [0, 0]}',
        '{"format": "other", "feature_id": "f", "dim": 2, "count": 1, "mean": [0, 0], "m2": [0, 0]}',
    ],
)
def test_bad_files_rejected_in_one_line(tmp_path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        VoiceProfile.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_one_line(tmp_path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        VoiceProfile.load(tmp_path / "none.json")


def test_add_rejects_wrong_length_and_nan() -> None:
    p = VoiceProfile.new(FID, 4)
    with pytest.raises(ProfileError):
        p.add(np.zeros(3))
    with pytest.raises(ProfileError):
        p.add(np.array([0, np.nan, 0, 0]))
    assert p.count == 0


def _prior() -> PopulationPrior:
    return PopulationPrior(mean=np.zeros(4), var=np.ones(4), strength=5.0)


def test_shrinkage_zero_clips_is_population() -> None:
    prior = _prior()
    x = np.array([1.0, 2.0, -1.0, 0.5])
    np.testing.assert_allclose(prior.standardise(x, None), x, atol=1e-5)
    np.testing.assert_allclose(prior.standardise(x, VoiceProfile.new(FID, 4)), x, atol=1e-5)


def test_shrinkage_one_clip_is_between() -> None:
    prior = _prior()
    p = _profile(np.full((1, 4), 6.0))
    mean_s, var_s = prior.speaker_stats(p.count, p.mean, p.m2)
    np.testing.assert_allclose(mean_s, 1.0)  # (1*6 + 5*0) / 6
    # (0 + 5*1 + 1*5/6*36) / 6: the prior's spread plus the between-mean term, never collapsed
    np.testing.assert_allclose(var_s, (5 + 30) / 6)
    assert (var_s > 0.5).all()


def test_shrinkage_many_clips_is_speaker() -> None:
    rng = np.random.default_rng(2)
    xs = rng.normal(2.0, 0.5, size=(5000, 4))
    p = _profile(xs)
    mean_s, var_s = _prior().speaker_stats(p.count, p.mean, p.m2)
    np.testing.assert_allclose(mean_s, xs.mean(0), atol=0.01)
    np.testing.assert_allclose(var_s, xs.var(0), rtol=0.05)
    z = _prior().standardise(xs[:3], p)
    assert np.abs(z).max() < 5


def test_prior_validates() -> None:
    with pytest.raises(ProfileError):
        PopulationPrior(mean=np.zeros(3), var=np.ones(4), strength=1.0)
    with pytest.raises(ProfileError):
        PopulationPrior(mean=np.zeros(4), var=np.ones(4), strength=0.0)
