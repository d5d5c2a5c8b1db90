"""The ``assistant`` command.

    assistant [options]                 talk (microphone by default)
    assistant --input FILE... [options] replay audio files, one utterance each
    assistant --text [options]          type instead of speaking
    assistant devices                   list audio input and output devices
    assistant history [SESSION] [--csv FILE] [--plot FILE.png]
    assistant profile show|reset        the voice profile that adapts the emotion model
    assistant calibrate                 read a few sentences to start the voice profile

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
  assistant profile show|reset [--user NAME]   your voice profile (adapts the emotion model)
  assistant calibrate [--user NAME]      read a few sentences so it learns your everyday voice

exit status: 0 ok, 1 set-up error (e.g. a --model or --config file that cannot be used, in every
mode), 2 usage error (incl. a flag value out of range) or some --input files could not be read,
3 no input device (use --input FILE... or --text), 130 interrupted (Ctrl-C), 143 SIGTERM.
A flag that does nothing in the chosen mode (--device with --text, ...) gets a note on stderr.

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
    p.add_argument("--config", metavar="FILE.toml",
                   help="settings file (flags override it); every section and key is shown in "
                        "docs/assistant.example.toml")
    src = p.add_argument_group("input")
    src.add_argument("--input", nargs="+", metavar="FILE", help="replay audio files, one utterance each")
    src.add_argument("--text", action="store_true", default=None, help="type lines instead of speaking")
    src.add_argument("--device", help="microphone: device index or part of its name")
    src.add_argument("--max-turns", type=int, metavar="N", help="stop after N turns")
    src.add_argument("--calibrate-seconds", type=float, metavar="S",
                     help="seconds the microphone settles at start (default 1.0)")
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
                     help="below this the emotion is 'uncertain' (default: the model's recommendation, "
                          "from its cross-validation; 0.45 when it has none)")
    emo.add_argument("--user", metavar="NAME",
                     help="whose voice profile adapts the emotion model (default: your login name)")
    emo.add_argument("--no-adapt", action="store_true", default=None,
                     help="do not use or update a voice profile (the model's population baseline only)")
    out = p.add_argument_group("output")
    out.add_argument("--no-speak", action="store_true", default=None, help="print replies only")
    out.add_argument("--output-device", help="speaker: device index or part of its name")
    out.add_argument("--voice", help="espeak-ng voice, e.g. en-us")
    out.add_argument("--plain", action="store_true", default=None, help="plain lines, no live view")
    out.add_argument("--log-dir", metavar="DIR", help="where session logs go (default: user data dir)")
    out.add_argument("--save-audio", action="store_true", default=None,
                     help="keep each utterance as a WAV next to the log")
    return p


def config_from_args(args: argparse.Namespace, base=None):
    """The session's settings: ``base`` (default: the ``--config`` file, else the defaults)
    with the flags given on top."""
    from assistant import config as cfgmod

    if base is None:
        base = cfgmod.load_toml(args.config) if args.config else cfgmod.AssistantConfig()
    return cfgmod.replace(
        base,
        input={"files": tuple(args.input) if args.input else None, "text": args.text,
               "device": args.device, "max_turns": args.max_turns,
               "calibrate_seconds": args.calibrate_seconds, "pause_seconds": args.end_silence,
               "vad": args.vad, "barge_in": args.barge_in},
        stt={"engine": args.stt, "model": args.stt_model, "allow_download": args.allow_download},
        emotion={"model": args.model, "min_confidence": args.min_confidence,
                 "adapt": False if args.no_adapt else None, "user": args.user},
        speech={"speak": False if args.no_speak else None, "output_device": args.output_device,
                "voice": args.voice},
        log={"dir": args.log_dir, "save_audio": args.save_audio},
        ui={"plain": args.plain},
    )


#: Flags that do nothing in some settings: (flag, argparse attribute, does nothing when, why).
#: Given there, they are not an error (a --config file or a script may carry them for every
#: mode) but each gets one note on stderr, so nobody believes they took effect.
_IDLE_FLAGS = (
    ("--device", "device", lambda c: c.source_kind != "mic", "no microphone is used"),
    ("--calibrate-seconds", "calibrate_seconds", lambda c: c.source_kind != "mic",
     "no microphone is calibrated"),
    ("--stt", "stt", lambda c: c.source_kind == "text", "typed lines are not transcribed"),
    ("--stt-model", "stt_model", lambda c: c.source_kind == "text" or c.stt.engine != "whisper",
     "only Whisper takes a model"),
    ("--allow-download", "allow_download",
     lambda c: c.source_kind == "text" or c.stt.engine != "whisper" or c.stt.model is None,
     "only a Whisper --stt-model hub name is downloaded"),
    ("--model", "model", lambda c: c.source_kind == "text", "typed lines have no voice to hear"),
    ("--save-audio", "save_audio", lambda c: c.source_kind == "text", "typed lines have no audio"),
    ("--output-device", "output_device", lambda c: not c.speech.speak, "replies are not spoken"),
    ("--voice", "voice", lambda c: not c.speech.speak, "replies are not spoken"),
)


def idle_flag_notes(args: argparse.Namespace, config) -> list[str]:
    """One note for each flag given that does nothing with these settings."""
    mode = {"text": "with --text", "file": "with --input", "mic": ""}[config.source_kind]
    notes = []
    for flag, attr, idle, why in _IDLE_FLAGS:
        if getattr(args, attr, None) is not None and idle(config):
            if flag in ("--output-device", "--voice"):
                where = "with --no-speak" if args.no_speak else "with speak = false"
            elif flag in ("--stt-model", "--allow-download") and config.source_kind != "text":
                where = f"with --stt {config.stt.engine}"
            else:
                where = mode
            notes.append(f"note: {flag} does nothing {where} ({why}); ignored")
    return notes


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

    return history.main(args)  # a HistoryError is an AssistantError: main() says it in one line


# The stages already run in parallel (sphinx in a child process, the emotion model in a
# thread); a multi-threaded BLAS pool only fights them for the cores. On 2 cores it made the
# emotion model's share of a turn 87 ms instead of 14 ms (bench/turn_latency.py). Set before
# NumPy is imported; a value already in the environment wins.
_SINGLE_THREADED_MATH = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; any :class:`assistant.errors.AssistantError` that reaches here is
    printed as one line, ``assistant: MESSAGE``, with exit status 1 (a set-up error)."""
    from assistant.errors import AssistantError

    try:
        return _main(argv)
    except AssistantError as err:
        _err(str(err))
        return 1


