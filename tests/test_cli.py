"""The real ``ser-model`` console script, run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ser_model.labels import LABELS
from tests.test_bundle import make_tiny_bundle

SCRIPT = Path(sys.executable).parent / "ser-model"

EVALUATE_KEYS = {
    "model_version", "root", "n", "accuracy", "uar", "macro_f1", "per_class_recall", "support",
    "labels", "confusion", "skipped", "labels_not_in_model", "errors",
}  # fmt: skip


def run(*args: str, timeout: float = 240, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=full_env, check=False, cwd=cwd
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def clips(datasets: Path) -> list[Path]:
    """Six real clips: four RAVDESS (two actors), two TESS."""
    ravdess = sorted((datasets / "ravdess" / "Actor_01").glob("*.flac"))[:2]
    ravdess += sorted((datasets / "ravdess" / "Actor_02").glob("*.flac"))[:2]
    tess = sorted((datasets / "tess").rglob("*.flac"))[:2]
    assert len(ravdess) == 4 and len(tess) == 2
    return ravdess + tess


def test_script_installed() -> None:
    assert SCRIPT.is_file(), f"console script missing: {SCRIPT} (pip install -e .)"


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_are_fast(flag: str) -> None:
    run(flag)  # warm the file cache
    started = time.perf_counter()
    proc = run(flag, timeout=30)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 1.0, f"ser-model {flag} took {elapsed:.2f} s"
    if flag == "--version":
        assert proc.stdout.startswith("ser-model ")
    else:
        for command in ("corpus", "predict", "evaluate", "train", "compare", "plot-examples", "models"):
            assert command in proc.stdout
        assert "ser-model predict" in proc.stdout  # examples


def test_predict_json_with_one_bad_file(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    files = [str(clips[0]), str(bad), str(clips[4])]
    proc = run("predict", *files, "--model", str(bundle), "--json")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line, file in zip(lines, [files[0], files[2]]):
        row = json.loads(line)
        assert set(row) == {"file", "label", "confidence", "probs"}
        assert row["file"] == file and row["label"] in LABELS
        assert list(row["probs"]) == list(LABELS)
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"ser-model: error: {bad}: ")
    assert "Traceback" not in proc.stderr


def test_predict_silence_and_missing_file(bundle: Path, tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    proc = run("predict", str(silent), str(tmp_path / "missing.flac"), "--model", str(bundle))
    assert proc.returncode == 2
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2, proc.stderr
    assert errors[0] == f"ser-model: error: {silent}: no speech detected"
    assert errors[1].startswith(f"ser-model: error: {tmp_path / 'missing.flac'}: ")
    assert proc.stdout == ""


def test_predict_windows_json(bundle: Path, clips: list[Path]) -> None:
    proc = run("predict", str(clips[0]), "--model", str(bundle), "--json", "--window", "1.0", "--hop", "0.5")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) >= 3
    assert [r["start_s"] for r in rows] == pytest.approx([0.5 * i for i in range(len(rows))])


def test_evaluate_json(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    for clip in clips[:3]:
        (data / clip.name).symlink_to(clip)
    for clip in clips[3:]:
        (data / "nested" / clip.name).symlink_to(clip)
    (data / "03-01-05-01-01-01-09.wav").write_bytes(b"corrupt")  # parses, does not load
    (data / "interview.wav").symlink_to(clips[0])  # loads, but no parser knows the name
    (data / "notes.txt").write_text("not audio")
    proc = run("evaluate", str(data), "--model", str(bundle), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON object
    assert set(report) == EVALUATE_KEYS
    assert report["n"] == 6
    assert report["skipped"] == {"unparsed": 1, "unreadable": 1, "no_speech": 0, "label_not_in_model": 0}
    assert 0.0 <= report["uar"] <= 1.0 and 0.0 <= report["accuracy"] <= 1.0
    assert report["labels"] == list(LABELS)
    assert sum(map(sum, report["confusion"])) == 6
    assert len(report["errors"]) == 1 and "03-01-05-01-01-01-09.wav" in report["errors"][0]
    assert "Traceback" not in proc.stderr


def test_evaluate_labels_the_model_lacks(clips: list[Path], tmp_path: Path) -> None:
    """A six-label model (no 'surprised', like a CREMA-D one) reports, not crashes on, TESS 'ps'."""
    bundle = make_tiny_bundle(tmp_path / "bundles", name="six", labels=LABELS[:6])
    data = tmp_path / "data"
    data.mkdir()
    (data / "OAF_back_ps.flac").symlink_to(clips[4])
    (data / "OAF_back_sad.flac").symlink_to(clips[5])
    proc = run("evaluate", str(data), "--model", str(bundle), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 1
    assert report["labels_not_in_model"] == {"surprised": 1}
    assert report["skipped"]["label_not_in_model"] == 1


def test_evaluate_text_report(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for clip in clips[:2]:
        (data / clip.name).symlink_to(clip)
    proc = run("evaluate", str(data), "--model", str(bundle), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "UAR=" in proc.stdout and "confusion" in proc.stdout
    lines = proc.stdout.splitlines()
    # what was scored, then the scores: neither wraps at 80 columns
    assert lines[0].endswith(f" on {data}") and lines[1].startswith("n=2  accuracy=")
    assert "macro-F1=" in lines[1]
    assert all(len(line) <= 80 for line in lines), proc.stdout
    header = next(line for line in lines if "true \\ pred" in line)
    assert all(f" {label} " in header for label in LABELS), header  # whole names, 'surprised' too


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "x.wav", "--model", "/nonexistent/bundle"], "not a model bundle"),
        (["evaluate", "/nonexistent/dir", "--json"], "no such file or folder"),
        (["corpus", "/nonexistent/dir"], "no such file or folder"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str, bundle: Path) -> None:
    if args[0] == "evaluate":
        args = [*args, "--model", str(bundle)]
    proc = run(*args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-model: error: ") and message in lines[0], proc.stderr


def test_bad_usage_exits_2() -> None:
    proc = run("predict")
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_corpus_json(datasets: Path) -> None:
    proc = run("corpus", str(datasets / "originals"), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_clips"] == 5
    assert set(summary["corpora"]) == {"ravdess", "tess"}


def test_models_lists_bundles(bundle: Path) -> None:
    proc = run("models", "--json", env={"SER_MODEL_BUNDLE": str(bundle)})
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all({"name", "model_version", "path", "default", "problem"} <= set(r) for r in rows)


@pytest.mark.parametrize("command", ["train", "compare", "plot-examples"])
def test_training_commands_are_wired(command: str) -> None:
    """--help of the training side's commands works, or says in one line why it cannot."""
    proc = run(command, "--help", timeout=120)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        assert f"ser-model {command}" in proc.stdout
    else:
        assert proc.returncode == 1 and "not available" in proc.stderr, proc.stderr


