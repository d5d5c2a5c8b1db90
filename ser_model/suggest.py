""""Did you mean ...?" for a mistyped command word, shared by ``ser-model`` and ``assistant``.
Standard library only (difflib), so ``--help`` stays instant."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'predict'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_command(word: str, choices: Sequence[str]) -> str:
    """One line: ``unknown command 'predcit' (did you mean 'predict'?); commands: a, b, c``."""
    return f"unknown command {word!r}{did_you_mean(word, choices)}; commands: {', '.join(choices)}"
