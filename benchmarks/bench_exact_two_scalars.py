"""Does the exact engine find every mode with two latent scalars?

Fits small groups with rationality and the currency shift both latent (`pooled` with
``rationality_scale=0.5``: ten users, eight games each, one currency) with the default grid
and with a 3x finer one (``grid_points=120, zoom_points=48``), and compares pi's posterior mean
(an exact sum over the grid: no Monte Carlo error). Such groups often have two sharp modes (a
selfish group in an unshifted currency looks like an altruistic one in a currency shifted by
about -1.2). Prints, per policy, the largest difference, how many groups are more than 0.01
off, and the default fit's time; then one 20-simulation fit's time and its largest
difference from the simulations fitted alone on the fine grid; then NUTS (4 chains, three
sampler seeds) on a group with two modes, against the exact mean::

    .venv/bin/python benchmarks/bench_exact_two_scalars.py --groups 10     # ~8 min here
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

FINE = {"grid_points": 120, "zoom_points": 48}
POLICIES = ("selfish", "fair", "altruistic", "selfish=0.5,fair=0.3,altruistic=0.2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=10, help="groups (seeds) per policy")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the resolution warnings are part of what is measured
    from scai.inference.exact import fit_exact
    from scai.models.hypotheses import PRESETS
    from scai.models.layout import GroupData
    from scai.models.simulate import simulate

    hyp = PRESETS["pooled"].with_(name="pooled_latent_lam", rationality_scale=0.5)

    def group(policy: str, seed: int, sims: int = 1) -> GroupData:
        table = simulate(
            hyp, policy=policy, users=10, rounds=8, sims=sims, currency="dollars", seed=seed
        ).interactions
        return GroupData.from_table(table)

    print("| users' policy | groups | default vs fine, largest | > 0.01 off | default fit (s) |")
    print("|---|---:|---:|---:|---:|")
    for policy in POLICIES:
        worst, off, seconds = 0.0, 0, []
        for seed in range(args.groups):
            data = group(policy, seed)
            start = time.perf_counter()
            default = fit_exact(data, hyp, seed=0).pi_mean_exact
            seconds.append(time.perf_counter() - start)
            fine = fit_exact(data, hyp, seed=0, **FINE).pi_mean_exact
            gap = float((default - fine).abs().max())
            worst, off = max(worst, gap), off + (gap > 0.01)
        print(
            f"| {policy} | {args.groups} | {worst:.3f} | {off} of {args.groups} | "
            f"{min(seconds):.2f}-{max(seconds):.2f} |",
            flush=True,
        )
    data = group("selfish", 3, sims=20)
    start = time.perf_counter()
    together = fit_exact(data, hyp, seed=0).pi_mean_exact
    seconds = time.perf_counter() - start
    worst = max(
        float(
            (together[s] - fit_exact(data.select_sim(s), hyp, **FINE).pi_mean_exact[0]).abs().max()
        )
        for s in range(20)
    )
    print(
        f"\n20 selfish simulations in one fit: {seconds:.1f} s, largest difference from each "
        f"alone on the fine grid {worst:.3f}"
    )
    # NUTS on a group with two sharp modes: its chains start at one (the Laplace mode)
    from scai.inference.mcmc import fit_mcmc

    data = group("selfish", 9)
    exact = float(fit_exact(data, hyp, seed=0).pi_mean_exact[0, 0])
    for sampler_seed in range(3):
        post = fit_mcmc(data, hyp, seed=sampler_seed, num_chains=4, warmup=1000, samples=2000)
        chains = post.draws["pi"][..., 0, 0].mean(1)  # E[pi_selfish] per chain
        print(
            f"selfish seed 9, NUTS seed {sampler_seed}: E[pi_selfish] per chain "
            f"{', '.join(f'{x:.3f}' for x in chains.tolist())}; exact {exact:.3f}"
        )


if __name__ == "__main__":
    main()
