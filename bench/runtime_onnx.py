"""NumPy runtime vs ONNX Runtime on the shipped heads: predict latency of one 3 s clip's model
input, one thread, median, both in this one process (issue 15's runtime question).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/runtime_onnx.py ONNX_DIR

``ONNX_DIR`` holds ``<bundle>.onnx`` graphs converted from the bundles' model.keras with
tf2onnx (a dev-only tool, not in uv.lock: ``pip install --target DIR tf2onnx onnx``, then
``python bench/runtime_onnx.py --convert ONNX_DIR`` with DIR on PYTHONPATH). Prints the
median of ``--repeat`` calls per runtime, and the largest probability difference between them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLES = ("ser-crnn-v2", "ser-v3")


def _input(config: dict, rng: np.random.Generator, width: int) -> np.ndarray:
    """A model input the size of one 3 s clip (frames: 3 s of frames, zero-padded like the recognizer)."""
    inp = config["input"]
    if inp["kind"] == "frames":
        n_feat = len(config["normalization"]["mean"])
        x = np.zeros((1, inp["max_frames"], n_feat), np.float32)
        real = min(inp["max_frames"], int(3.0 * config["sample_rate"] / config["features"]["hop_length"]) + 1)
        x[0, :real] = rng.standard_normal((real, n_feat))
        return x
    return rng.standard_normal((1, width)).astype(np.float32)  # an utterance vector (ser-v3)


def convert(onnx_dir: Path) -> None:
    from ser_model.tf_quiet import import_tensorflow

    tf = import_tensorflow(1)
    import keras
    import tf2onnx

    import ser_model.layers  # noqa: F401  (registers our layers)

    onnx_dir.mkdir(parents=True, exist_ok=True)
    for name in BUNDLES:
        model = keras.saving.load_model(REPO / "models" / name / "model.keras", safe_mode=True, compile=False)
        spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="x"),)
        fn = tf.function(lambda x, m=model: m(x, training=False), input_signature=spec)
        tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=str(onnx_dir / f"{name}.onnx"))
        print(f"converted {name}")


def _median_ms(fn, x: np.ndarray, repeat: int) -> float:
    for _ in range(5):
        fn(x)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def measure(onnx_dir: Path, repeat: int) -> None:
    import onnxruntime as ort

    from ser_model import np_runtime
    from ser_model.bundle import load_bundle_config

    rng = np.random.default_rng(0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, 1 thread, median of {repeat}")
    for name in BUNDLES:
        folder = REPO / "models" / name
        config = load_bundle_config(folder)
        ours = np_runtime.load_numpy_model(folder / config["weights"])
        sess = ort.InferenceSession(str(onnx_dir / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
        feed = sess.get_inputs()[0].name
        x = _input(config, rng, int(sess.get_inputs()[0].shape[-1]))

        def run_ort(v, s=sess, f=feed):
            return s.run(None, {f: v})[0]

        diff = float(np.abs(np.asarray(ours(x)) - run_ort(x)).max())
        t_np, t_ort = _median_ms(ours, x, repeat), _median_ms(run_ort, x, repeat)
        print(f"{name}: numpy {t_np:.2f} ms, onnxruntime {t_ort:.2f} ms per clip; max |p_numpy - p_ort| {diff:.1e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx_dir", type=Path)
    parser.add_argument("--convert", action="store_true", help="write the ONNX graphs (needs tf2onnx) and stop")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    if args.convert:
        convert(args.onnx_dir)
    else:
        measure(args.onnx_dir, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