def test_predict_long_file_is_analysed_per_window(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    """A file far longer than the model's input gets one result per 3 s window, not one verdict
    from its first seconds; short clips in the same call keep their single result."""
    import numpy as np
    import soundfile as sf

    pieces = [sf.read(c, dtype="float32")[0] for c in clips[:4]]
    long_file = tmp_path / "long.wav"
    sf.write(long_file, np.concatenate(pieces * 3), 16000)  # ~45 s of real speech
    duration = sf.info(long_file).duration
    proc = run("predict", str(long_file), str(clips[0]), "--model", str(bundle), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    windows = [r for r in rows if r["file"] == str(long_file)]
    assert len(windows) == int(np.ceil((duration - 3.0) / 1.5)) + 1
    assert windows[-1]["end_s"] == pytest.approx(duration, abs=0.01)
    assert next(r for r in rows if r["file"] == str(clips[0])).keys() == {"file", "label", "confidence", "probs"}
    assert "note:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("names", [[], ["hello.wav", "notes.wav"]])
def test_evaluate_without_labelled_clips_is_an_error_not_zeros(tmp_path, tiny_bundle, capsys, names):
    import numpy as np
    import soundfile as sf

    from ser_model.cli import main

    for name in names:
        sf.write(str(tmp_path / name), np.zeros(1600, dtype="float32"), 16000)
    code = main(["evaluate", str(tmp_path), "--model", str(tiny_bundle), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip() == "", "no score for no clip"
    assert err.startswith("ser-model: error:") and "no labelled clips" in err


def test_hop_without_window_is_a_usage_error_2(tmp_path, capsys):
    from ser_model.cli import main

    code = main(["predict", str(tmp_path / "a.wav"), "--hop", "1"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "ser-model: error: --hop needs --window"


@pytest.fixture(scope="module")
def small_corpus(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two emotions of RAVDESS actor 01 under ravdess/Actor_01 (plot-examples in seconds)."""
    import shutil

    root = tmp_path_factory.mktemp("corpus")
    actor = root / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    for emotion in ("01", "05"):  # neutral, angry
        clip = sorted((datasets / "ravdess" / "Actor_01").glob(f"03-01-{emotion}-*.flac"))[0]
        shutil.copy(clip, actor / clip.name)
    return root


def test_plot_examples_default_out_actor_and_errors(small_corpus: Path, tmp_path: Path) -> None:
    """Without --out the figure goes to ./examples.png (not docs/results/ under whatever
    folder one stands in) and the path is printed; a missing actor is named as such; errors
    have the ser-model: prefix (exit 1, as other commands' run-time errors)."""
    work = tmp_path / "work"
    work.mkdir()
    proc = run("plot-examples", str(small_corpus), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert (work / "examples.png").is_file() and not (work / "docs").exists()
    assert proc.stdout.strip() == f"wrote {(work / 'examples.png').resolve()}"
    proc = run("plot-examples", str(small_corpus), "--actor", "99", cwd=work)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (f"ser-model: error: no clips of RAVDESS actor 99 under {small_corpus} "
                                   "(actors found: 01)")
    proc = run("plot-examples", str(tmp_path / "work"), cwd=work)
    assert proc.returncode == 1 and proc.stderr.startswith("ser-model: error: no RAVDESS or TESS clips")
    proc = run("plot-examples", "--help")
    assert "examples:" in proc.stdout and "ser-model plot-examples ../shared/datasets" in proc.stdout


def test_plot_examples_spectrograms_have_a_db_colour_bar(small_corpus: Path, tmp_path: Path, monkeypatch) -> None:
    from ser_model import plots

    saved = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi: saved.setdefault("fig", fig) and Path(path))
    plots.plot_examples(small_corpus, tmp_path / "x.png")
    fig = saved["fig"]
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "dB"]
    assert len(bars) == 2  # one per spectrogram row
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len({im.get_clim() for im in images}) == 1  # one dB scale for every row


@pytest.mark.parametrize("command", ["corpus", "predict", "evaluate", "train", "compare", "plot-examples", "models"])
def test_every_command_help_has_examples(command: str) -> None:
    """train, compare and plot-examples had none; ser-model --help gave 'plot-examples --help'
    as that command's example."""
    proc = run(command, "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    import re

    examples = re.split(r"^examples?:$", proc.stdout, maxsplit=1, flags=re.M)[1].splitlines()[1:]
    words = [line.split()[:2] for line in examples if line.strip()]
    assert words and all(w == ["ser-model", command] for w in words), examples
    assert not any(line.strip().endswith("--help") for line in examples)
    top = run("--help").stdout.split("\ncommands:\n", 1)[1]
    shown = top.split(f"  {command} ", 1)[1].splitlines()[1].strip()
    assert shown.startswith(f"ser-model {command}") and not shown.endswith("--help"), shown


def test_mistyped_command_gets_did_you_mean() -> None:
    proc = run("predcit", "x.wav")
    assert proc.returncode == 2
    assert "ser-model: error: unknown command 'predcit' (did you mean 'predict'?); commands: corpus," in proc.stderr
    proc = subprocess.run([str(SCRIPT.parent / "assistant"), "histroy"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "assistant: error: unknown command 'histroy' (did you mean 'history'?)" in proc.stderr
    proc = run("zzz")
    assert proc.returncode == 2 and "did you mean" not in proc.stderr and "commands: corpus" in proc.stderr


def test_cut_mp3_leaks_no_decoder_warnings(bundle: Path, clips: list[Path], tmp_path: Path) -> None:
    """A cut MP3 printed mpg123's 'Warning: Xing stream size off ...' and '[src/libmpg123/...]
    error:' lines; the command's own output is all there is."""
    import soundfile as sf

    y, rate = sf.read(clips[0], dtype="float32")
    mp3 = tmp_path / "cut.mp3"
    sf.write(mp3, y, rate, format="MP3", subtype="MPEG_LAYER_III")
    data = mp3.read_bytes()
    mp3.write_bytes(data[: len(data) // 2] + b"\xff\xfb\x90" + bytes(200))
    for extra in ([], ["--window", "1"]):
        proc = run("predict", str(mp3), "--model", str(bundle), *extra)
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr and "mpg123" not in proc.stderr, proc.stderr
    proc = subprocess.run([str(SCRIPT.parent / "assistant"), "--input", str(mp3), "--stt", "none", "--no-speak",
                           "--plain", "--model", str(bundle), "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "mpg123" not in proc.stderr, proc.stderr


def test_quiet_library_stderr_keeps_other_lines(capfd) -> None:
    import os

    from ser_model.quiet import quiet_library_stderr

    with quiet_library_stderr():
        os.write(2, b"Warning: Xing stream size off by more than 1%\n[src/libmpg123/layer3.c:1] error: x\n")
        os.write(2, b"something else\n")
    assert capfd.readouterr().err == "something else\n"
