"""Privacy and security: no network on the default path, private logs, audio only when asked,
model bundles checked before use (SHA-256, safe-mode loading), and no pickle anywhere."""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.hostile_audio import (
    ASSISTANT,
    REPO_ROOT,
    SER_MODEL,
    assert_no_traceback,
    child_env,
    corpus_clips,
    read_jsonl,
    run_cli,
    session_logs,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- no network -------------------------------------------------------------------------

_SITECUSTOMIZE = textwrap.dedent('''
    import os, socket, sys
    _LOG = os.environ["NET_AUDIT_LOG"]
    _Real = socket.socket

    def _record(what):
        with open(_LOG, "a") as fh:
            fh.write(f"{os.getpid()} {what}\\n")

    class _Audited(_Real):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            fam = socket.AF_INET if family == -1 and fileno is None else family
            if fam in (socket.AF_INET, socket.AF_INET6):
                caller = sys._getframe(1).f_code
                _record(f"socket family={fam} by {caller.co_filename}:{caller.co_name}")
                raise PermissionError(1, "network blocked by the privacy test")
            super().__init__(family, type, proto, fileno)

    socket.socket = _Audited
    _real_gai = socket.getaddrinfo

    def _gai(host, *a, **k):
        _record(f"getaddrinfo {host}")
        raise socket.gaierror(-2, "name resolution blocked by the privacy test")

    socket.getaddrinfo = _gai
''')


def test_default_replay_makes_no_network_attempt(tmp_path: Path, datasets, tiny_bundle) -> None:
    """Every Python process of a session (the assistant and its sphinx child) runs with
    AF_INET/AF_INET6 socket creation and DNS patched to fail and be recorded."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    audit = tmp_path / "net-attempts.log"
    env = child_env({"PYTHONPATH": str(site), "NET_AUDIT_LOG": str(audit)})
    clips = corpus_clips(datasets, 2, start=100)
    log_dir = tmp_path / "logs"
    done = run_cli([ASSISTANT, "--input", *map(str, clips), "--no-speak", "--plain",
                    "--log-dir", str(log_dir), "--model", str(tiny_bundle)], env=env)
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    attempts = audit.read_text().splitlines() if audit.exists() else []
    # urllib3 (imported by TensorFlow) creates one AF_INET6 socket at import time to bind ::1
    # and learn whether IPv6 exists; no traffic. It copes with the refusal. Anything else fails.
    probe = "urllib3/util/connection.py:_has_ipv6"
    real = [a for a in attempts if probe not in a]
    assert real == [], "network attempts on the default path:\n" + "\n".join(attempts)
    turns = [r for r in read_jsonl(session_logs(log_dir)[0]) if r["type"] == "turn"]
    assert len(turns) == 2 and all(t["emotion"] for t in turns)
    assert any(t["transcript"] for t in turns)


def test_default_replay_works_without_a_network(tmp_path: Path, datasets, tiny_bundle) -> None:
    """The same in a private network namespace (no interfaces at all, not even loopback up)."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    clips = corpus_clips(datasets, 2, start=110)
    log_dir = tmp_path / "logs"
    done = run_cli(["unshare", "-n", ASSISTANT, "--input", *map(str, clips), "--no-speak", "--plain",
                    "--log-dir", str(log_dir), "--model", str(tiny_bundle)])
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    turns = [r for r in read_jsonl(session_logs(log_dir)[0]) if r["type"] == "turn"]
    assert len(turns) == 2
    assert all(t["stt"]["engine"] == "whisper" and "error" not in t["stt"] for t in turns), turns
    assert all(t["transcript"].strip() for t in turns)


# -- logs and audio on disk -------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_logs_are_private_and_no_audio_without_save_audio(umask, tmp_path: Path, datasets, tiny_bundle) -> None:
    clips = corpus_clips(datasets, 1, start=120)
    log_dir = tmp_path / "deep" / "logs"  # created by the assistant, parents too
    script = f"umask {umask:03o}; exec \"$@\""
    done = run_cli(["sh", "-c", script, "sh", ASSISTANT, "--input", *map(str, clips), "--no-speak",
                    "--plain", "--log-dir", str(log_dir), "--model", str(tiny_bundle)])
    assert done.returncode == 0, done.stderr
    assert _mode(log_dir) == 0o700
    logs = session_logs(log_dir)
    assert len(logs) == 1 and _mode(logs[0]) == 0o600
    assert sorted(p.name for p in log_dir.iterdir()) == [logs[0].name], "only the log, no audio"
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in everything if p.suffix.lower() in (".wav", ".flac", ".raw", ".pcm")]