STACKS_ENV = "ASSISTANT_STACKS_ON_SIGUSR1"
"""Set (to anything) to have SIGUSR1 print every thread's stack to stderr: a debugging aid
(the tests set it, and ask for the stacks when the assistant stalls)."""


def _main(argv: Sequence[str] | None) -> int:
    for var in _SINGLE_THREADED_MATH:
        os.environ.setdefault(var, "1")
    if os.environ.get(STACKS_ENV):
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "devices":
        return cmd_devices(argv[1:])
    if argv and argv[0] == "history":
        return cmd_history(argv[1:])
    if argv and argv[0] in ("profile", "calibrate"):
        from assistant import profile_cli

        return (profile_cli.cmd_profile if argv[0] == "profile" else profile_cli.cmd_calibrate)(argv[1:])
    parser = build_parser()
    if argv and not argv[0].startswith("-"):  # the only words before options are subcommands
        from ser_model.suggest import unknown_command

        parser.error(unknown_command(argv[0], ["devices", "history"]))
    args = parser.parse_args(argv)
    if args.text and args.input:
        parser.error("--text and --input cannot be used together (type, or replay files)")
    from assistant.config import AssistantConfig, ConfigError, load_toml

    # a settings file that cannot be used: a set-up error (1), said by main()
    base = load_toml(args.config) if args.config else AssistantConfig()
    try:  # a flag value out of range: a usage error (2), named by its flag
        config = config_from_args(args, base)
    except ConfigError as err:
        parser.error(str(err))
    if config.emotion.model is not None and config.source_kind == "text":
        # The session checks a named model in every mode (exit 1, a set-up error, as in the
        # other modes and in ser-model); check it here first so its error is not preceded by
        # the note that typed lines do not use it.
        from assistant.emotion import check_bundle

        problem = check_bundle(config.emotion.model)
        if problem:
            _err(problem)
            return 1
    for note in idle_flag_notes(args, config):
        _err(note)
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
