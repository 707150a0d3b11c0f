"""Wall-clock time of ``scai run all`` at full size (20 simulations, 5 epochs, every condition
and the inconsistency sweep), each repeat a cold start of the command into a fresh ``--out``
(nothing cached), with the CPU time of the command and its workers, where the time goes (the
conditions, computed together, then each experiment's report from the cache; when the first and
the last condition were stored: the start-up before, the reports left after) and whether the
run's figures and numbers equal the committed ones (``figures/``).

    .venv/bin/python benchmarks/bench_run_all.py --repeats 3
    .venv/bin/python benchmarks/bench_run_all.py --repeats 3 --before OLD  # OLD: git archive
    .venv/bin/python benchmarks/bench_run_all.py --repeats 3 --compile     # bytecode first

prints a Markdown table, the command it timed and the machine's load before and after. With
``--before OLD`` (a folder holding a ``scai`` package, e.g. ``git archive COMMIT`` unpacked into
``OLD/scai``), each repeat runs that code first (``PYTHONPATH``), then this one, so that both
see the same load. Before the first run and after the last it measures the host's speed
(``host_speed.py``: fixed workloads that do not depend on scai's code; medians of three), so
that runs of different sessions can be compared.

With ``--compile`` it first compiles each code's modules to bytecode, as pip does when it
installs a package: an editable install (the README's) leaves that to the first run, and where
``PYTHONDONTWRITEBYTECODE`` is set (this machine's sandbox) every process compiles scai's
modules from source (~0.4 s of the command's and its worker server's CPU). The header says
which.

The CPU time counts every process of the command: its workers are forked by a worker server
that the command starts and that outlives it by a moment, so this script adopts the orphans
(Linux: a child subreaper) and waits for them before reading the children's CPU time.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import filecmp
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import host_speed  # this folder's

ROOT = Path(__file__).resolve().parents[1]
#: What the committed figures folder holds that a ``scai run all`` writes.
FIGURES = (
    "alignment.png",
    "generalization.png",
    "generalization_shift.png",
    "inconsistency.png",
    "inconsistency_share.png",
    "comparison.md",
)


#: ``prctl``'s option number on Linux (``<linux/prctl.h>``).
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make this process the one that the command's orphaned descendants (the worker server
    and its workers, once the command has ended) are re-parented to, so that waiting for them
    adds their CPU time to ours (Linux only; elsewhere it is lost, and the CPU undercounted)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans() -> None:
    """Wait for every descendant re-parented to this process (:func:`adopt_orphans`)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def run_once(out: Path, workers: int | None, code: Path | None = None) -> dict:
    """One cold ``python -m scai run all`` into ``out``: this checkout's code, or the
    ``scai`` package in the folder ``code``."""
    command = [sys.executable, "-m", "scai", "run", "all", "--out", str(out)]
    command += ["--figures", str(out / "figures")]
    if workers:
        command += ["--workers", str(workers)]
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()  # the clock the files' modification times are on
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    reports = dict(re.findall(r"^([\w-]+): done in ([\d.]+) s", done.stdout, re.M))
    computed = re.search(r"conditions computed in ([\d.]+) s", done.stdout)
    fails = done.stdout.count("  FAIL  ")
    passes = done.stdout.count("  PASS  ")
    same = all(
        filecmp.cmp(out / "figures" / name, ROOT / "figures" / name, shallow=False)
        for name in FIGURES
    )
    # when the workers finished their first and last condition (the per-simulation table is
    # the first file a finished condition writes): the start-up before the first, the reports
    # left after the last
    stored = [path.stat().st_mtime - started for path in out.glob("*/cache/*.per_sim.csv")]
    return {
        "command": " ".join(["scai", *command[3:]]),
        "wall": wall,
        "stored": (min(stored), max(stored)) if stored else (float("nan"),) * 2,
        "user": after.ru_utime - before.ru_utime,
        "system": after.ru_stime - before.ru_stime,
        "conditions": float(computed.group(1)) if computed else float("nan"),
        "reports": {k: float(v) for k, v in reports.items()},
        "checks": f"{passes} PASS, {fails} FAIL",
        "figures equal": same,
    }


def compile_modules(folder: Path) -> None:
    """Compile the Python modules under ``folder`` (not a virtual environment's or the tests')
    to bytecode, as pip does when it installs a package (an editable install does not)."""
    skip = r"[/\\]\.venv[/\\]|[/\\]tests[/\\]"
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-x", skip, str(folder)], check=True)


def bytecode_note(compiled: bool) -> str:
    """How the timed processes read scai's modules (each process compiling them from source
    costs ~0.4 s of the command's and its worker server's CPU)."""
    if compiled:
        return "compiled beforehand (--compile: python -m compileall, as pip install does)"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "PYTHONDONTWRITEBYTECODE is set: compiled from source in every process"
    return "as Python caches it (written by the first run that imports each module)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="default: the command's")
    parser.add_argument("--before", type=Path, default=None, metavar="OLD")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="compile each code's modules to bytecode first, as pip does when it installs a "
        "package (an editable install does not; where PYTHONDONTWRITEBYTECODE is set, every "
        "process otherwise compiles them from source)",
    )
    args = parser.parse_args()
    codes = ([("before", args.before.resolve())] if args.before else []) + [("this code", None)]
    if args.compile:
        for _, code in codes:
            compile_modules(code if code is not None else ROOT)
    adopt_orphans()
    speed_before = host_speed.summary(repeats=3)  # medians: one measurement is noisy
    load = [os.getloadavg()[0]]
    rows = []
    for _ in range(args.repeats):
        for name, code in codes:
            with tempfile.TemporaryDirectory(prefix="scai-bench-run-all-") as tmp:
                rows.append({"code": name, **run_once(Path(tmp) / "out", args.workers, code)})
            load.append(os.getloadavg()[0])
    speed_after = host_speed.summary(repeats=3)
    print(
        f"machine: {platform.machine()} ({host_speed.processor()}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"1-minute load average before and after each run: {', '.join(f'{v:.1f}' for v in load)}")
    print(
        f"host speed (benchmarks/host_speed.py, CPU): before {host_speed.one_line(speed_before)}; "
        f"after {host_speed.one_line(speed_after)}"
    )
    print(f"scai's bytecode: {bytecode_note(args.compile)}")
    print(f"command (cwd {ROOT.name}/, fresh --out each repeat): {rows[0]['command']}\n")
    if args.before:
        print(f"before: {args.before}\n")
    print(
        "| run | code | wall (s) | CPU user + system (s) | conditions (s) | first and last "
        "condition stored (s) | reports: alignment, generalization, inconsistency (s) | checks "
        "| figures equal the committed |"
    )
    print("|---:|---|---:|---:|---:|---|---|---|---|")
    for i, row in enumerate(rows, 1):
        reports = ", ".join(
            f"{row['reports'].get(n, float('nan')):.1f}"
            for n in ("alignment", "generalization", "inconsistency")
        )
        print(
            f"| {i} | {row['code']} | {row['wall']:.1f} | "
            f"{row['user']:.1f} + {row['system']:.1f} | "
            f"{row['conditions']:.1f} | {row['stored'][0]:.1f}, {row['stored'][1]:.1f} | "
            f"{reports} | {row['checks']} | {row['figures equal']} |"
        )


if __name__ == "__main__":
    main()