def test_save_audio_writes_private_wavs(tmp_path: Path, datasets, tiny_bundle) -> None:
    clips = corpus_clips(datasets, 2, start=130)
    log_dir = tmp_path / "logs"
    done = run_cli(["sh", "-c", 'umask 000; exec "$@"', "sh", ASSISTANT, "--input", *map(str, clips),
                    "--no-speak", "--plain", "--save-audio", "--log-dir", str(log_dir),
                    "--model", str(tiny_bundle)])
    assert done.returncode == 0, done.stderr
    wavs = sorted(log_dir.glob("*.wav"))
    assert len(wavs) == 2 and all(_mode(w) == 0o600 for w in wavs)
    turns = [r for r in read_jsonl(session_logs(log_dir)[0]) if r["type"] == "turn"]
    assert sorted(t["audio_file"] for t in turns) == [str(w) for w in wavs]


# -- model bundles ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_bundles(tmp_path_factory, tiny_bundle) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-bundles")
    tampered = root / "tampered-v1"
    shutil.copytree(tiny_bundle, tampered)
    with open(tampered / "model.keras", "ab") as fh:
        fh.write(b"\0")
    swapped = root / "swapped-v1"  # weights replaced, config left: hash mismatch
    shutil.copytree(tiny_bundle, swapped)
    cfg = json.loads((swapped / "config.json").read_text())
    cfg["weights_sha256"] = "0" * 64
    (swapped / "config.json").write_text(json.dumps(cfg))
    not_bundle = root / "just-a-folder"
    not_bundle.mkdir()
    (not_bundle / "notes.txt").write_text("hello\n")
    a_file = root / "a-file.keras"
    a_file.write_bytes(b"PK\x03\x04 not really")
    return {"tampered": tampered, "hash-mismatch": swapped, "not-a-bundle": not_bundle,
            "a-file": a_file, "missing": root / "does-not-exist"}


_REASONS = {"tampered": "do not match", "hash-mismatch": "do not match", "not-a-bundle": "not a model bundle",
            "a-file": "not a model bundle", "missing": "not a model bundle"}


