"""One check for every output path a command line takes (``assistant history --csv/--plot``,
``ser-model train/compare/plot-examples --out``, ...), used as an argparse ``type=``.

A bad output path is a usage error: argparse prints ``PROG: error: argument --csv: ...`` on one
line and exits 2 before anything runs, instead of a traceback after the work is done. Light:
only the standard library at import, so ``--help`` stays instant. Also :func:`save_npz_atomic`,
the one way feature caches are written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

#: Extensions matplotlib writes without extra packages.
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff")


def check_output_file(value: str, suffixes: tuple[str, ...] | None = None) -> str:
    """``value`` if a file can be written there; else ArgumentTypeError with one line."""
    path = Path(value)
    if not value or value.endswith(("/", "\\")) or path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a folder; give a file name")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise argparse.ArgumentTypeError(
            f"{value!r}: unsupported extension {path.suffix or '(none)'!r}; use one of {', '.join(suffixes)}")
    parent = path.parent
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"{value!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r}: {str(parent)!r} is not a folder")
    return value


def check_output_dir(value: str) -> str:
    """``value`` if it is, or can be created as, a folder (missing folders are created later)."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a file, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{value!r}: {str(parent)!r} is a file, not a folder")
            break
    return value


def check_output_file_or_dir(suffixes: tuple[str, ...]) -> Callable[[str], str]:
    """A name with an extension is a file (one of ``suffixes``); without one, a folder."""

    def check(value: str) -> str:
        if Path(value).suffix and not Path(value).is_dir():
            return check_output_file(value, suffixes)
        return check_output_dir(value)

    return check


def output_file(suffixes: tuple[str, ...] | None = None) -> Callable[[str], str]:
    """An argparse ``type=`` for an output file (optionally limited to ``suffixes``)."""

    def check(value: str) -> str:
        return check_output_file(value, suffixes)

    return check


plot_file = output_file(PLOT_SUFFIXES)


def save_npz_atomic(path: Path, **arrays) -> None:
    """Write ``arrays`` to ``path`` (.npz) whole or not at all: a temporary file of this
    process beside it, then an atomic rename, so a reader never sees half a file and two
    processes filling one cache (two trainings on one ``--cache``) do not collide."""
    import os

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
