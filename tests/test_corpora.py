"""File-name parsers, scanning and the corpus summary (ser_model.corpora)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ser_model.corpora import (
    AUDIO_EXTENSIONS,
    Clip,
    CorpusScan,
    format_summary,
    parse_path,
    scan,
    summarize,
)
from ser_model.labels import LABELS


def _clip(name: str) -> Clip:
    clip = parse_path(name)
    assert clip is not None, name
    assert clip.label in LABELS
    return clip


# --------------------------------------------------------------------------- RAVDESS


@pytest.mark.parametrize(
    ("code", "label", "original"),
    [
        ("01", "neutral", "neutral"),
        ("02", "neutral", "calm"),
        ("03", "happy", "happy"),
        ("04", "sad", "sad"),
        ("05", "angry", "angry"),
        ("06", "fearful", "fearful"),
        ("07", "disgust", "disgust"),
        ("08", "surprised", "surprised"),
    ],
)
def test_ravdess_emotion_codes(code: str, label: str, original: str) -> None:
    clip = _clip(f"Actor_03/03-01-{code}-01-02-01-03.wav")
    assert (clip.corpus, clip.label, clip.original_label) == ("ravdess", label, original)


def test_ravdess_speaker_and_sex() -> None:
    odd = _clip("03-01-05-02-01-01-07.flac")
    even = _clip("03-01-05-02-01-01-12.flac")
    assert (odd.speaker, odd.sex) == ("ravdess:07", "male")
    assert (even.speaker, even.sex) == ("ravdess:12", "female")
    assert odd.path == Path("03-01-05-02-01-01-07.flac")


def test_ravdess_song_and_audio_video_parse_but_video_only_does_not() -> None:
    song = _clip("03-02-06-01-01-01-24.wav")
    assert (song.label, song.speaker, song.sex) == ("fearful", "ravdess:24", "female")
    assert _clip("01-01-02-01-01-01-01.wav").label == "neutral"  # audio track of an AV file
    assert parse_path("02-01-02-01-01-01-01.wav") is None  # video-only has no sound


@pytest.mark.parametrize(
    "name",
    [
        "03-01-09-01-01-01-01.wav",  # emotion 09 does not exist
        "03-01-01-03-01-01-01.wav",  # intensity 03
        "03-03-01-01-01-01-01.wav",  # vocal channel 03
        "03-01-01-01-01-01-25.wav",  # actor 25
        "03-01-01-01-01-01-00.wav",  # actor 00
        "03-01-01-01-01-01.wav",  # a field short
        "03-01-01-01-01-01-01.mp4",  # video container
        "03-01-01-01-01-01-01.txt",
    ],
)
def test_ravdess_bad_names_are_rejected(name: str) -> None:
    assert parse_path(name) is None


# --------------------------------------------------------------------------- TESS


@pytest.mark.parametrize(
    ("name", "label", "original"),
    [
        ("OAF_back_angry.wav", "angry", "angry"),
        ("OAF_back_disgust.wav", "disgust", "disgust"),
        ("YAF_back_fear.wav", "fearful", "fear"),
        ("YAF_back_happy.wav", "happy", "happy"),
        ("YAF_back_neutral.wav", "neutral", "neutral"),
        ("OAF_back_ps.wav", "surprised", "ps"),
        ("OAF_back_sad.wav", "sad", "sad"),
        ("YAF_back_pleasant_surprise.wav", "surprised", "pleasant_surprise"),
    ],
)
def test_tess_emotions(name: str, label: str, original: str) -> None:
    clip = _clip(f"TESS Toronto emotional speech set data/OAF_Fear/{name}")
    assert (clip.corpus, clip.label, clip.original_label, clip.sex) == (
        "tess",
        label,
        original,
        "female",
    )


def test_tess_speakers_and_the_oa_typo() -> None:
    assert _clip("OAF_bite_neutral.wav").speaker == "tess:OAF"
    assert _clip("YAF_germ_angry.wav").speaker == "tess:YAF"
    typo = _clip("OAF_neutral/OA_bite_neutral.wav")
    assert (typo.speaker, typo.label, typo.corpus) == ("tess:OAF", "neutral", "tess")
    assert _clip("yaf_Germ_ANGRY.WAV").speaker == "tess:YAF"


@pytest.mark.parametrize("name", ["OAF_back_bored.wav", "ZAF_back_angry.wav", "OAF_angry.wav"])
def test_tess_bad_names(name: str) -> None:
    assert parse_path(name) is None


# --------------------------------------------------------------------------- CREMA-D


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("ANG", "angry"),
        ("DIS", "disgust"),
        ("FEA", "fearful"),
        ("HAP", "happy"),
        ("NEU", "neutral"),
        ("SAD", "sad"),
    ],
)
def test_crema_emotions(code: str, label: str) -> None:
    clip = _clip(f"AudioWAV/1001_DFA_{code}_XX.wav")
    assert (clip.corpus, clip.label, clip.original_label, clip.speaker) == (
        "crema-d",
        label,
        code,
        "crema-d:1001",
    )


def test_crema_levels_sentences_and_sex_fallback() -> None:
    assert _clip("1091_WSI_SAD_HI.wav").speaker == "crema-d:1091"
    assert _clip("1050_IEO_HAP_LO.mp3").label == "happy"
    assert _clip("1002_TIE_NEU_MD.wav").sex == "female"
    assert _clip("1001_TIE_NEU_MD.wav").sex == "male"
    for bad in ("1001_XXX_ANG_XX.wav", "1001_DFA_CAL_XX.wav", "0999_DFA_ANG_XX.wav",
                "1092_DFA_ANG_XX.wav", "1001_DFA_ANG.wav"):  # fmt: skip
        assert parse_path(bad) is None, bad


def test_crema_sex_from_video_demographics(tmp_path: Path) -> None:
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Female,Caucasian,Not Hispanic\n"
        "1002,21,Male,Caucasian,Not Hispanic\n"
    )
    audio = tmp_path / "AudioWAV"
    audio.mkdir()
    for name in ("1001_DFA_ANG_XX.wav", "1002_DFA_ANG_XX.wav", "1003_DFA_ANG_XX.wav"):
        (audio / name).touch()
    result = scan(tmp_path)
    sexes = {c.speaker: c.sex for c in result.clips}
    # the CSV (deliberately contradicting the built-in list) wins; 1003 is not in it
    assert sexes == {"crema-d:1001": "female", "crema-d:1002": "male", "crema-d:1003": "female"}
    assert parse_path(audio / "1001_DFA_ANG_XX.wav").sex == "female"


# --------------------------------------------------------------------------- SAVEE


@pytest.mark.parametrize(
    ("code", "label"),
    [("a", "angry"), ("d", "disgust"), ("f", "fearful"), ("h", "happy"), ("n", "neutral"),
     ("sa", "sad"), ("su", "surprised")],
)  # fmt: skip
def test_savee_both_layouts(code: str, label: str) -> None:
    kaggle = _clip(f"ALL/JK_{code}03.wav")
    original = _clip(f"AudioData/KL/{code}12.wav")
    assert (kaggle.corpus, kaggle.label, kaggle.speaker, kaggle.sex) == (
        "savee",
        label,
        "savee:JK",
        "male",
    )
    assert (original.corpus, original.label, original.speaker, original.original_label) == (
        "savee",
        label,
        "savee:KL",
        code,
    )


def test_savee_original_layout_needs_a_speaker_folder() -> None:
    assert parse_path("AudioData/XX/a01.wav") is None
    assert parse_path("a01.wav") is None
    assert parse_path("DC_b01.wav") is None


# --------------------------------------------------------------------------- generic


def test_any_audio_extension_case_insensitive() -> None:
    for ext in (".wav", ".WAV", ".Flac", ".mp3", ".ogg", ".aiff", ".AIF", ".m4a"):
        assert parse_path(f"OAF_back_angry{ext}") is not None, ext
    assert parse_path("OAF_back_angry.txt") is None
    assert parse_path("OAF_back_angry") is None
    assert {".wav", ".flac", ".mp3", ".ogg", ".aif", ".aiff", ".m4a"} <= AUDIO_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in AUDIO_EXTENSIONS)


def test_clip_is_frozen() -> None:
    clip = _clip("OAF_back_angry.wav")
    with pytest.raises(AttributeError):
        clip.label = "sad"  # type: ignore[misc]


def test_scan_lists_unparsed_audio_and_ignores_other_files(tmp_path: Path) -> None:
    names = [
        "b/03-01-02-01-01-01-01.WAV",
        "a/OAF_back_ps.flac",
        "c/DC/su01.wav",
        "c/DC_a01.wav",
        "d/1001_DFA_ANG_XX.ogg",
        "x/recording_2024.wav",  # audio, but no parser knows it
        "x/notes.txt",  # not audio: ignored
        "x/.hidden_OAF_back_ps.wav",  # hidden: ignored
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    result = scan(tmp_path)
    assert isinstance(result, CorpusScan)
    assert [c.path for c in result.clips] == sorted(c.path for c in result.clips)
    assert [c.corpus for c in result.clips] == ["tess", "ravdess", "savee", "savee", "crema-d"]
    assert result.unparsed == (tmp_path / "x/recording_2024.wav",)

    summary = summarize(result)
    json.dumps(summary)  # JSON-serialisable
    assert summary["n_clips"] == 5
    assert summary["corpora"] == {"ravdess": 1, "tess": 1, "crema-d": 1, "savee": 2}
    assert summary["labels"]["surprised"] == 2 and summary["labels"]["neutral"] == 1
    assert list(summary["labels"]) == list(LABELS)
    assert summary["speakers"] == {"crema-d:1001": 1, "ravdess:01": 1, "savee:DC": 2, "tess:OAF": 1}
    assert summary["n_unparsed"] == 1
    assert summary["unparsed"] == [str(tmp_path / "x/recording_2024.wav")]

    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(format_summary(summary))
    text = console.export_text()
    assert "recording_2024.wav" in text
    assert "crema-d" in text and "savee" in text


def test_scan_follows_symlinks_but_not_loops(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "OAF_back_ps.wav").touch()
    (data / "loop").symlink_to(data)  # data/loop/loop/... forever
    linked = tmp_path / "linked"
    linked.symlink_to(data)
    result = scan(linked)
    assert [c.path.name for c in result.clips] == ["OAF_back_ps.wav"]


def test_scan_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan(tmp_path / "nope")


def test_scan_shared_corpora(datasets: Path) -> None:
    ravdess = scan(datasets / "ravdess")
    tess = scan(datasets / "tess")
    assert len(ravdess.clips) == 1200 and not ravdess.unparsed
    assert len(tess.clips) == 2798 and not tess.unparsed
    assert {c.corpus for c in ravdess.clips} == {"ravdess"}
    assert {c.corpus for c in tess.clips} == {"tess"}
    assert len({c.speaker for c in ravdess.clips}) == 20
    assert {c.speaker for c in tess.clips} == {"tess:OAF", "tess:YAF"}
    assert (
        sum(c.original_label == "calm" for c in ravdess.clips) == 160
    )  # 20 actors x 2 intensities x 2 statements x 2 repetitions
    assert sum(c.label == "neutral" for c in ravdess.clips) == 80 + 160  # neutral has no strong intensity
    typo = [c for c in tess.clips if c.path.stem == "OA_bite_neutral"]
    assert len(typo) == 1 and typo[0].speaker == "tess:OAF"

    whole = scan(datasets)
    counts = summarize(whole)["corpora"]
    originals = sorted((datasets / "originals").iterdir()) if (datasets / "originals").is_dir() else []
    n_orig_ravdess = sum(p.name.startswith("03-") for p in originals)
    assert counts["ravdess"] == 1200 + n_orig_ravdess
    assert counts["tess"] == 2798 + len(originals) - n_orig_ravdess
    assert not whole.unparsed
