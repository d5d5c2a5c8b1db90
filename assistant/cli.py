"""The ``assistant`` command.

    assistant [options]                 talk (microphone by default)
    assistant --input FILE... [options] replay audio files, one utterance each
    assistant --text [options]          type instead of speaking
    assistant devices                   list audio input and output devices
    assistant history [SESSION] [--csv FILE] [--plot FILE.png]

Nothing heavy is imported at module level (no TensorFlow, librosa, PyAudio,
speech_recognition or matplotlib), so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from assistant import __version__

EPILOG = """\
subcommands:
  assistant devices                      list audio input and output devices
  assistant history [SESSION] [--csv FILE] [--plot FILE.png] [--log-dir DIR]

exit status: 0 ok, 1 set-up error, 2 usage error or some --input files could not be read,
3 no input device (use --input FILE... or --text), 130 interrupted (Ctrl-C), 143 SIGTERM.

safety: words about suicide or self-harm get a short reply pointing to local emergency
services or a crisis line, and later replies keep pointing to help. This is a set of
patterns over the words, not a crisis service: in danger, call your local emergency number."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="assistant",
        description="An offline-first, empathetic voice assistant for the terminal: it listens, "
                    "hears the emotion in your voice, and answers with care.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"assistant {__version__}")
    p.add_argument("--config", metavar="FILE.toml", help="settings file (flags override it)")
    src = p.add_argument_group("input")
    src.add_argument("--input", nargs="+", metavar="FILE", help="replay audio files, one utterance each")
    src.add_argument("--text", action="store_true", default=None, help="type lines instead of speaking")
    src.add_argument("--device", help="microphone: device index or part of its name")
    src.add_argument("--max-turns", type=int, metavar="N", help="stop after N turns")
    src.add_argument("--calibrate-seconds", type=float, metavar="S",
                     help="ambient-noise calibration at start (default 1.0)")
    src.add_argument("--end-silence", type=float, metavar="S",
                     help="silence that ends your turn (default 0.3; longer after 'and', 'um' ...)")
    src.add_argument("--vad", choices=("silero", "webrtc"), help="voice-activity detector (default silero)")
    src.add_argument("--barge-in", action="store_true", default=None,
                     help="listen while speaking: your voice stops the reply (default: only with "
                          "PulseAudio's echo-cancelled source)")
    stt = p.add_argument_group("speech-to-text")
    stt.add_argument("--stt", choices=("whisper", "sphinx", "google", "none"),
                     help="engine: whisper (offline, default: tiny.en), sphinx (offline, "
                          "pocketsphinx), google (online), none (emotion only: fast analysis of "
                          "long recordings)")
    stt.add_argument("--stt-model", metavar="NAME_OR_PATH",
                     help="your own Whisper model folder (CTranslate2), or a hub name already in "
                          "the local cache (default: the bundled tiny.en)")
    stt.add_argument("--allow-download", action="store_true", default=None,
                     help="let Whisper download a --stt-model hub name")
    emo = p.add_argument_group("emotion")
    emo.add_argument("--model", metavar="PATH", help="emotion model bundle (default: the shipped one)")
    emo.add_argument("--min-confidence", type=float, metavar="P",
                     help="below this the emotion is 'uncertain' (default 0.45)")
    out = p.add_argument_group("output")
    out.add_argument("--no-speak", action="store_true", default=None, help="print replies only")
    out.add_argument("--output-device", help="speaker: device index or part of its name")
    out.add_argument("--voice", help="espeak-ng voice, e.g. en-us")
    out.add_argument("--plain", action="store_true", default=None, help="plain lines, no live view")
    out.add_argument("--log-dir", metavar="DIR", help="where session logs go (default: user data dir)")
    out.add_argument("--save-audio", action="store_true", default=None,
                     help="keep each utterance as a WAV next to the log")
    return p


def config_from_args(args: argparse.Namespace):
    from assistant import config as cfgmod

    config = cfgmod.load_toml(args.config) if args.config else cfgmod.AssistantConfig()
    return cfgmod.replace(
        config,
        input={"files": tuple(args.input) if args.input else None, "text": args.text,
               "device": args.device, "max_turns": args.max_turns,
               "calibrate_seconds": args.calibrate_seconds, "pause_seconds": args.end_silence,
               "vad": args.vad, "barge_in": args.barge_in},
        stt={"engine": args.stt, "model": args.stt_model, "allow_download": args.allow_download},
        emotion={"model": args.model, "min_confidence": args.min_confidence},
        speech={"speak": False if args.no_speak else None, "output_device": args.output_device,
                "voice": args.voice},
        log={"dir": args.log_dir, "save_audio": args.save_audio},
        ui={"plain": args.plain},
    )


def _err(message: str) -> None:
    print(f"assistant: {message}", file=sys.stderr)


def cmd_devices(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="assistant devices",
                            description="List audio input and output devices.").parse_args(argv)
    from assistant.audio_io import AudioSystemError, probe_devices

    try:
        devices = probe_devices()
    except AudioSystemError as err:
        _err(f"cannot list audio devices: {err}")
        return 1
    if not devices:
        print("no audio devices found")
        return 0
    for kind, attr in (("input", "inputs"), ("output", "outputs")):
        print(f"{kind} devices:")
        rows = [d for d in devices if getattr(d, attr) > 0]
        if not rows:
            print("  (none)")
        for d in rows:
            default = d.is_default_input if kind == "input" else d.is_default_output
            print(f"  {d.index:>3}{' *' if default else '  '} {d.name} "
                  f"({getattr(d, attr)} ch, {d.default_rate:.0f} Hz)")
    print("* = default; pass the index or part of the name to --device / --output-device")
    return 0


def cmd_history(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="assistant history",
                                description="List past sessions, or export one as CSV or a plot.")
    p.add_argument("session", nargs="?", help="session id (or a unique prefix, or a log file path)")
    from ser_model.outpaths import output_file, plot_file

    p.add_argument("--csv", metavar="FILE", type=output_file(),
                   help="write the session's turns as a CSV table")
    p.add_argument("--plot", metavar="FILE.png", type=plot_file,
                   help="draw the session's emotion timeline (.png, .pdf, .svg, ...)")
    p.add_argument("--log-dir", metavar="DIR", help="where session logs are")
    args = p.parse_args(argv)
    from assistant import history

    try:
        return history.main(args)
    except history.HistoryError as err:
        _err(str(err))
        return 1


# The stages already run in parallel (sphinx in a child process, the emotion model in a
# thread); a multi-threaded BLAS pool only fights them for the cores. On 2 cores it made the
# emotion model's share of a turn 87 ms instead of 14 ms (bench/turn_latency.py). Set before
# NumPy is imported; a value already in the environment wins.
_SINGLE_THREADED_MATH = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> int:
    for var in _SINGLE_THREADED_MATH:
        os.environ.setdefault(var, "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "devices":
        return cmd_devices(argv[1:])
    if argv and argv[0] == "history":
        return cmd_history(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.text and args.input:
        parser.error("--text and --input cannot be used together (type, or replay files)")
    from assistant.config import ConfigError

    try:
        config = config_from_args(args)
    except ConfigError as err:
        _err(str(err))
        return 1
    from assistant.loop import install_signal_handlers, run
    from assistant.ui import make_ui

    install_signal_handlers()
    ui = make_ui(plain=config.ui.plain)
    try:
        return run(config, ui)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
