"""Model bundles: save/load round trip, integrity check, refusal of non-bundles, name resolution.

``make_tiny_bundle`` builds a small real Keras model and saves it with ``save_bundle``; the
recognizer and CLI tests use it too, so they do not depend on the shipped model.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_model import bundle as bundle_mod
from ser_model.bundle import (
    BundleInfo,
    list_bundles,
    load_bundle_config,
    resolve_bundle,
    save_bundle,
    sha256_file,
)
from ser_model.errors import BundleError
from ser_model.labels import LABELS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_tiny_bundle(
    out_dir: Path,
    *,
    name: str = "tiny",
    version: int = 1,
    labels: tuple[str, ...] = LABELS,
    seconds: float = 4.0,
    seed: int = 7,
) -> Path:
    """A small frames-input model (Conv1D + global max pool + softmax) saved as a bundle."""
    import keras

    from ser_model.features import FeatureSettings

    settings = FeatureSettings()
    n = settings.n_frame_features
    frames = settings.frames_for(seconds)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((frames, n))
    x = keras.layers.Conv1D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalMaxPooling1D()(x)
    outputs = keras.layers.Dense(len(labels), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    config = {
        "name": name,
        "version": version,
        "labels": list(labels),
        "sample_rate": settings.sample_rate,
        "features": settings,
        "normalization": {"mean": rng.normal(0, 0.1, n), "std": rng.uniform(0.5, 2.0, n)},
        "input": {"kind": "frames", "max_frames": frames},
        "architecture": "tiny-test",
    }
    metrics = {"note": "untrained test model", "uar": None}
    return save_bundle(out_dir / f"{name}-v{version}", model=model, config=config, metrics=metrics, card="# tiny\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundles"))


def test_round_trip_writes_four_files_and_validates(tiny: Path) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == ["MODEL_CARD.md", "config.json", "metrics.json", "model.keras"]
    config = load_bundle_config(tiny)
    assert config["model_version"] == "tiny-v1"
    assert config["labels"] == list(LABELS)
    assert config["weights"] == "model.keras"
    assert config["weights_sha256"] == sha256_file(tiny / "model.keras")
    assert config["features"]["parts"] == ["logmel", "mfcc_delta", "spectral"]
    assert len(config["normalization"]["mean"]) == len(config["normalization"]["std"])
    assert config["created"]  # ISO 8601 time stamp filled in
    assert json.loads((tiny / "metrics.json").read_text())["note"] == "untrained test model"
    # config.json path works as well as the folder
    assert load_bundle_config(tiny / "config.json") == config
    # no leftover temporary folders next to the bundle
    assert [p.name for p in tiny.parent.iterdir()] == [tiny.name]


def test_weights_loadable_in_safe_mode(tiny: Path) -> None:
    import keras

    model = keras.saving.load_model(str(tiny / "model.keras"), safe_mode=True, compile=False)
    assert model.outputs[0].shape[-1] == len(LABELS)


def test_sha_mismatch_refused(tiny: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny, tmp_path / "tampered-v1")
    with open(copy / "model.keras", "ab") as f:
        f.write(b"\0")
    with pytest.raises(
        BundleError, match=r"weights do not match config\.json \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)"
    ):
        load_bundle_config(copy)


def test_missing_weights_refused(tiny: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny, tmp_path / "noweights-v1")
    (copy / "model.keras").unlink()
    with pytest.raises(BundleError, match=r"model\.keras is missing"):
        load_bundle_config(copy)


def test_non_bundle_folder_refused_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        load_bundle_config(tmp_path)
    assert str(tmp_path) in str(info.value) and "not a model bundle" in str(info.value)
    with pytest.raises(BundleError, match="no such folder"):
        load_bundle_config(tmp_path / "absent")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.pop("labels"), "missing key.*labels"),
        (lambda c: c.update(labels=["a", "a"]), "duplicates"),
        (lambda c: c.update(sample_rate="16k"), "sample_rate"),
        (lambda c: c["normalization"].update(std=[1.0]), "normalization"),
        (lambda c: c.update(input={"kind": "frames"}), "max_frames"),
        (lambda c: c.update(input={"kind": "video"}), "input.kind"),
        (lambda c: c.update(weights="../elsewhere.keras"), "file name inside the bundle"),
    ],
)
def test_invalid_config_refused(tiny: Path, tmp_path: Path, edit, message: str) -> None:
    copy = shutil.copytree(tiny, tmp_path / "bad-v1")
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=message):
        load_bundle_config(copy)


def test_invalid_json_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle_config(tmp_path)


def test_save_bundle_refuses_bad_config_without_writing(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="missing key"):
        save_bundle(tmp_path / "x-v1", model=None, config={"name": "x"}, metrics={}, card="")
    assert list(tmp_path.iterdir()) == []


def test_save_bundle_replaces_existing(tmp_path: Path) -> None:
    first = make_tiny_bundle(tmp_path, seed=1)
    sha1 = load_bundle_config(first)["weights_sha256"]
    second = make_tiny_bundle(tmp_path, seed=2)
    assert second == first
    assert load_bundle_config(second)["weights_sha256"] != sha1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-v1"]


@pytest.fixture()
def registry(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models/ folder with tiny-v1, tiny-v2 and a broken bundle, as the only search root."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny, models / "tiny-v1")
    shutil.copytree(tiny, models / "tiny-v2")
    broken = shutil.copytree(tiny, models / "broken-v1")
    (broken / "model.keras").write_bytes(b"not a model")
    (models / "notes").mkdir()  # a folder without config.json is not listed
    monkeypatch.setattr(bundle_mod, "checkout_models_dir", lambda: models)
    monkeypatch.setattr(bundle_mod, "installed_models_dir", lambda: None)
    monkeypatch.delenv(bundle_mod.DEFAULT_BUNDLE_ENV, raising=False)
    return models


def test_resolve_by_name_and_path(registry: Path) -> None:
    assert resolve_bundle("tiny-v1") == registry / "tiny-v1"
    assert resolve_bundle("tiny") == registry / "tiny-v2"  # highest version
    assert resolve_bundle(registry / "tiny-v1") == registry / "tiny-v1"
    assert resolve_bundle(str(registry / "tiny-v1")) == registry / "tiny-v1"
    with pytest.raises(BundleError, match=r"no model bundle named 'nope'.*available: broken-v1, tiny-v1, tiny-v2"):
        resolve_bundle("nope")
    with pytest.raises(BundleError, match="no such folder"):
        resolve_bundle(registry / "absent")


def test_resolve_default(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_mod, "DEFAULT_BUNDLE", "tiny")
    assert resolve_bundle() == registry / "tiny-v2"
    monkeypatch.setenv(bundle_mod.DEFAULT_BUNDLE_ENV, str(registry / "tiny-v1"))
    assert resolve_bundle() == registry / "tiny-v1"
    monkeypatch.delenv(bundle_mod.DEFAULT_BUNDLE_ENV)
    monkeypatch.setattr(bundle_mod, "DEFAULT_BUNDLE", "missing")
    with pytest.raises(BundleError, match="default model bundle 'missing' not found"):
        resolve_bundle()


def test_list_bundles_reports_invalid_ones(registry: Path) -> None:
    infos = {b.name: b for b in list_bundles()}
    assert sorted(infos) == ["broken-v1", "tiny-v1", "tiny-v2"]
    assert all(isinstance(b, BundleInfo) for b in infos.values())
    assert infos["tiny-v1"].problem is None and infos["tiny-v1"].labels == LABELS
    assert infos["tiny-v1"].source == "checkout"
    assert "weights do not match" in infos["broken-v1"].problem


def test_checkout_models_dir_is_top_level_models() -> None:
    import ser_model

    assert bundle_mod.checkout_models_dir() == Path(ser_model.__file__).resolve().parents[1] / "models"


def test_installed_package_is_searched_after_the_checkout(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-editable install finds bundles in ser_model.bundled_models; the checkout wins a tie."""
    checkout, installed = tmp_path / "checkout", tmp_path / "installed"
    checkout.mkdir()
    installed.mkdir()
    shutil.copytree(tiny, installed / "tiny-v1")
    shutil.copytree(tiny, installed / "only-installed-v3")
    monkeypatch.setattr(bundle_mod, "checkout_models_dir", lambda: checkout)
    monkeypatch.setattr(bundle_mod, "installed_models_dir", lambda: installed)
    assert resolve_bundle("only-installed") == installed / "only-installed-v3"
    assert {b.name: b.source for b in list_bundles()} == {"only-installed-v3": "installed", "tiny-v1": "installed"}
    shutil.copytree(tiny, checkout / "tiny-v1")
    assert resolve_bundle("tiny-v1") == checkout / "tiny-v1"


def test_shipped_default_name_resolves_when_models_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bundle_mod.DEFAULT_BUNDLE_ENV, raising=False)
    if not any(p.name.startswith(f"{bundle_mod.DEFAULT_BUNDLE}-v") for p in bundle_mod.checkout_models_dir().iterdir()):
        pytest.skip(f"no {bundle_mod.DEFAULT_BUNDLE}-v<N> in models/ yet")
    assert resolve_bundle().parent == bundle_mod.checkout_models_dir()
