"""Would a trained end-of-turn model hold the cut sentences Whisper's sentence-end probability
lets through? Offline, Smart Turn v3.2 (Daily/pipecat, BSD-2-Clause: a Whisper-tiny encoder
classifier trained on many speakers and languages to tell a finished turn from an unfinished
one by the sound of it) on the clips of ``bench/sentence_end_eval.py``: whole sentences and
the same sentences cut at each word boundary, from RAVDESS and TESS.

The model is not a dependency of the project. Its ONNX file ships inside the ``pipecat-ai``
wheel (``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``, 8.7 MB)::

    pip download pipecat-ai==1.14.0 --no-deps -d /tmp/pc && cd /tmp/pc && unzip -q pipecat_ai-*.whl
    .venv/bin/python bench/smart_turn_eval.py --onnx /tmp/pc/pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx

Input as pipecat gives it: the last 8 s of 16 kHz audio (zeros before), the waveform
normalised to zero mean and unit variance, Whisper's 80-bin log-mel (faster-whisper's
extractor, equal to pipecat's own within 3e-7), here with 0.2 s of silence after the pause
(pipecat's VAD stop time). Reports the AUC (whole vs cut) of Whisper's end probability and of
Smart Turn, and the endpointer's rule (``assistant.vad.continues``) with and without "Smart
Turn below a threshold also goes on": whole sentences held and cuts judged finished.

The answer measured on 2026-12-03 was no: AUC 0.739 on RAVDESS and 0.428 on TESS against
Whisper's 0.952 / 0.835; it calls most cuts finished (median 0.92 on RAVDESS cuts) and most
TESS sentences unfinished, so the endpointer does not use it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

WINDOW = 8 * 16000
TAIL = np.zeros(3200, np.float32)


class SmartTurn:
    def __init__(self, path: Path) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        self.session = ort.InferenceSession(str(path), sess_options=so)
        self.features = FeatureExtractor(feature_size=80)
        self.ms: list[float] = []

    def __call__(self, y: np.ndarray) -> float:
        t0 = time.perf_counter()
        y = np.asarray(y, np.float32)[-WINDOW:]
        y = np.pad(y, (WINDOW - len(y), 0))
        y = (y - y.mean()) / np.sqrt(y.var() + 1e-7)
        mel = self.features(y, padding=0)[:, :WINDOW // 160].astype(np.float32)
        p = float(self.session.run(None, {"input_features": mel[None]})[0].ravel()[0])
        self.ms.append((time.perf_counter() - t0) * 1000)
        return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, required=True, help="smart-turn-v3.x ONNX file (see above)")
    ap.add_argument("--every-ravdess", type=int, default=4, help="every N-th RAVDESS clip (default 4)")
    ap.add_argument("--every-tess", type=int, default=14, help="every N-th TESS clip (default 14)")
    ap.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    args = ap.parse_args()
    if not args.onnx.is_file():
        print(f"smart_turn_eval: no ONNX file at {args.onnx} (see --help for where it comes from)", file=sys.stderr)
        return 1
    from sentence_end_eval import collect
    from sklearn.metrics import roc_auc_score

    from assistant import vad
    from tests.joined_clips import _load

    data = Path(args.datasets)
    corpora = {"RAVDESS": sorted((data / "ravdess").glob("Actor_*/*.flac"))[:: args.every_ravdess],
               "TESS": sorted((data / "tess").rglob("*.flac"))[:: args.every_tess]}
    if not all(corpora.values()):
        print(f"smart_turn_eval: no RAVDESS or TESS clips under {data}", file=sys.stderr)
        return 1
    print(f"model {args.onnx.name} sha256 {hashlib.sha256(args.onnx.read_bytes()).hexdigest()[:16]}")
    model = SmartTurn(args.onnx)
    for name, files in corpora.items():
        rows, _ = collect(files)
        audio = {p: _load(p) for p in {r.path for r in rows}}
        st = [model(np.concatenate([audio[r.path][:r.end], TAIL])) for r in rows]
        whole = np.array([r.whole for r in rows])
        scored = [i for i, r in enumerate(rows) if r.end_prob is not None]
        auc_w = roc_auc_score(whole[scored], [rows[i].end_prob for i in scored])
        print(f"\n{name}: {whole.sum()} whole, {(~whole).sum()} cut; AUC Whisper end probability "
              f"{auc_w:.3f}, Smart Turn {roc_auc_score(whole, st):.3f}; Smart Turn median on whole "
              f"{np.median(np.array(st)[whole]):.3f}, on cuts {np.median(np.array(st)[~whole]):.3f}")
        print("  rule | whole sentences held | cuts judged finished")
        for th in (None, 0.1, 0.2, 0.3, 0.5):
            goes_on = np.array([vad.continues(r.text, r.end_prob) or (th is not None and s < th)
                                for r, s in zip(rows, st)])
            label = "vad.continues (shipped)" if th is None else f"+ Smart Turn < {th}"
            print(f"  {label:<24} | {goes_on[whole].mean():.1%} | {(~goes_on[~whole]).mean():.1%}")
    print(f"\nSmart Turn inference (features + ONNX, 1 thread): median {np.median(model.ms):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
