"""The ``ser-model`` command: corpora, prediction, evaluation, training, comparison, plots.

Nothing heavy (TensorFlow, librosa, scikit-learn, matplotlib) is imported at module level,
so ``ser-model --help`` and ``--version`` answer at once; each command imports what it needs.
Every error the library raises on purpose, every OS error and Ctrl-C ends in one line on
stderr (``ser-model: error: ...``) and a non-zero exit status, never a traceback.

Exit status: 0 success; 1 an error; 2 bad usage, or (predict) some files failed; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ser_model import __version__
from ser_model.errors import SerError, one_line

PROG = "ser-model"

DESCRIPTION = """\
Speech emotion recognition: inspect corpora, predict the emotion in audio files, evaluate
a model bundle, train and compare models, and plot examples. Labels: neutral, happy, sad,
angry, fearful, disgust, surprised.
"""

EPILOG = """\
commands:
  corpus DIR            count the labelled clips, speakers and unparsed files under DIR
                          ser-model corpus ../shared/datasets
  predict FILE...       the emotion in each audio file (any rate, any common format)
                          ser-model predict hello.wav --json
                          ser-model predict long-call.flac --window 3 --hop 1.5
  evaluate DIR          accuracy, UAR, macro-F1 and confusion matrix on labelled clips
                          ser-model evaluate ../shared/datasets/ravdess/Actor_01 --json
  train                 train a model from a TOML config and write a bundle
                          ser-model train --config ser_model/configs/ser-crnn.toml
  compare               speaker-independent comparison of models and baselines
                          ser-model compare --data ../shared/datasets
  plot-examples         plot waveforms and spectrograms of example clips
                          ser-model plot-examples ../shared/datasets --actor 3 --out actor3.png
  models                list the model bundles found (shipped and installed)
                          ser-model models

