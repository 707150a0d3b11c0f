"""A large sweep's set-up and its Ctrl-C: how long ``scai sweep`` takes from a cold start until
its first progress line (every cell's conditions built, fingerprinted and looked up in the
cache, the first jobs submitted), and how long it takes to exit after a Ctrl-C a few seconds
into the work.

    .venv/bin/python benchmarks/bench_sweep_setup.py --side 141 --repeats 2
    .venv/bin/python benchmarks/bench_sweep_setup.py --side 141 --before OLD  # OLD/scai

The spec is :func:`bench_sweep.spec_text`'s (the inconsistency experiment's slowdown over
stereotype strength x rationality, 2 simulations x 1 epoch of 4 users, 2 conditions a cell):
``--side 141`` is 19,881 cells. Each run starts ``python -m scai sweep SPEC --out TMP
--workers 2`` in a fresh ``--out``, waits for its first ``cells:`` line, lets it work
``--work`` seconds, sends SIGINT (what a terminal's Ctrl-C sends) and times the exit; a run
still alive ``--hang`` seconds after the Ctrl-C is killed and reported as hung. With
``--before OLD`` each repeat runs that code first, then this one (``PYTHONPATH``), so both see
the same load. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_run_all import reap_orphans
from bench_sweep import spec_text

ROOT = Path(__file__).resolve().parents[1]


def run_once(code: Path | None, spec: Path, out: Path, work: float, hang: float) -> dict:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "scai", "sweep", str(spec), "--out", str(out)]
    command += ["--workers", "2"]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    first = threading.Event()
    first_at: list[float] = []

    def read() -> None:
        for line in process.stderr:
            lines.append(line.rstrip())
            if "cells:" in line and not first.is_set():
                first_at.append(time.perf_counter() - start)
                first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not first.wait(0.05):
        if process.poll() is not None:
            sys.exit(f"ended ({process.returncode}) before its first progress line: {lines}")
    time.sleep(work)
    process.send_signal(signal.SIGINT)
    interrupted = time.perf_counter()
    try:
        code_ = process.wait(hang)
        hung = False
    except subprocess.TimeoutExpired:
        process.kill()
        code_ = process.wait()
        hung = True
    exit_seconds = time.perf_counter() - interrupted
    reader.join(5)
    reap_orphans()
    return {
        "first": first_at[0],
        "exit": exit_seconds,
        "code": code_,
        "hung": hung,
        "last": lines[-1] if lines else "",
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=141, help="values per axis (cells: side^2)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=float, default=8.0, help="seconds of work before Ctrl-C")
    parser.add_argument("--hang", type=float, default=60.0, help="seconds until called hung")
    parser.add_argument("--before", type=Path, help="a folder holding older code as OLD/scai")
    args = parser.parse_args()
    codes: list[tuple[str, Path | None]] = [("this code", None)]
    if args.before is not None:
        codes.insert(0, (f"before ({args.before})", args.before.resolve()))
    rows = []
    with tempfile.TemporaryDirectory(prefix="scai-bench-sweep-setup-") as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(spec_text(args.side, 2, 1, 4))
        for repeat in range(args.repeats):
            for label, code in codes:
                out = Path(tmp) / f"out-{repeat}-{len(rows)}"
                rows.append((label, run_once(code, spec, out, args.work, args.hang)))
    cells = args.side**2
    print(f"# scai sweep set-up and Ctrl-C ({platform.node()}, {os.cpu_count()} cores)\n")
    print(f"{cells:,} cells ({2 * cells:,} conditions), 2 workers, Ctrl-C after {args.work} s\n")
    print("| code | first progress line (s) | Ctrl-C to exit (s) | exit code | load before |")
    print("|---|---:|---:|---|---:|")
    for label, row in rows:
        exit_text = f"hung: killed after {args.hang:.0f}" if row["hung"] else f"{row['exit']:.1f}"
        print(f"| {label} | {row['first']:.1f} | {exit_text} | {row['code']} | {row['load']:.1f} |")
    print("\nlast lines:", *(f"- {label}: {row['last']}" for label, row in rows), sep="\n")


if __name__ == "__main__":
    main()
