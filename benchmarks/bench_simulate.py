"""Simulation speed: one protocol condition's worth of groups, per policy.

Times :func:`scai.models.simulate.simulate` for 20 simulations x 5 epochs x 10 interactions
(10 users
per group) under the default hypothesis, for each named policy, and prints one markdown table
row per policy: the median wall time of ``--repeats`` runs (after one warm-up run) and the
throughput in interactions per second. Run from the project root::

    .venv/bin/python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scai.models.hypotheses import Hypothesis
from scai.models.simulate import simulate

POLICIES = ("selfish", "fair", "altruistic")


def time_policy(policy: str, *, sims: int, epochs: int, rounds: int, users: int, repeats: int):
    hyp = Hypothesis()

    def run(seed: int) -> int:
        result = simulate(
            hyp, policy=policy, users=users, rounds=rounds, epochs=epochs, sims=sims, seed=seed
        )
        return len(result.interactions)

    n = run(0)  # warm-up
    times = []
    for seed in range(1, repeats + 1):
        start = time.perf_counter()
        run(seed)
        times.append(time.perf_counter() - start)
    return n, times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)"
    )
    parser.add_argument("--no-header", action="store_true", help="print only the table rows")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    if not args.no_header:
        shape = f"{args.sims} sims x {args.epochs} epochs x {args.rounds} interactions"
        print(
            f"simulate(): {shape}, {args.users} users per group; torch {torch.__version__}; "
            f"median of {args.repeats} repeats after one warm-up"
        )
        print()
        print(
            "| policy | torch threads | interactions | median (ms) | min (ms) | max (ms) "
            "| interactions/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
    for policy in POLICIES:
        n, times = time_policy(
            policy,
            sims=args.sims,
            epochs=args.epochs,
            rounds=args.rounds,
            users=args.users,
            repeats=args.repeats,
        )
        med = statistics.median(times)
        print(
            f"| {policy} | {threads} | {n} | {med * 1e3:.1f} | {min(times) * 1e3:.1f} | "
            f"{max(times) * 1e3:.1f} | {n / med:,.0f} |"
        )


if __name__ == "__main__":
    main()
