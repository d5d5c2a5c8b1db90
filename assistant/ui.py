"""What the user sees: a rich live view, or plain lines (``--plain`` or output not a terminal).

Both views take the same calls from the loop: ``state`` (calibrating, listening, thinking,
speaking), ``level`` (input level while listening), ``turn`` (transcript, emotion with
probability bars, reply, time per stage), ``notice`` (one-line warnings and errors) and
``summary`` at the end.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

from assistant.types import Turn

STATES = ("starting", "calibrating", "loading model", "listening", "thinking", "speaking", "done")
EMOJI_FREE_BAR = "█"


def _bar(p: float, width: int = 20) -> str:
    n = int(round(max(0.0, min(1.0, p)) * width))
    return EMOJI_FREE_BAR * n + "·" * (width - n)


def _timings(latency: Mapping[str, float]) -> str:
    order = ("stt", "ser", "reply", "total")
    return "  ".join(f"{k} {latency[k]:.0f} ms" for k in order if k in latency)


def _windows_line(turn: Turn) -> str:
    """Emotion over time of a long utterance, e.g. ``over time: 0-3 s sad, 3-6 s -, ...``."""
    base = turn.utterance.offset or 0.0
    parts = [f"{base + w.start_s:.0f}-{base + w.end_s:.0f} s "
             + (w.emotion.label + ("?" if w.uncertain else "") if w.emotion else "-")
             for w in turn.windows]
    return "over time: " + ", ".join(parts)


def _learning(turn: Turn) -> str:
    """`` (still learning your voice: 3/10)`` while the voice profile is young, else ``""``."""
    from assistant.profiles import LEARNING_CLIPS

    n = turn.voice_clips
    if n is None or n >= LEARNING_CLIPS:
        return ""
    return f" (still learning your voice: {n}/{LEARNING_CLIPS})"


def _emotion_line(turn: Turn) -> str:
    if turn.emotion is None:
        return f"emotion: none ({turn.emotion_note or 'no speech detected'})"
    flag = " (uncertain)" if turn.uncertain else ""
    return f"emotion: {turn.emotion.label} {turn.emotion.confidence:.2f}{flag}{_learning(turn)}"


class PlainUI:
    """Plain lines on a stream; no colours, no cursor movement."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()
        self._state = ""

    def _print(self, text: str, *, err: bool = False) -> None:
        with self._lock:
            stream = self.err if err else self.out
            print(text, file=stream, flush=True)

    def start(self) -> None:
        """Begin showing."""

    def stop(self) -> None:
        """Stop showing (idempotent)."""

    def state(self, name: str, detail: str = "") -> None:
        if name != self._state or detail:
            self._state = name
            self._print(f"[{name}]" + (f" {detail}" if detail else ""))

    def level(self, rms: float) -> None:
        """Plain output has no level meter."""

    def turn(self, turn: Turn) -> None:
        where = f" {turn.utterance.file}" if turn.utterance.file else ""
        if turn.utterance.offset is not None:
            where += f" from {turn.utterance.offset:.1f} s"
        lines = [f"--- turn {turn.turn} ({turn.utterance.source}{where}, "
                 f"{turn.utterance.seconds:.1f} s)",
                 f"you: {heard(turn)}"
                 + (f"  [stt {turn.transcript.error}; fell back to {turn.transcript.fallback}]"
                    if turn.transcript.fallback else
                    f"  [stt error: {turn.transcript.error}]" if turn.transcript.error else ""),
                 _emotion_line(turn)]
        if turn.emotion is not None:
            for label, p in sorted(turn.emotion.probs.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {label:<10} {_bar(p)} {p:.2f}")
        if turn.windows:
            lines.append(_windows_line(turn))
        lines.append(f"assistant ({turn.reply.strategy}): {turn.reply.text}")
        lines.append(f"time: {_timings(turn.latency_ms)}")
        self._print("\n".join(lines))

    def notice(self, message: str) -> None:
        self._print(f"assistant: {message}", err=True)

    def prompt(self) -> str | None:
        """Read one typed line (text mode); None at end of input."""
        line = sys.stdin.readline()
        return line if line else None

    def summary(self, summary: Mapping[str, Any]) -> None:
        self._print(format_summary(summary))


WORDS_OFF = "(words off: --stt none, the voice alone is heard)"


def heard(turn: Turn) -> str:
    """What the person said, or why there are no words: ``--stt none`` turns words off, which
    is not the same as nothing recognised."""
    if turn.transcript.text:
        return turn.transcript.text
    return WORDS_OFF if turn.transcript.engine == "none" else "(nothing recognised)"


def format_summary(summary: Mapping[str, Any]) -> str:
    """Summary lines: turns, emotion distribution, median latency, where the log is."""
    dist = summary.get("emotions") or {}
    dist_text = ", ".join(f"{k} {v}" for k, v in sorted(dist.items(), key=lambda kv: -kv[1])) or "none"
    med = summary.get("median_latency_ms")
    lines = [f"Session summary: {summary.get('turns', 0)} turn(s)",
             f"  emotions: {dist_text}",
             f"  median latency: {med:.0f} ms" if med is not None else "  median latency: n/a"]
    if summary.get("failed_inputs"):
        lines.append(f"  unreadable inputs: {summary['failed_inputs']}")
    log = summary.get("log")
    if log:
        lines.append(f"  log: {log}")
    elif not summary.get("turns") and not summary.get("log_error"):
        lines.append("  log: none (no turn to keep)")
    else:
        lines.append("  log: NOT kept (" + str(summary.get("log_error") or "disabled") + ")")
    return "\n".join(lines)


class RichUI:
    """A live view with rich: state, level meter, transcript, emotion bars, reply, timings."""

    def __init__(self, console=None) -> None:
        from rich.console import Console

        # An explicit file, so temporary stdout redirections elsewhere do not capture it.
        self.console = console or Console(file=sys.stdout)
        self._state = "starting"
        self._detail = ""
        self._level = 0.0
        self._level_seen = False  # no meter in text or file mode
        self._live = None
        self._lock = threading.Lock()

    # -- rendering (pure, testable) ---------------------------------------------------
    def render_status(self):
        from rich.text import Text

        colours = {"listening": "green", "thinking": "yellow", "speaking": "cyan",
                   "calibrating": "magenta", "loading model": "magenta"}
        text = Text()
        text.append(f"● {self._state}", style=f"bold {colours.get(self._state, 'white')}")
        if self._detail:
            text.append(f"  {self._detail}", style="dim")
        if self._level_seen and self._state in ("listening", "calibrating"):
            # level in dBFS, drawn from -60 dB to 0 dB
            import math

            db = 20 * math.log10(max(self._level, 1e-6))
            frac = max(0.0, min(1.0, (db + 60) / 60))
            text.append("  level ")
            text.append(_bar(frac, 30), style="green" if frac < 0.85 else "red")
            text.append(f" {db:5.1f} dBFS", style="dim")
        return text

    @staticmethod
    def render_turn(turn: Turn):
        from rich.panel import Panel
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", justify="right")
        table.add_column()
        said = turn.transcript.text or f"[dim]{heard(turn)}[/dim]"
        if turn.transcript.fallback:
            said += f" [dim](fell back to {turn.transcript.fallback}: {turn.transcript.error})[/dim]"
        elif turn.transcript.error:
            said += f" [red](stt error: {turn.transcript.error})[/red]"
        table.add_row("you", said)
        if turn.emotion is None:
            table.add_row("emotion", "[dim]" + _emotion_line(turn).split(": ", 1)[1] + "[/dim]")
        else:
            flag = " [yellow](uncertain)[/yellow]" if turn.uncertain else ""
            learning = f"[dim]{_learning(turn)}[/dim]" if _learning(turn) else ""
            table.add_row("emotion", f"[bold]{turn.emotion.label}[/bold] {turn.emotion.confidence:.2f}{flag}"
                                     f"{learning}")
            for label, p in sorted(turn.emotion.probs.items(), key=lambda kv: -kv[1]):
                style = "bold magenta" if label == turn.emotion.label else "magenta"
                table.add_row(label, f"[{style}]{_bar(p)}[/{style}] {p:.2f}")
        if turn.windows:
            table.add_row("over time", _windows_line(turn).split(": ", 1)[1])
        table.add_row("reply", f"[cyan]{turn.reply.text}[/cyan] [dim]({turn.reply.strategy})[/dim]")
        table.add_row("time", _timings(turn.latency_ms))
        src = turn.utterance.file or turn.utterance.source
        if turn.utterance.offset is not None:
            src = f"{src} from {turn.utterance.offset:.1f} s"
        return Panel(table, title=f"turn {turn.turn}", subtitle=str(src), expand=True)

    # -- the view ---------------------------------------------------------------------
    def start(self) -> None:
        from rich.live import Live

        self._live = Live(self.render_status(), console=self.console, refresh_per_second=12,
                          transient=True, get_renderable=self.render_status)
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def state(self, name: str, detail: str = "") -> None:
        self._state, self._detail = name, detail
        if self._live is not None:
            self._live.refresh()

    def level(self, rms: float) -> None:
        self._level = rms
        self._level_seen = True

    def turn(self, turn: Turn) -> None:
        self.console.print(self.render_turn(turn))

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]assistant:[/yellow] {message}", highlight=False)

    def prompt(self) -> str | None:
        live = self._live
        if live is not None:
            live.stop()
        try:
            return self.console.input("[bold green]you> [/bold green]") + "\n"
        except EOFError:
            return None
        finally:
            if live is not None:
                live.start()

    def summary(self, summary: Mapping[str, Any]) -> None:
        self.console.print(format_summary(summary), highlight=False)


def make_ui(*, plain: bool, stream: TextIO | None = None):
    """Plain lines when asked or when the output is not a terminal; else the live view."""
    out = stream or sys.stdout
    if plain or not (hasattr(out, "isatty") and out.isatty()):
        return PlainUI(out=out)
    return RichUI()