Run `ser-model COMMAND --help` for a command's options. --model takes a bundle name
(e.g. ser-crnn, ser-crnn-v2) or a bundle folder; the default is the shipped model.
Exit status: 0 ok, 1 error, 2 usage error or some files failed, 130 interrupted.
"""

#: ``predict`` without --window analyses a file in windows when it lasts more than this many
#: times the model's input (e.g. > 6 s for a model that takes 3 s).
LONG_FACTOR = 2.0

#: Commands whose options come from the training side's modules, imported only when used:
#: command -> (module, add-arguments function, run function).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("ser_model.train", "add_arguments", "run"),
    "compare": ("ser_model.compare", "add_arguments", "run"),
    "plot-examples": ("ser_model.plots", "add_plot_examples_arguments", "run_plot_examples"),
}

_HELP = {
    "corpus": "count labelled clips, speakers and unparsed files under a folder",
    "predict": "predict the emotion in audio files",
    "evaluate": "score a model on a folder of labelled clips",
    "train": "train a model from a TOML config and write a bundle",
    "compare": "speaker-independent comparison of models and baselines",
    "plot-examples": "plot waveforms and spectrograms of example clips",
    "models": "list the model bundles found",
}


#: The examples at the end of each command's --help (one mechanism for every command).
EXAMPLES = {
    "corpus": ["ser-model corpus ../shared/datasets", "ser-model corpus DIR --json"],
    "predict": ["ser-model predict a.wav b.flac", "ser-model predict a.wav --json",
                "ser-model predict meeting.flac --window 3 --hop 1.5   # emotion over time, streamed"],
    "evaluate": ["ser-model evaluate ../shared/datasets/ravdess/Actor_01",
                 "ser-model evaluate DIR --model models/ser-crnn-v2 --json"],
    "train": ["ser-model train --config ser_model/configs/ser-crnn.toml",
              "ser-model train --config ser_model/configs/ser-crnn.toml --out models/my-model --epochs 5",
              "ser-model train --config ser_model/configs/ser-crnn.toml --limit-per-speaker 4 --epochs 1"
              "   # a quick smoke run"],
    "compare": ["ser-model compare --data ../shared/datasets",
                "ser-model compare --data ../shared/datasets --quick --out /tmp/cmp   # a fast look"],
    "plot-examples": [
        "ser-model plot-examples ../shared/datasets                # ./examples.png",
        "ser-model plot-examples ../shared/datasets --actor 3 --out actor3.png",
        "ser-model plot-examples ../shared/datasets --out docs/results   # docs/results/examples.png"],
    "models": ["ser-model models", "ser-model models --json"],
}


def _epilog(command: str, note: str = "") -> str:
    lines = EXAMPLES[command]
    head = "example:" if len(lines) == 1 else "examples:"
    return (note + "\n\n" if note else "") + head + "\n" + "\n".join(f"  {line}" for line in lines)


class CliError(SerError):
    """A command-line problem reported as one line (exit status 1)."""


class UsageError(CliError):
    """Options that do not go together: one line, exit status 2 (like argparse's usage errors)."""


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


# -- commands ---------------------------------------------------------------------------


def _cmd_corpus(args: argparse.Namespace) -> int:
    from ser_model.corpora import format_summary, scan, summarize

    summary = summarize(scan(args.dir))
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.console import Console

        Console().print(format_summary(summary))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from ser_model.bundle import DEFAULT_BUNDLE, list_bundles, resolve_bundle

    bundles = list_bundles()
    try:
        default = resolve_bundle(None).resolve()
    except SerError:
        default = None
    if args.json:
        for b in bundles:
            print(json.dumps({
                "name": b.name, "model_version": b.model_version, "path": str(b.path),
                "labels": list(b.labels), "architecture": b.architecture, "source": b.source,
                "default": default is not None and b.path.resolve() == default, "problem": b.problem,
            }))  # fmt: skip
        return 0
    if not bundles:
        print(f"no model bundles found (the default is {DEFAULT_BUNDLE!r}; train one with `ser-model train`)")
        return 0
    name_w = max(len(b.name) for b in bundles)
    arch_w = max(len(b.architecture or "?") for b in bundles)
    for b in bundles:
        mark = "*" if default is not None and b.path.resolve() == default else " "
        if b.problem:
            print(f"{mark} {b.name:<{name_w}}  INVALID: {b.problem}")
        else:
            arch = b.architecture or "?"
            print(f"{mark} {b.name:<{name_w}}  {arch:<{arch_w}}  {len(b.labels)} labels  {b.source:<9}  {b.path}")
    print("(* = default)" if default is not None else f"(default {DEFAULT_BUNDLE!r} not found)")
    return 0


def _format_probs(probs: dict[str, float]) -> str:
    top = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)[:3]
    return "  ".join(f"{k} {v:.2f}" for k, v in top)


def _cmd_predict(args: argparse.Namespace) -> int:
    from ser_model.errors import NoSpeechError
    from ser_model.recognizer import EmotionRecognizer, jit_from_env

    if args.hop is not None and args.window is None:
        raise UsageError("--hop needs --window")
    from ser_model.windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S  # numpy: not at --help time

    recognizer = EmotionRecognizer.load(args.model, jit=jit_from_env(default=False))
    failed = 0
    input_s = _model_input_seconds(recognizer)
    for file in args.files:
        try:
            if args.window is not None:
                _predict_windows(recognizer, file, args.window, args.hop, args.json)
                continue
            duration = _duration_s(file)
            if input_s is not None and duration is not None and duration > LONG_FACTOR * input_s:
                # The model hears input_s seconds at a time: judge a long file per window
                # rather than on its first seconds only.
                print(f"{PROG}: note: {file} lasts {duration:.0f} s, longer than the model's "
                      f"{input_s:.1f} s input: one result per {DEFAULT_WINDOW_S:g} s window "
                      f"(choose with --window)", file=sys.stderr, flush=True)  # fmt: skip
                _predict_windows(recognizer, file, DEFAULT_WINDOW_S, DEFAULT_HOP_S, args.json)
                continue
            result = recognizer.predict_file(file)
        except NoSpeechError:
            failed += 1
            _error(f"{file}: no speech detected")
            continue
        except BrokenPipeError:
            raise  # stdout is gone: stop (main exits quietly), not a problem with this file
        except (SerError, OSError) as err:
            failed += 1
            msg = one_line(err, join=True)
            _error(msg if msg.startswith(str(file)) else f"{file}: {msg}")
            continue
        if args.json:
            print(json.dumps({
                "file": str(file), "label": result.label,
                "confidence": round(result.confidence, 4),
                "probs": {k: round(v, 4) for k, v in result.probs.items()},
            }), flush=True)  # fmt: skip
        else:
            print(f"{file}: {result.label} ({result.confidence:.2f})   {_format_probs(dict(result.probs))}", flush=True)
    return 2 if failed else 0


