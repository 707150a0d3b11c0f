"""SVI's time to convergence over seeds: how much of it is the stopping rule's luck.

``fit_svi`` stops when the mean single-draw loss of the last 50 steps differs from the 50
before by less than ``rtol = 1e-4`` (relative) or by less than 2 standard errors of the
losses' noise. From the prior median (``init="median"``) with Adam at 0.05 for every
parameter, the window means jitter by ~2 nats with latent rationality (``log lam``'s posterior
sd is 0.007 with 200 users) and the rule fired by chance; from the Laplace start
(``init="laplace"``, the default) the steps are scaled to the posterior. This script times
``fit_svi`` (defaults, importance correction included) on the benchmark's 200-user data for a
few seeds and both starts, after one warm-up call.

    .venv/bin/python benchmarks/bench_svi_seeds.py [--seeds 5] [--init laplace median]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from bench_inference import HYPOTHESES, load_average, machine_lines, make_dataset

from scai.inference.svi import fit_svi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--init", nargs="+", default=["laplace", "median"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    ds = make_dataset(200)
    fit_svi(ds.data, HYPOTHESES["neutral"], table=ds.table, seed=0, max_steps=20, min_steps=20)
    print("\n".join(machine_lines()))
    print(f"- load average before: {load_average()}\n")
    print("| hypothesis | start | seed | steps | converged | time to convergence (s) |")
    print("|---|---|---:|---:|---|---:|")
    for name in ("neutral", "latent_lam"):
        for init in args.init:
            for seed in range(args.seeds):
                start = time.perf_counter()
                post = fit_svi(ds.data, HYPOTHESES[name], table=ds.table, seed=seed, init=init)
                wall = time.perf_counter() - start
                diag = post.diagnostics
                print(
                    f"| {name} | {init} | {seed} | {diag['steps']} | {diag['converged']} "
                    f"| {wall:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
