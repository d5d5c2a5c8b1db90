"""Soak test: a long replay session, watching the assistant's memory, threads and open files.

Runs ``assistant --input F1 ... FN --no-speak --plain`` over real corpus clips (RAVDESS and TESS,
interleaved, deterministic) as a subprocess and polls ``/proc/PID`` while watching the session
log's line count. It samples resident memory (VmRSS), threads and open file descriptors of the
assistant process when turn ``--baseline`` (default 20) has been logged and again when the
last turn has been logged (one extra file is given so the process is still running then), and
checks the log afterwards: every turn present, every line valid JSON.

    .venv/bin/python bench/soak.py [--turns 300] [--baseline 20] [--model PATH] [--json]

Exit status 0 when all limits hold (RSS growth < --max-rss-growth-mb, default 50; no growth
in threads or fds; every turn logged and valid), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pick_files(datasets: Path, n: int) -> list[Path]:
    """``n`` clips alternating RAVDESS and TESS, spread over folders (deterministic)."""
    pools = [sorted((datasets / c).rglob("*.flac")) for c in ("ravdess", "tess")]
    pools = [p for p in pools if p]
    if not pools:
        raise SystemExit(f"soak: no corpus clips under {datasets}")
    out = []
    for i in range(n):
        pool = pools[i % len(pools)]
        out.append(pool[(i * 37) % len(pool)])
    return out


def sample(pid: int) -> dict[str, int]:
    """rss_kb, hwm_kb, threads and fds of ``pid`` from /proc."""
    info: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                info["rss_kb"] = int(value.split()[0])
            elif key == "VmHWM":
                info["hwm_kb"] = int(value.split()[0])
            elif key == "Threads":
                info["threads"] = int(value)
    info["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return info


def count_turn_lines(log_dir: Path) -> int:
    logs = sorted(log_dir.glob("session-*.jsonl"))
    if not logs:
        return 0
    return logs[0].read_bytes().count(b'"type":"turn"')


def soak(*, turns: int, baseline: int, model: str | None, datasets: Path, log_dir: Path,
         timeout: float, poll: float = 0.05, stt: str | None = None) -> dict:
    if not 1 <= baseline < turns:
        raise SystemExit("soak: need 1 <= --baseline < --turns")
    files = pick_files(datasets, turns + 1)  # +1: still running when the last counted turn is logged
    args = [str(Path(sys.executable).parent / "assistant"), "--input", *map(str, files), "--no-speak",
            "--plain", "--log-dir", str(log_dir), "--max-turns", str(turns + 1)]
    if model:
        args += ["--model", model]
    if stt:
        args += ["--stt", stt]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    at_baseline = at_end = None
    peak_rss = 0
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise SystemExit(f"soak: timed out after {timeout:.0f} s at turn {count_turn_lines(log_dir)}")
            n = count_turn_lines(log_dir)
            try:
                now = sample(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            if "rss_kb" not in now:  # exited, not yet reaped (a zombie has no memory)
                break
            peak_rss = max(peak_rss, now["rss_kb"])
            if at_baseline is None and n >= baseline:
                at_baseline = dict(now, turn=n, t=time.monotonic() - t0)
            if at_end is None and n >= turns:
                at_end = dict(now, turn=n, t=time.monotonic() - t0)
            # Threads and fds: the fewest seen during the turn that follows each sample point,
            # so a descriptor that is open only for a moment (the next input file, a pipe
            # mid-message) does not read as a leak, while a leaked one raises the minimum.
            for point in (at_baseline, at_end):
                if point is not None and n == point["turn"]:
                    point["threads"] = min(point["threads"], now["threads"])
                    point["fds"] = min(point["fds"], now["fds"])
            time.sleep(poll)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wall = time.monotonic() - t0
    logs = sorted(log_dir.glob("session-*.jsonl"))
    problems = []
    records = []
    if not logs:
        problems.append("no session log")
    else:
        raw = logs[0].read_bytes()
        if raw and not raw.endswith(b"\n"):
            problems.append("log ends with a partial line")
        for i, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                problems.append(f"log line {i} is not JSON: {err}")
    logged = [r["turn"] for r in records if r.get("type") == "turn"]
    if logged[:turns] != list(range(1, turns + 1)):
        problems.append(f"turns logged: {len(logged)} (expected 1..{turns} in order)")
    if records and records[-1].get("type") != "summary":
        problems.append("no summary line at the end")
    if at_baseline is None or at_end is None:
        problems.append(f"process ended before turn {turns} was sampled (rc {proc.returncode}): {stderr[-500:]}")
    result = {
        "turns": turns, "baseline_turn": baseline, "wall_s": round(wall, 1),
        "rc": proc.returncode, "turns_logged": len(logged),
        "baseline": at_baseline, "end": at_end, "peak_rss_mb": round(peak_rss / 1024, 1),
        "problems": problems,
    }
    if at_baseline and at_end:
        result["rss_growth_mb"] = round((at_end["rss_kb"] - at_baseline["rss_kb"]) / 1024, 1)
        result["thread_growth"] = at_end["threads"] - at_baseline["threads"]
        result["fd_growth"] = at_end["fds"] - at_baseline["fds"]
        turns_between = at_end["turn"] - at_baseline["turn"]
        result["s_per_turn"] = round((at_end["t"] - at_baseline["t"]) / max(1, turns_between), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=300, help="turns to sample at the end (default 300)")
    p.add_argument("--baseline", type=int, default=20, help="turn of the first sample (default 20)")
    p.add_argument("--model", help="emotion bundle (default: the shipped one)")
    p.add_argument("--stt", help="speech-to-text engine (default: the assistant's default, whisper)")
    p.add_argument("--datasets", default=os.environ.get("SER_DATASETS", str(REPO.parent / "shared" / "datasets")))
    p.add_argument("--log-dir", help="keep the session log here (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    tmp = None
    if args.log_dir:
        log_dir = Path(args.log_dir)
    else:
        tmp = tempfile.mkdtemp(prefix="soak-")
        log_dir = Path(tmp) / "logs"
    try:
        r = soak(turns=args.turns, baseline=args.baseline, model=args.model, datasets=Path(args.datasets),
                 log_dir=log_dir, timeout=args.timeout, stt=args.stt)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    ok = (not r["problems"] and r.get("rss_growth_mb", 1e9) < args.max_rss_growth_mb
          and r.get("thread_growth", 1) <= 0 and r.get("fd_growth", 1) <= 0)
    r["ok"] = ok
    if args.json:
        print(json.dumps(r))
    else:
        b, e = r["baseline"] or {}, r["end"] or {}
        print(f"soak: {r['turns_logged']} turns logged in {r['wall_s']} s (exit {r['rc']}), "
              f"{r.get('s_per_turn', '?')} s/turn")
        print(f"  RSS     turn {b.get('turn')}: {b.get('rss_kb', 0) / 1024:.1f} MB  ->  turn {e.get('turn')}: "
              f"{e.get('rss_kb', 0) / 1024:.1f} MB   growth {r.get('rss_growth_mb')} MB "
              f"(limit {args.max_rss_growth_mb:.0f}); peak {r['peak_rss_mb']} MB")
        print(f"  threads {b.get('threads')} -> {e.get('threads')}   open fds {b.get('fds')} -> {e.get('fds')}")
        for problem in r["problems"]:
            print(f"  PROBLEM: {problem}")
        print("  OK" if ok else "  FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