def _model_input_seconds(recognizer: Any) -> float | None:
    """Seconds of audio the model takes in at once (frames input), else None."""
    if recognizer.max_frames is None:
        return None
    return recognizer.max_frames * recognizer.settings.hop_length / recognizer.settings.sample_rate


def _duration_s(file: str) -> float | None:
    """The file's duration from its header, or None when soundfile cannot tell (predict_file
    then reads it through the full loader, which reports any real problem)."""
    import soundfile as sf

    from ser_model.quiet import quiet_library_stderr

    try:
        with quiet_library_stderr():
            info = sf.info(file)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError):
        return None
    return info.duration if info.frames > 0 else None


def _predict_windows(recognizer: Any, file: str, window: float, hop: float | None, as_json: bool) -> None:
    hop = hop if hop is not None else window / 2
    for start, end, result in recognizer.predict_file_windows(file, window_s=window, hop_s=hop):
        if as_json:
            row: dict[str, Any] = {"file": str(file), "start_s": round(start, 3), "end_s": round(end, 3)}
            if result is None:
                row.update(label=None, confidence=None, probs={})
            else:
                row.update(
                    label=result.label,
                    confidence=round(result.confidence, 4),
                    probs={k: round(v, 4) for k, v in result.probs.items()},
                )
            print(json.dumps(row), flush=True)
        elif result is None:
            print(f"{file} [{start:7.2f}-{end:7.2f} s]: (no speech)", flush=True)
        else:
            print(f"{file} [{start:7.2f}-{end:7.2f} s]: {result.label} ({result.confidence:.2f})", flush=True)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ser_model.evaluate import evaluate_dir, format_report

    if args.json:
        report = evaluate_dir(args.dir, recognizer=_load_for_dir(args.dir, args.model), adapt=args.adapt)
        print(json.dumps(report.to_dict()))
        return 0
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err_console = Console(stderr=True)
    with err_console.status("loading the model ..."):
        recognizer = _load_for_dir(args.dir, args.model)
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("evaluate", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = evaluate_dir(args.dir, recognizer=recognizer, progress=progress, adapt=args.adapt)
    Console().print(format_report(report))
    return 0


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _load_for_dir(folder: str, model: str | None) -> Any:
    """The recognizer for ``evaluate`` (checks the folder first, so a typo costs no model load)."""
    from pathlib import Path

    from ser_model.errors import AudioLoadError
    from ser_model.recognizer import EmotionRecognizer, jit_from_env

    if not Path(folder).exists():
        raise AudioLoadError(folder, "no such file or folder")
    # XLA's ~3 s compilation pays off only after ~1000 clips; SER_MODEL_JIT=1 turns it on.
    return EmotionRecognizer.load(model, jit=jit_from_env(default=False))


def _lazy_runner(command: str) -> Any:
    module_name, _, run_name = LAZY_COMMANDS[command]
    import importlib

    module = importlib.import_module(module_name)
    run = getattr(module, run_name, None)
    if run is None:
        raise CliError(f"the {command} command is not available ({module_name} has no {run_name}())")
    return run


# -- parser -----------------------------------------------------------------------------


def _selected_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in argv (the first word not starting with '-'), if any."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser. Options of train/compare/plot-examples are added (importing
    their modules) only when ``argv`` selects that command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("corpus", help=_HELP["corpus"], description=_HELP["corpus"] + ".", formatter_class=fmt,
                       epilog=_epilog("corpus"))
    p.add_argument("dir", metavar="DIR", help="folder to scan recursively (RAVDESS, TESS, CREMA-D, SAVEE names)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=_cmd_corpus)

    model_help = "bundle name (e.g. ser-crnn-v2) or bundle folder (default: the shipped model)"
    p = sub.add_parser(
        "predict", help=_HELP["predict"], formatter_class=fmt,
        description="Predict the emotion in each audio file (WAV, FLAC, OGG, AIFF, MP3, ... at any rate).\n"
        "An unreadable or silent file gives one error line on stderr; the others are still processed\n"
        "and the exit status is 2. A file more than twice as long as the model's input (~3 s) is\n"
        "analysed in 3 s windows (hop 1.5 s), one result per window, streamed in bounded memory.",
        epilog=_epilog("predict"),
    )  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--model", metavar="PATH", default=None, help=model_help)
    p.add_argument("--json", action="store_true",
                   help='one JSON object per line: {"file", "label", "confidence", "probs": {label: p}}')
    p.add_argument("--window", type=float, metavar="SECONDS", default=None,
                   help="analyse each file in windows of this length (any file length, bounded memory)")
    p.add_argument("--hop", type=float, metavar="SECONDS", default=None,
                   help="hop between windows (default: half the window)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "evaluate", help=_HELP["evaluate"], formatter_class=fmt,
        description="Predict every labelled clip under DIR (label from the corpus file name) and report\n"
        "accuracy, UAR (balanced accuracy), macro-F1, per-class recall and the confusion matrix.\n"
        "Unparsed names, unreadable files, silence and labels the model lacks are counted, not scored.",
        epilog=_epilog("evaluate"),
    )  # fmt: skip
    p.add_argument("dir", metavar="DIR", help="folder of corpus clips (searched recursively)")
    p.add_argument("--model", metavar="PATH", default=None, help=model_help)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--adapt", metavar="K", type=_non_negative_int, default=0,
                   help="score each clip with a voice profile of K other clips of its speaker "
                        "(speaker from the file name, fixed seed, labels never read; ser-v3 models)")
    p.set_defaults(func=_cmd_evaluate)

    selected = _selected_command(argv)
    for command, (module_name, add_name, _) in LAZY_COMMANDS.items():
        note = ("The figure goes to examples.png in the current folder unless --out says otherwise;\n"
                "the path written is printed.") if command == "plot-examples" else ""
        p = sub.add_parser(command, help=_HELP[command], description=_HELP[command] + ".", formatter_class=fmt,
                           epilog=_epilog(command, note))
        p.set_defaults(func=None, lazy=command)
        if command == selected:
            import importlib

            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as err:
                if err.name == module_name:
                    raise CliError(
                        f"the {command} command is not available in this installation ({module_name} is missing)"
                    ) from err
                raise
            add_arguments = getattr(module, add_name, None)
            if add_arguments is None:
                raise CliError(f"the {command} command is not available ({module_name} has no {add_name}())")
            add_arguments(p)

    p = sub.add_parser("models", help=_HELP["models"], description=_HELP["models"] + ".", formatter_class=fmt,
                       epilog=_epilog("models"))
    p.add_argument("--json", action="store_true", help="one JSON object per bundle per line")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ser-model`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    word = _selected_command(argv)
    if word is not None and word not in _HELP:
        from ser_model.suggest import unknown_command

        print(f"usage: {PROG} [-h] [--version] COMMAND ...", file=sys.stderr)
        _error(unknown_command(word, list(_HELP)))
        return 2
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.func is None:
            return int(_lazy_runner(args.lazy)(args) or 0)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `| head`): stop quietly; point stdout at devnull so the
        # interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UsageError as err:
        _error(one_line(err, join=True))
        return 2
    except (SerError, OSError) as err:
        _error(one_line(err, join=True))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
