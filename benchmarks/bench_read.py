"""CPU time of reading and validating a large interaction table (``read_interactions``).

Simulates one table of ``--rows`` games (``scai simulate``: 100,000 users under the default
norm mixture, ``rounds = rows / 5`` over 5 epochs) into a temporary folder, then reads it in
a fresh process with :func:`scai.models.data.read_interactions` (what ``scai validate``,
``scai fit --data`` and ``scai update`` do first) and prints the CPU seconds of the read and
its phases (pandas' parse with the layout spaces stripped, the checks of every rule, the typed
table) and the process's peak RSS. With ``--before OLD`` (``OLD/scai``: ``git archive``) the
code under ``OLD`` reads the same file first, in turns, ``--repeats`` times::

    .venv/bin/python benchmarks/bench_read.py --rows 1000000 --repeats 2 --before OLD
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: Run in a fresh process: the read's CPU seconds, phase by phase, as JSON.
READ = r"""
import json, resource, sys, time
from scai.models import data
spent = {}
def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - start
    return wrapper
for name in ("_read_raw", "check_interactions", "_typed_interactions"):
    setattr(data, name, timed(name, getattr(data, name)))
start = time.process_time()
table = data.read_interactions(sys.argv[1])
spent["read_interactions"] = time.process_time() - start
spent["rows"] = len(table)
spent["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(spent))
"""


def simulate(rows: int, folder: Path) -> Path:
    """A simulated table of ``rows`` games, written by ``scai simulate``."""
    path = folder / "interactions.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scai",
            "simulate",
            "--policy",
            "selfish=0.5,fair=0.3,altruistic=0.2",
        ]
        + ["--users", "100000", "--rounds", str(rows // 5), "--epochs", "5"]
        + ["--out", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return path


def read(path: Path, code: Path | None) -> dict:
    """The read's figures in a fresh process of the code under ``code`` (this code: None)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", READ, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=code or path.parent,  # this code: the installed scai, not a folder of that name
    )
    return json.loads(done.stdout.splitlines()[-1])


def main(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = simulate(args.rows, Path(folder))
        codes = ([("before", args.before)] if args.before else []) + [("this code", None)]
        size = path.stat().st_size / 2**20
        print(f"{args.rows:,} rows, {size:.0f} MB, load average {os.getloadavg()[0]:.1f}")
        print(
            "\n| run | code | read_interactions (CPU s) | parse and strip | checks | typed "
            "| peak RSS (GB) |\n|---:|---|---:|---:|---:|---:|---:|"
        )
        run = 0
        for _ in range(args.repeats):
            for name, code in codes:
                run += 1
                got = read(path, code)
                print(
                    f"| {run} | {name} | {got['read_interactions']:.2f} | "
                    f"{got['_read_raw']:.2f} | {got['check_interactions']:.2f} | "
                    f"{got['_typed_interactions']:.2f} | {got['peak_rss_gb']:.2f} |"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None, metavar="OLD")
    main(parser.parse_args())
