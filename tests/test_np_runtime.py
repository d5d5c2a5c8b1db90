"""The pure-NumPy runtime (ser_model.np_runtime) against Keras (safe_mode=True).

- the shipped bundle: ~40 real clips (padded and cropped inputs), whole ensemble and each member;
- a tiny bundle using every supported layer type, masks included;
- an unsupported layer -> BundleError (numpy backend) / Keras fallback (auto);
- the default recognizer load imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser_model.bundle import load_bundle_config, resolve_bundle, save_bundle
from ser_model.errors import BundleError
from ser_model.labels import LABELS

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4


def _keras_model(path: Path):
    import keras

    import ser_model.layers  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(str(path), safe_mode=True, compile=False)


def _clips(datasets: Path, n: int) -> list[Path]:
    ravdess = sorted((datasets / "ravdess").rglob("*.flac")) + sorted((datasets / "ravdess").rglob("*.wav"))
    tess = sorted((datasets / "tess").rglob("*.wav")) + sorted((datasets / "tess").rglob("*.flac"))
    picked = []
    for files, k in ((ravdess, n - n // 3), (tess, n // 3)):
        if files:
            picked += files[:: max(1, len(files) // k)][:k]
    return picked


@pytest.fixture(scope="module")
def shipped() -> Path:
    """The shipped frame-level network (ser-crnn-v2): the bundle whose every layer the NumPy
    runtime executes (the shipped ser-v3 head: tests/test_shipped_model.py)."""
    try:
        return resolve_bundle("ser-crnn-v2")
    except BundleError as err:
        pytest.skip(f"no shipped bundle: {err}")


def test_shipped_bundle_parity_on_real_clips(shipped: Path, datasets: Path) -> None:
    from ser_model.audio import load_audio
    from ser_model.recognizer import EmotionRecognizer

    rec = EmotionRecognizer.load(shipped, backend="numpy")
    assert rec.backend == "numpy"
    clips = _clips(datasets, 40)
    assert len(clips) >= 30
    xs, padded, cropped = [], 0, 0
    for i, clip in enumerate(clips):
        y = load_audio(clip, sample_rate=rec.sample_rate)
        if i % 3 == 1:
            y = y[: len(y) // 3]  # short: many padding frames (the mask path)
        elif i % 3 == 2:
            y = np.concatenate([y, y, y])  # long: cropped to max_frames
        frames = len(y) // rec.settings.hop_length + 1
        padded += frames < rec.max_frames
        cropped += frames > rec.max_frames
        xs.append(rec.features(y))
    assert padded >= 10 and cropped >= 10
    batch = np.concatenate(xs)
    keras_model = _keras_model(shipped / load_bundle_config(shipped)["weights"])
    p_keras = np.asarray(keras_model(batch, training=False))
    p_numpy = np.concatenate([rec._call(x) for x in xs])  # batch of 1, as in production
    assert np.abs(p_numpy - p_keras).max() < TOL
    assert (p_numpy.argmax(axis=1) == p_keras.argmax(axis=1)).all()

    members = rec._call.submodels()
    keras_members = {layer.name: layer for layer in keras_model.layers if layer.name in members}
    assert set(keras_members) == set(members)  # empty for a single (non-ensemble) model
    for name, member in members.items():
        want = np.asarray(keras_members[name](batch, training=False))
        got = np.concatenate([member(x) for x in xs])
        assert np.abs(got - want).max() < TOL, name


def _frames_config(frames: int) -> dict:
    from ser_model.features import FeatureSettings

    settings = FeatureSettings()
    n = settings.n_frame_features
    return {
        "name": "every-layer",
        "version": 1,
        "labels": list(LABELS),
        "sample_rate": settings.sample_rate,
        "features": settings,
        "normalization": {"mean": [0.0] * n, "std": [1.0] * n},
        "input": {"kind": "frames", "max_frames": frames},
        "architecture": "test",
    }


def _every_layer_model(frames: int, n: int):
    import keras

    from ser_model.layers import AttentionPooling, FeatureSlice, FrameMask, SpecAugment

    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((frames, n), name="frames")

    # member 1: conv / BN / residual / pooling / BiGRU / attention (the crnn style)
    mask = FrameMask()(inp)
    x = SpecAugment(seed=1)(inp)
    a = L.Conv1D(16, 3, padding="same", dilation_rate=2, activation="relu")(x)
    a = L.BatchNormalization(center=False)(a)
    b = L.Conv1D(16, 1, use_bias=False)(x)
    x = L.Activation("tanh")(L.Add()([a, b]))
    x = L.BatchNormalization()(x)
    x = L.MaxPooling1D(2, padding="same")(x)
    mask = L.MaxPooling1D(2, padding="same")(mask)
    x = L.Dropout(0.2)(L.SpatialDropout1D(0.2)(x))
    c = L.Conv1D(8, 5, strides=2, padding="valid")(x)
    c = L.AveragePooling1D(3, strides=2, padding="same")(c)
    c = L.MaxPooling1D(2, padding="valid")(c)
    g = L.GlobalAveragePooling1D()(c)
    x = L.Bidirectional(L.GRU(8, return_sequences=True))(x)
    att = AttentionPooling(8, with_std=True)([x, mask])
    out1 = L.Dense(len(LABELS), activation="softmax")(L.Average()([L.Dense(12)(g), L.Dense(12)(att)]))
    member1 = keras.Model(inp, out1, name="convs")

    # member 2: Masking -> LSTM / GRU / Bidirectional(LSTM) with Keras masks (the lstm style)
    inp2 = keras.Input((frames, n), name="frames")
    m = L.AveragePooling1D(4, padding="same")(inp2)
    m = L.Masking(mask_value=0.0)(m)
    s = L.LSTM(8, return_sequences=True)(m)
    s = L.Dropout(0.1)(s)
    pooled = L.GlobalAveragePooling1D()(s)  # masked mean
    last = L.Bidirectional(L.LSTM(4))(s)
    back = L.GRU(6, reset_after=False, go_backwards=True)(m)
    seq = L.GRU(5, return_sequences=True)(m)
    seq_last = L.LSTM(3)(seq)
    h = L.Add()([L.Dense(10)(pooled), L.Dense(10)(last), L.Dense(10)(back), L.Dense(10)(seq_last)])
    h = L.Dense(16, activation="relu")(h)
    out2 = L.Dense(len(LABELS), activation="softmax")(h)
    member2 = keras.Model(inp2, out2, name="rnns")

    # member 3: log-mel columns as an image through 2-D convs and pools (the cnn2d style),
    # with odd sizes so that SAME padding is uneven
    inp3 = keras.Input((frames, n), name="frames")
    im = FeatureSlice(0, 13)(inp3)
    im = L.Reshape((frames, 13, 1))(im)
    im = L.Conv2D(4, 3, padding="same", activation="relu")(im)
    im = L.BatchNormalization()(im)
    im = L.MaxPooling2D((2, 2), padding="same")(im)  # (24, 7, 4)
    im = L.Conv2D(6, (3, 2), padding="valid", use_bias=False)(im)  # (22, 6, 6)
    im = L.MaxPooling2D((3, 4), padding="same")(im)  # (8, 2, 6)
    im = L.SpatialDropout2D(0.2)(im)
    im = L.Reshape((8, 12))(im)
    out3 = L.Dense(len(LABELS), activation="softmax")(L.GlobalAveragePooling1D()(im))
    member3 = keras.Model(inp3, out3, name="image")

    top = keras.Input((frames, n), name="frames")
    out = L.Average(name="probs")([member1(top), member2(top), member3(top)])
    return keras.Model(top, out, name="ensemble")


def test_every_supported_layer_matches_keras(tmp_path: Path) -> None:
    from ser_model import np_runtime
    from ser_model.features import FeatureSettings

    frames, n = 48, FeatureSettings().n_frame_features
    model = _every_layer_model(frames, n)
    bundle = save_bundle(tmp_path / "every-layer-v1", model=model, config=_frames_config(frames), metrics={}, card="#")
    weights = bundle / "model.keras"
    with __import__("zipfile").ZipFile(weights) as zf:
        classes = json.dumps(json.loads(zf.read("config.json")))
    for name in np_runtime.SUPPORTED_LAYERS:
        assert f'"class_name": "{name}"' in classes, name  # the test model really uses it

    rng = np.random.default_rng(0)
    x = np.zeros((5, frames, n), dtype=np.float32)
    for i, real in enumerate((frames, 40, 21, 7, 1)):
        x[i, :real] = rng.standard_normal((real, n))
    keras_model = _keras_model(weights)
    want = np.asarray(keras_model(x, training=False))
    ours = np_runtime.load_numpy_model(weights)
    got_batch = ours(x)  # batched (the np.where mask path) ...
    got_single = np.concatenate([ours(x[i : i + 1]) for i in range(len(x))])  # ... and batch 1 (step skipping)
    assert np.abs(got_batch - want).max() < TOL
    assert np.abs(got_single - want).max() < TOL
    for name, member in ours.submodels().items():
        sub = keras_model.get_layer(name)
        assert np.abs(member(x) - np.asarray(sub(x, training=False))).max() < TOL, name


def test_unsupported_layer_raises_bundle_error_and_auto_falls_back(tmp_path: Path) -> None:
    import keras

    from ser_model.features import FeatureSettings
    from ser_model.recognizer import EmotionRecognizer

    frames, n = 32, FeatureSettings().n_frame_features
    inp = keras.Input((frames, n))
    x = keras.layers.LayerNormalization()(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, keras.layers.Dense(len(LABELS), activation="softmax")(x))
    bundle = save_bundle(tmp_path / "layernorm-v1", model=model, config=_frames_config(frames), metrics={}, card="#")
    with pytest.raises(BundleError, match="LayerNormalization is not supported by the NumPy runtime"):
        EmotionRecognizer.load(bundle, backend="numpy")
    rec = EmotionRecognizer.load(bundle, backend="auto", jit=False)
    assert rec.backend == "keras"
    keras_rec = EmotionRecognizer.load(bundle, backend="keras", jit=False)
    assert keras_rec.backend == "keras"


def test_bad_backend_name(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ser_model.errors import ParameterError
    from ser_model.recognizer import EmotionRecognizer

    with pytest.raises(ParameterError):
        EmotionRecognizer.load(shipped, backend="torch")
    monkeypatch.setenv("SER_MODEL_BACKEND", "nope")
    with pytest.raises(ParameterError):
        EmotionRecognizer.load(shipped)


def test_default_load_imports_no_tensorflow(shipped: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from ser_model.recognizer import EmotionRecognizer\n"
        "rec = EmotionRecognizer.load()\n"
        "t = np.arange(48000) / 16000\n"
        "y = (0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype('float32')\n"
        "r = rec.predict(y, 16000)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(rec.backend, r.label, heavy[:5])\n"
        "assert rec.backend == 'numpy' and not heavy, heavy[:5]\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SER_MODEL_BACKEND", "SER_MODEL_BUNDLE")}
    env["SER_MODEL_BUNDLE"] = str(shipped)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("numpy ")


def test_env_selects_keras_backend(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ser_model.recognizer import EmotionRecognizer

    monkeypatch.setenv("SER_MODEL_BACKEND", "keras")
    rec = EmotionRecognizer.load(shipped, jit=False)
    assert rec.backend == "keras"


def _layer_classes(layer: dict, out: set[str]) -> set[str]:
    """Class names of a saved Keras layer and the layers and ops inside it (functional models'
    ``layers``, Bidirectional's wrapped ones)."""
    out.add(layer["class_name"])
    cfg = layer.get("config") or {}
    for inner in cfg.get("layers", []):
        _layer_classes(inner, out)
    for key in ("layer", "forward_layer", "backward_layer"):
        if isinstance(cfg.get(key), dict):
            _layer_classes(cfg[key], out)
    return out


def test_supported_layers_are_the_layers_the_shipped_bundles_use() -> None:
    """SUPPORTED_LAYERS (the one list, read from the runtime's dispatch tables) is exactly what the
    shipped bundles' graphs hold: nothing they need is missing, nothing is kept that none uses."""
    import zipfile

    from ser_model import np_runtime

    used: set[str] = set()
    for weights in sorted((REPO / "models").glob("*/model.keras")):
        with zipfile.ZipFile(weights) as zf:
            _layer_classes(json.loads(zf.read("config.json")), used)
    assert used == set(np_runtime.SUPPORTED_LAYERS)
