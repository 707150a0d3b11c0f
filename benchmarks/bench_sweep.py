"""Throughput of ``scai sweep`` (cells per second) on ``--backend local`` and on a two-worker
Dask cluster (``--backend dask`` without ``--scheduler``: a LocalCluster of ``--workers``
single-threaded processes), each a cold start of the command into a fresh ``--out`` (nothing
cached), then the same command again (every cell from the cache). Checks that both backends
wrote the same bytes of ``sweep.csv``.

    .venv/bin/python benchmarks/bench_sweep.py --side 10 --sims 2 --epochs 1 --users 4

prints a Markdown table and the command lines it timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def spec_text(side: int, sims: int, epochs: int, users: int) -> str:
    strengths = ", ".join(f"{v:.3f}" for v in np.linspace(0.0, 0.95, side))
    rationalities = ", ".join(f"{v:.3f}" for v in np.geomspace(0.5, 8.0, side))
    return (
        'base = "inconsistency"\nmeasure = "slowdown"\n'
        f"[settings]\nsims = {sims}\nepochs = {epochs}\nseed = 0\n"
        f"[condition]\nusers = {users}\n"
        f"[axes]\nstereotype_strength = [{strengths}]\nrationality = [{rationalities}]\n"
    )


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10, help="values per axis (cells: side^2)")
    parser.add_argument("--sims", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scai = str(Path(sys.executable).with_name("scai"))
    cells = args.side**2
    rows, tables = [], {}
    with tempfile.TemporaryDirectory(prefix="scai-bench-sweep-") as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(spec_text(args.side, args.sims, args.epochs, args.users))
        for backend in ("local", "dask"):
            out = Path(tmp) / backend
            command = [scai, "sweep", str(spec), "--out", str(out), "--backend", backend]
            command += ["--workers", str(args.workers)]
            load = os.getloadavg()[0]
            cold = timed(command)
            cached = timed(command)
            tables[backend] = (out / "sweep.csv").read_bytes()
            rows.append((backend, cold, cells / cold, cached, load))
    same = tables["local"] == tables["dask"]
    print(f"# scai sweep throughput ({platform.node()}, {os.cpu_count()} cores)\n")
    print(
        f"{cells} cells ({2 * cells} conditions: {args.sims} sims x {args.epochs} epoch(s), "
        f"{args.users} users), {args.workers} workers; sweep.csv identical: {same}\n"
    )
    print("| backend | cold wall (s) | cells/s | again, all cached (s) | load before |")
    print("|---|---:|---:|---:|---:|")
    for backend, cold, rate, cached, load in rows:
        print(f"| {backend} | {cold:.1f} | {rate:.1f} | {cached:.1f} | {load:.1f} |")
    if not same:
        sys.exit("the two backends wrote different sweep.csv files")


if __name__ == "__main__":
    main()
