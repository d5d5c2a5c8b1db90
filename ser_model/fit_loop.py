"""The Keras pieces of :func:`ser_model.train.fit_neural`: the epoch batches and the
validation-UAR monitor (early stopping, kept weights, checkpoint, progress).

This module imports Keras (through ser_model.tf_quiet); import it inside functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_model.labels import LABELS
from ser_model.tf_quiet import import_keras

keras = import_keras()


class EpochBatches(keras.utils.PyDataset):
    """Training batches: each epoch one version (clean or an augmented copy, ``versions[v][i]``)
    of every training clip, a random ``max_frames`` crop, shuffled; optional TESS subsampling
    (``tess_fraction``) and mixup (``mixup_alpha``). Every draw comes from ``rng``, in order."""

    def __init__(self, versions: list, labels: np.ndarray, speakers: np.ndarray, train_idx: np.ndarray,
                 mean: np.ndarray, std: np.ndarray, ts, rng: np.random.Generator):
        super().__init__()
        self.versions, self.labels, self.train_idx = versions, labels, train_idx
        self.is_tess = np.char.startswith(speakers.astype(str), "tess:")
        self.mean, self.std, self.ts, self.rng = mean, std, ts, rng
        self.on_epoch_end()

    def on_epoch_end(self):
        idx, ts, rng = self.train_idx, self.ts, self.rng
        if ts.tess_fraction < 1.0:
            tess = idx[self.is_tess[idx]]
            keep = rng.choice(tess, int(round(len(tess) * ts.tess_fraction)), replace=False)
            idx = np.concatenate([idx[~self.is_tess[idx]], keep])
        self.order = rng.permutation(idx)
        self.ver = rng.integers(0, len(self.versions), len(self.order))

    def __len__(self):
        return max(1, int(np.ceil(len(self.order) / self.ts.batch_size)))

    def __getitem__(self, b):
        from ser_model.dataset import batch_frames

        ts, rng = self.ts, self.rng
        sl = slice(b * ts.batch_size, (b + 1) * ts.batch_size)
        idx, ver = self.order[sl], self.ver[sl]
        x = batch_frames([self.versions[v][i] for i, v in zip(idx, ver)], self.mean, self.std, ts.max_frames, rng=rng)
        y = np.eye(len(LABELS), dtype=np.float32)[self.labels[idx]]
        if ts.mixup_alpha > 0:
            lam = rng.beta(ts.mixup_alpha, ts.mixup_alpha, (len(x), 1)).astype(np.float32)
            perm = rng.permutation(len(x))
            x = lam[:, :, None] * x + (1 - lam[:, :, None]) * x[perm]
            y = lam * y + (1 - lam) * y[perm]
        return x, y


class UarMonitor(keras.callbacks.Callback):
    """After each epoch: the validation speakers' UAR (``x_val`` None: no validation, the last
    epoch counts as best), the history, the best weights (``keep='best'``), the checkpoint,
    progress, and early stopping after ``patience`` epochs without a better UAR."""

    def __init__(self, x_val, y_val: np.ndarray, *, keep: str, patience: int, checkpoint: Path | None,
                 progress, description: str, n_epochs: int):
        super().__init__()
        self.x_val, self.y_val, self.keep, self.patience, self.checkpoint = x_val, y_val, keep, patience, checkpoint
        self.progress, self.description, self.n_epochs = progress, description, n_epochs
        self.task = progress.add_task(description, total=n_epochs) if progress is not None else None
        self.best, self.weights, self.best_epoch, self.history = -1.0, None, -1, []

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.metrics import balanced_accuracy_score

        logs = logs or {}
        entry = {"epoch": epoch + 1, "loss": float(logs.get("loss", np.nan)),
                 "accuracy": float(logs.get("accuracy", np.nan))}
        if self.x_val is not None:
            pred = self.model.predict(self.x_val, verbose=0, batch_size=256).argmax(1)
            entry["val_uar"] = float(balanced_accuracy_score(self.y_val, pred))
            score = entry["val_uar"]
        else:
            score = float(epoch)  # no validation speakers: keep the last epoch
        self.history.append(entry)
        improved = score > self.best
        if improved:
            self.best, self.best_epoch = score, epoch + 1
            self.weights = self.model.get_weights() if self.keep == "best" else None
        if self.checkpoint is not None and (improved or self.keep == "last"):
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            self.model.save(str(self.checkpoint))
        if self.task is not None:
            val = f" val UAR {entry['val_uar']:.3f} (best {self.best:.3f})" if self.x_val is not None else ""
            self.progress.update(self.task, advance=1, description=f"{self.description}: loss {entry['loss']:.3f}{val}")
        if self.x_val is not None and epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def finish(self, model) -> tuple[list[dict], int]:
        """Restore the kept weights into ``model``; returns (history, kept epoch, 1-based)."""
        if self.keep == "best" and self.weights is not None:
            model.set_weights(self.weights)
        if self.task is not None:
            self.progress.update(self.task, completed=self.n_epochs)
        kept = self.best_epoch if self.keep == "best" else len(self.history)
        return self.history, kept
