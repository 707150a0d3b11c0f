"""CPU time of reading and validating a large interaction table (``read_interactions``) or
human data file (``read_human_data``).

Simulates one table of ``--rows`` games (``scai simulate``: 100,000 users under the default
norm mixture, ``rounds = rows / 5`` over 5 epochs) into a temporary folder, then reads it in
a fresh process with :func:`scai.models.data.read_interactions` (what ``scai validate``,
``scai fit --data`` and ``scai update`` do first) and prints the CPU seconds of the read and
its phases (pandas' parse with the layout spaces stripped, the checks of every rule, the typed
table) and the process's peak RSS. With ``--human`` the file is instead a Study 1 layout file
of ``--rows`` decisions (5,000 subjects, random offers and choices) read by
:func:`scai.models.human_data.read_human_data` (what ``scai run human-data --data`` does first).
With ``--before OLD`` (``OLD/scai``: ``git archive``) the code under ``OLD`` reads the same
file first, in turns, ``--repeats`` times::

    .venv/bin/python benchmarks/bench_read.py --rows 1000000 --repeats 2 --before OLD
    .venv/bin/python benchmarks/bench_read.py --human --rows 1000000 --repeats 2 --before OLD
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
if sys.argv[2] == "human":
    from scai.models import human_data
    human_data._read_raw = data._read_raw  # timed
    table = human_data.read_human_data(sys.argv[1]).table
else:
    table = data.read_interactions(sys.argv[1])
spent["read"] = time.process_time() - start
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


def human(rows: int, folder: Path) -> Path:
    """A Study 1 layout file of ``rows`` decisions by 5,000 subjects (``rows / 5,000`` trials
    each), random offers and choices."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    trials = rows // 5000
    subject = np.repeat(np.arange(1, 5001), trials)
    path = folder / "study1.csv"
    pd.DataFrame(
        {
            "sub": subject,
            "role": np.where(subject % 2, "self", "other"),
            "trial": np.tile(np.arange(1, trials + 1), 5000),
            "unfairness": rng.choice([50, 60, 70, 80, 90], len(subject)),
            "choice": rng.integers(0, 2, len(subject)),
            "choice_RT": np.round(rng.random(len(subject)) * 5, 3),
        }
    ).to_csv(path, index=False)
    return path


def read(path: Path, code: Path | None, kind: str) -> dict:
    """The read's figures in a fresh process of the code under ``code`` (this code: None)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", READ, str(path), kind],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=code or path.parent,  # this code: the installed scai, not a folder of that name
    )
    return json.loads(done.stdout.splitlines()[-1])


def main(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = (human if args.human else simulate)(args.rows, Path(folder))
        codes = ([("before", args.before)] if args.before else []) + [("this code", None)]
        size = path.stat().st_size / 2**20
        print(f"{args.rows:,} rows, {size:.0f} MB, load average {os.getloadavg()[0]:.1f}")
        print(
            "\n| run | code | read (CPU s) | parse and strip | checks | typed "
            "| peak RSS (GB) |\n|---:|---|---:|---:|---:|---:|---:|"
        )
        run = 0
        for _ in range(args.repeats):
            for name, code in codes:
                run += 1
                got = read(path, code, "human" if args.human else "interactions")
                print(
                    f"| {run} | {name} | {got['read']:.2f} | {got['_read_raw']:.2f} | "
                    f"{got.get('check_interactions', 0):.2f} | "
                    f"{got.get('_typed_interactions', 0):.2f} | {got['peak_rss_gb']:.2f} |"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None, metavar="OLD")
    parser.add_argument("--human", action="store_true", help="a human data file instead")
    main(parser.parse_args())
