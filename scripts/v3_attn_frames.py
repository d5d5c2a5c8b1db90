# Frames for scripts/v3_attn.py: the per-clip feature cache matched to bank rows by their pooled vector
# (cache keys carried file mtimes until 2026-12-07, and those changed when the datasets were remounted);
# writes scratch/frames.npz
import argparse
import glob

import numpy as np

from ser_model.encoder_features import pool

ap = argparse.ArgumentParser(description="frames of the bank's clips from the ser-v3 feature cache")
ap.add_argument("--cache", required=True, help="the feature cache (holds bank_v3.npz, from scripts/v3_cv.py run)")
ap.add_argument("--out", default="scratch/frames.npz")
args = ap.parse_args()
z = np.load(f"{args.cache}/bank_v3.npz")
V = z['vectors']
key = {}
for i, v in enumerate(V):
    key.setdefault(v.tobytes(), []).append(i)
print('distinct vectors', len(key))
files = [f for f in glob.glob(f"{args.cache}/*.npz") if not f.split('/')[-1].startswith('bank')]
frames = [None] * len(V)
for f in files:
    with np.load(f) as c:
        fr, pr = c['frames'], c['prosody']
    rows = key.get(pool(fr.astype(np.float32), pr).astype(np.float64).tobytes())
    if rows is None:
        print("unmatched", f)
        continue
    for i in rows:
        frames[i] = fr
miss = [i for i, f in enumerate(frames) if f is None]
print('files', len(files), 'missing', len(miss))
L = np.array([len(f) for f in frames])
print(np.percentile(L, [0, 5, 50, 90, 95, 99, 100]))
for c in ['ravdess', 'tess']:
    print(c, np.percentile(L[z['corpora'] == c], [0, 50, 95, 99, 100]))
T = int(L.max())
out = np.zeros((len(V), T, 384), np.float16)
for i, f in enumerate(frames):
    out[i, :len(f)] = f
np.savez(args.out, frames=out, lengths=L, paths=z['paths'])
