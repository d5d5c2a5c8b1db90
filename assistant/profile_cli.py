"""``assistant profile show|reset`` and ``assistant calibrate``: the user's voice profile.

Nothing heavy is imported until a command needs it (the emotion model only for calibrate).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from assistant.profiles import LEARNING_CLIPS, ProfileStore, ProfileStoreError

CALIBRATION_SENTENCES = (
    "This morning I made a cup of tea and looked out of the window.",
    "The bus was a few minutes late, so I read the news while I waited.",
    "I need to buy bread, some apples and a bottle of milk later today.",
    "My neighbour has a small garden with tomatoes and a lemon tree.",
    "On the weekend I usually tidy the flat and call my family.",
    "The meeting moved to Thursday afternoon, after lunch.",
    "I left my umbrella at the office again yesterday.",
    "There is a new bakery on the corner near the station.",
    "I think I will cook pasta with vegetables for dinner tonight.",
    "The weather report says it will be cloudy with a little rain.",
)
"""Everyday sentences for calibration, read in the user's ordinary voice."""


def _err(message: str) -> None:
    print(f"assistant: {message}", file=sys.stderr)


def _store(args: argparse.Namespace) -> ProfileStore:
    return ProfileStore.for_user(args.user)


def cmd_profile(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="assistant profile",
        description="Show or reset your voice profile: the running statistics of your voice that "
                    "adapt the emotion model to you (no audio and no words are kept in it).",
        epilog="examples:\n  assistant profile show\n  assistant profile reset --user sam",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("show", "reset"), help="show: what is stored; reset: delete it")
    p.add_argument("--user", metavar="NAME", help="whose profile (default: your login name)")
    args = p.parse_args(argv)
    try:
        store = _store(args)
    except ProfileStoreError as err:
        p.error(str(err))
    if args.action == "reset":
        if store.reset():
            print(f"voice profile of {store.user!r} deleted ({store.path})")
        else:
            print(f"no voice profile for {store.user!r} ({store.path})")
        return 0
    if not store.exists():
        print(f"user: {store.user}\nprofile: none yet ({store.path}); it starts with your first turn")
        return 0
    from ser_model.profile import ProfileError

    try:
        profile = store.read()
    except ProfileError as err:
        _err(f"{err} (assistant profile reset --user {store.user} starts a new one)")
        return 1
    updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(store.path.stat().st_mtime))
    state = (f"still learning your voice ({profile.count}/{LEARNING_CLIPS} utterances)"
             if profile.count < LEARNING_CLIPS else "adapted")
    print(f"user: {store.user}\nprofile: {store.path}\nutterances: {profile.count} ({state})\n"
          f"model features: {profile.feature_id} ({profile.dim} values)\nupdated: {updated}\n"
          "holds: a count, mean and spread of the emotion model's features; no audio, no words")
    return 0


def cmd_calibrate(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="assistant calibrate",
        description="Teach the emotion model your everyday voice: read a few sentences aloud in "
                    "your ordinary voice (or give recordings with --input). Each one is added to "
                    "your voice profile; nothing else is kept.",
        epilog="examples:\n  assistant calibrate\n  assistant calibrate --sentences 5 --device USB\n"
               "  assistant calibrate --user sam --input me1.wav me2.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--user", metavar="NAME", help="whose profile (default: your login name)")
    p.add_argument("--sentences", type=int, default=6, metavar="N",
                   help=f"how many sentences to read (1-{len(CALIBRATION_SENTENCES)}, default 6)")
    p.add_argument("--input", nargs="+", metavar="FILE", help="use these recordings instead of the microphone")
    p.add_argument("--device", help="microphone: device index or part of its name")
    p.add_argument("--model", metavar="PATH", help="emotion model bundle (default: the shipped one)")
    args = p.parse_args(argv)
    if not 1 <= args.sentences <= len(CALIBRATION_SENTENCES):
        p.error(f"--sentences must be between 1 and {len(CALIBRATION_SENTENCES)}")
    try:
        store = _store(args)
    except ProfileStoreError as err:
        p.error(str(err))
    from assistant import config as cfgmod
    from assistant.audio_io import DeviceError, NoInputDeviceError
    from assistant.sources import UtteranceError, make_source

    config = cfgmod.replace(cfgmod.AssistantConfig(), input={
        "files": tuple(args.input) if args.input else None, "device": args.device})
    source = make_source(config)
    try:
        source.open()
    except NoInputDeviceError:
        _err("no microphone found: give recordings with --input FILE...")
        return 3
    except DeviceError as err:
        _err(str(err))
        return 1
    try:
        from ser_model import EmotionRecognizer
        from ser_model.errors import SerError

        try:
            rec = EmotionRecognizer.load(args.model)
        except SerError as err:
            _err(f"cannot load the emotion model: {err}")
            return 1
        if not getattr(rec, "supports_profiles", False):
            _err(f"the emotion model {rec.model_version} has no voice profiles (it cannot adapt)")
            return 1
        profile, notice = store.load_for(rec)
        if notice:
            _err(notice)
        source.calibrate(lambda state: None)
        wanted = len(args.input) if args.input else args.sentences
        added = 0
        for i in range(wanted):
            if not args.input:
                print(f"[{i + 1}/{wanted}] please read aloud: \"{CALIBRATION_SENTENCES[i]}\"", flush=True)
            try:
                utt = source.next_utterance()
            except UtteranceError as err:
                _err(str(err))
                continue
            if utt is None:
                break
            try:
                rec.adapt(profile, utt.samples, utt.sample_rate)
            except SerError as err:  # no speech in it, or too short: say so, go on
                _err(f"skipped ({err})")
                continue
            added += 1
            print(f"  added ({profile.count} utterances in your profile)", flush=True)
        if not added:
            _err("nothing was added to the voice profile")
            return 2 if args.input else 1
        store.save(profile)
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        _err(f"cannot save the voice profile {store.path}: {err.strerror or err}")
        return 1
    finally:
        source.close()
    print(f"voice profile of {store.user!r}: {profile.count} utterances ({store.path})")
    return 0
