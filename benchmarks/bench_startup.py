"""Start-up of ``scai run``: how long a cold start of the command takes until its workers have
finished their first condition, and until it exits.

    .venv/bin/python benchmarks/bench_startup.py --repeats 3
    .venv/bin/python benchmarks/bench_startup.py --repeats 3 --before OLD   # OLD: ``git archive``

runs ``scai run alignment --out TMP --workers 2`` (6 light conditions, ~0.5 s of CPU each) into
a fresh ``--out`` and polls its cache every 10 ms: the first condition stored (``*.done``)
marks the command's imports, its workers' start and one condition; the exit adds the other
five, the report and the figure. The CPU time counts every process of the command (the worker
server and its workers too: :func:`bench_run_all.adopt_orphans`). With ``--before OLD``
(a folder holding a ``scai`` package, e.g. ``git archive COMMIT`` unpacked into
``OLD/scai``) each repeat runs that code first, then this one (``PYTHONPATH``), so both see
the same load. Prints a Markdown table and the machine's load before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_run_all import adopt_orphans, reap_orphans

ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.01


def run_once(code: Path | None, out: Path) -> dict:
    command = [sys.executable, "-m", "scai", "run", "alignment", "--out", str(out)]
    command += ["--workers", "2"]
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cache = out / "alignment" / "cache"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first = float("nan")
    while process.poll() is None:
        if first != first and cache.is_dir() and any(cache.glob("*.done")):
            first = time.perf_counter() - start
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - start
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {' '.join(command)}\n{process.stderr.read()}")
    return {
        "first": first,
        "wall": wall,
        "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, metavar="OLD")
    args = parser.parse_args()
    adopt_orphans()
    codes = ([("before", args.before)] if args.before else []) + [("this code", None)]
    load = [os.getloadavg()[0]]
    rows = []
    for repeat in range(1, args.repeats + 1):
        for label, code in codes:
            with tempfile.TemporaryDirectory(prefix="scai-bench-startup-") as tmp:
                rows.append((repeat, label, run_once(code, Path(tmp) / "out")))
            load.append(os.getloadavg()[0])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"1-minute load average before and after each run: {', '.join(f'{v:.1f}' for v in load)}")
    print("command (fresh --out each run): scai run alignment --out TMP --workers 2\n")
    print("| repeat | code | first condition stored (s) | exit (s) | CPU, every process (s) |")
    print("|---:|---|---:|---:|---:|")
    for repeat, label, row in rows:
        print(f"| {repeat} | {label} | {row['first']:.1f} | {row['wall']:.1f} | {row['cpu']:.1f} |")


if __name__ == "__main__":
    main()
