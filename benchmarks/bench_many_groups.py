"""Tables of many small groups, and a table padded by one busy user: CPU and peak memory.

Five measurements, each in a fresh process (one torch thread), of this code and, with
``--before OLD`` (``OLD/scai``: ``git archive``), of the code under ``OLD`` first, in turns:

* ``summary``: ``Posterior.summary()`` of an exact fit (100 draws) of 5,000 simulations of 4
  users (``simulate(..., users=4, rounds=2, epochs=5, sims=5000)``), what ``scai fit`` prints;
* ``density``: building ``MarginalDensity`` (what SVI and MCMC score) of those groups under
  ``neutral``, and the process's peak RSS;
* ``busy user``: ``posterior_parts`` (the saved file's groups, replicates included) of an exact
  fit with 10 draws of one simulation of 1,000 users in 5,000 games, in which one user
  proposes in a quarter of the games, and the process's peak RSS;
* ``svi pooled``: ``fit(..., engine="svi")`` (its defaults: the importance correction) of the
  first 50 of those 5,000 groups under ``pooled`` (latent currency shifts in each
  simulation: tables that differ by simulation), and the process's peak RSS;
* ``svi neutral``: the same fit of all 5,000 groups under ``neutral`` (``pi`` alone: the
  importance proposal's size), and the process's peak RSS.

``--only KIND`` (repeatable) runs those measurements alone.

::

    .venv/bin/python benchmarks/bench_many_groups.py --before OLD
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: Run in a fresh process: ``python -c MEASURE KIND FOLDER`` prints the figures as JSON.
MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from scai.inference import fit
from scai.models import PRESETS
from scai.models.data import read_interactions
from scai.models.layout import GroupData
kind, folder = sys.argv[1], Path(sys.argv[2])
out = {}
if kind == "summary":
    post = fit(read_interactions(folder / "many.csv"), PRESETS["neutral"], num_draws=100)
    start = time.process_time()
    post.summary()
    out["cpu"] = time.process_time() - start
elif kind == "density":
    from scai.models.density import MarginalDensity
    data = GroupData.from_table(read_interactions(folder / "many.csv"))
    start = time.process_time()
    MarginalDensity(data, PRESETS["neutral"])
    out["cpu"] = time.process_time() - start
elif kind.startswith("svi"):
    import warnings
    table = read_interactions(folder / "many.csv")
    name = kind.split()[1]
    if name == "pooled":
        table = table[table["sim"].isin(table["sim"].unique()[:50])]
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(table, PRESETS[name], engine="svi", seed=0)
    out["cpu"] = time.process_time() - start
else:
    from scai.inference.arviz_io import posterior_parts
    post = fit(read_interactions(folder / "busy.csv"), PRESETS["neutral"], num_draws=10)
    start = time.process_time()
    posterior_parts(post)
    out["cpu"] = time.process_time() - start
out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


KINDS = ("summary", "density", "busy user", "svi pooled", "svi neutral")


def tables(folder: Path) -> None:
    """``many.csv`` (5,000 simulations of 4 users) and ``busy.csv`` (one busy user)."""
    import numpy as np

    from scai.models import PRESETS, simulate
    from scai.models.data import write_interactions

    many = simulate(PRESETS["neutral"], policy="selfish=0.5,fair=0.3,altruistic=0.2", users=4,
                    rounds=2, epochs=5, sims=5000, seed=1)  # fmt: skip
    write_interactions(many.interactions, folder / "many.csv")
    busy = simulate(PRESETS["neutral"], policy="selfish=0.5,fair=0.5", users=1000, rounds=1000,
                    epochs=5, seed=1).interactions.copy()  # fmt: skip
    rng = np.random.default_rng(0)
    picked = (busy["responder"] != "u0").to_numpy() & (rng.random(len(busy)) < 0.25)
    busy.loc[picked, "proposer"] = "u0"
    write_interactions(busy, folder / "busy.csv")


def measure(kind: str, folder: Path, code: Path | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(folder)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=code or folder,  # this code: the installed scai, not a folder of that name
    )
    return json.loads(done.stdout.splitlines()[-1])


def main(args) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        tables(folder)
        codes = ([("before", args.before)] if args.before else []) + [("this code", None)]
        print(f"load average {os.getloadavg()[0]:.1f}")
        print("\n| measure | code | CPU (s) | peak RSS (GB) |\n|---|---|---:|---:|")
        for kind in args.only or KINDS:
            for name, code in codes:
                got = measure(kind, folder, code)
                print(f"| {kind} | {name} | {got['cpu']:.2f} | {got['peak_gb']:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, metavar="OLD")
    parser.add_argument("--only", action="append", choices=KINDS, metavar="KIND")
    main(parser.parse_args())