@pytest.mark.parametrize("kind", list(_REASONS))
def test_ser_model_refuses_bad_bundle(kind, bad_bundles, datasets) -> None:
    path = bad_bundles[kind]
    clip = corpus_clips(datasets, 1, start=140)[0]
    done = run_cli([SER_MODEL, "predict", "--model", str(path), str(clip)])
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0] and _REASONS[kind] in lines[0], lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize("kind", ["tampered", "not-a-bundle", "missing"])
def test_assistant_refuses_bad_bundle(kind, bad_bundles, datasets, tmp_path: Path) -> None:
    path = bad_bundles[kind]
    clip = corpus_clips(datasets, 1, start=150)[0]
    done = run_cli([ASSISTANT, "--input", str(clip), "--no-speak", "--plain",
                    "--log-dir", str(tmp_path / "logs"), "--model", str(path)])
    assert_no_traceback(done.stdout + done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and _REASONS[kind] in lines[0], done.stderr
    assert done.returncode != 0, "an explicitly chosen model that is broken is a set-up error"


def test_bundle_config_records_weights_sha256(tiny_bundle: Path) -> None:
    from ser_model.bundle import sha256_file

    cfg = json.loads((tiny_bundle / "config.json").read_text())
    assert cfg["weights_sha256"] == sha256_file(tiny_bundle / cfg["weights"])


def test_shipped_bundles_record_matching_sha256() -> None:
    shipped = [p for p in (REPO_ROOT / "models").glob("*/config.json")]
    if not shipped:
        pytest.skip("no shipped bundle in models/ yet")
    from ser_model.bundle import load_bundle_config, sha256_file

    for cfg_path in shipped:
        cfg = load_bundle_config(cfg_path.parent)  # raises on a mismatch
        assert cfg["weights_sha256"] == sha256_file(cfg_path.parent / cfg["weights"])


def test_unsafe_layer_is_refused_by_safe_mode(tmp_path: Path, datasets) -> None:
    """A bundle with a correct SHA-256 but a Lambda layer (arbitrary Python in the weights
    file) must be refused: the recognizer loads with safe_mode=True."""
    code = textwrap.dedent(f'''
        from pathlib import Path
        import keras
        from ser_model.bundle import save_bundle
        from ser_model.features import FeatureSettings
        from ser_model.labels import LABELS
        s = FeatureSettings(); n = s.n_frame_features; f = s.frames_for(2.0)
        inp = keras.Input((f, n))
        x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
        x = keras.layers.GlobalAveragePooling1D()(x)
        out = keras.layers.Dense(len(LABELS), activation="softmax")(x)
        save_bundle(Path("{tmp_path}") / "lambda-v1", model=keras.Model(inp, out),
                    config={{"name": "lambda", "version": 1, "labels": list(LABELS), "sample_rate": s.sample_rate,
                            "features": s, "normalization": {{"mean": [0.0] * n, "std": [1.0] * n}},
                            "input": {{"kind": "frames", "max_frames": f}}}},
                    metrics={{}}, card="# unsafe\\n")
    ''')
    subprocess.run([os.fspath(Path(__import__("sys").executable)), "-c", code], check=True, cwd=str(REPO_ROOT),
                   env=child_env(), capture_output=True, timeout=180)
    bundle = tmp_path / "lambda-v1"
    clip = corpus_clips(datasets, 1, start=160)[0]
    done = run_cli([SER_MODEL, "predict", "--model", str(bundle), str(clip)])
    assert_no_traceback(done.stdout + done.stderr)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load the Keras model" in lines[0], done.stderr
    assert "safe" in lines[0].lower() or "lambda" in lines[0].lower()


# -- no pickle --------------------------------------------------------------------------

_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
_PICKLE_CALLS = {"read_pickle", "to_pickle", "load_pickle", "dump_pickle"}
_SELF = Path(__file__).resolve()


def _python_sources() -> list[Path]:
    roots = [REPO_ROOT / name for name in ("assistant", "ser_model", "bench", "tests", "scripts")]
    files = [p for root in roots if root.is_dir() for p in root.rglob("*.py")]
    files += [p for p in REPO_ROOT.glob("*.py")]
    return sorted(p for p in files if p.resolve() != _SELF and ".venv" not in p.parts)


def pickle_uses(source: str, name: str = "<src>") -> list[str]:
    """Uses of pickle-based serialisation in Python code (comments and docstrings ignored)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in _PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _PICKLE_MODULES:
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in _PICKLE_CALLS:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"line {node.lineno}: {fname}(allow_pickle=...)")
                if kw.arg == "safe_mode" and not (isinstance(kw.value, ast.Constant) and kw.value.value is True):
                    found.append(f"line {node.lineno}: {fname}(safe_mode=...) not True")
            if fname == "__import__" and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).split(".")[0] in _PICKLE_MODULES:
                found.append(f"line {node.lineno}: __import__({node.args[0].value!r})")
    return found


def test_pickle_detector_catches_uses_and_ignores_comments() -> None:
    assert pickle_uses("import pickle")
    assert pickle_uses("from joblib import dump")
    assert pickle_uses("import numpy as np\nnp.load('x.npy', allow_pickle=True)")
    assert pickle_uses("import cloudpickle as cp")
    assert pickle_uses("df.to_pickle('x')")
    assert pickle_uses("keras.saving.load_model(p, safe_mode=False)")
    assert not pickle_uses('"""no pickle anywhere (joblib.dump is banned)"""\n# import pickle\nx = 1')
    assert not pickle_uses("np.load('x.npz', allow_pickle=False)")


def test_no_pickle_anywhere_in_the_project() -> None:
    problems = []
    for path in _python_sources():
        for use in pickle_uses(path.read_text(encoding="utf-8"), str(path)):
            problems.append(f"{path.relative_to(REPO_ROOT)}: {use}")
    assert not problems, "pickle-based serialisation found:\n" + "\n".join(problems)


def test_model_loading_uses_safe_mode() -> None:
    """Every keras load_model call in the library passes safe_mode=True explicitly."""
    calls = []
    for path in (REPO_ROOT / "ser_model").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "load_model":
                ok = any(kw.arg == "safe_mode" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                         for kw in node.keywords)
                calls.append((path.name, node.lineno, ok))
    assert calls, "no load_model call found in ser_model/"
    assert all(ok for *_, ok in calls), calls
