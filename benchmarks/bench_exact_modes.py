"""Does the exact engine find a group's mode when the group is fitted alone?

Runs the generalization experiment's conditions with a latent currency shift (full size, as
``scai run all`` does), records each of their exact fits of 20 simulations (since ``cbfe00e``
the engine fits each simulation on a grid of its own; before, on one grid of the shift shared
by all), and refits every simulation of every fit on its own, with the default grid and with
a 30x finer coarse grid (``grid_points=6000, zoom_points=64``). Prints, per condition, the
largest difference in pi's posterior mean between the experiment's fit and the fine one, and
between the single-simulation fit and the fine one (now the same numbers), and how many
single-simulation fits are more than 0.01 off (on another mode)::

    .venv/bin/python benchmarks/bench_exact_modes.py     # ~3 min here
"""

from __future__ import annotations

import warnings

import torch

FINE = {"grid_points": 6000, "zoom_points": 64}


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the engine's resolution warnings on single small groups
    import scai.inference.exact as exact

    fits = []
    fit_exact = exact.fit_exact

    def recorded(data, hypothesis, **options):
        if data.shape[0] > 1:  # the experiment's fits, not the engine's per-simulation calls
            fits.append((data, hypothesis, options))
        return fit_exact(data, hypothesis, **options)

    # Recorded before the protocol's modules import it (they bind the name at import).
    exact.fit_exact = recorded
    from scai.experiments import generalization, protocol
    from scai.experiments.conditions import Settings, condition_seed

    print("| condition | fits x simulations | fit vs fine | alone vs fine | alone > 0.01 off |")
    print("|---|---:|---:|---:|---:|")
    for cond in generalization.conditions(generalization.HYPOTHESES):
        fits.clear()
        settings = Settings()
        protocol.run_condition(
            cond, settings, condition_seed(settings.seed, cond.stream or cond.name)
        )
        shared_worst = alone_worst = 0.0
        off = total = 0
        for data, hypothesis, options in fits:
            options = {k: v for k, v in options.items() if k != "action_loglik"}
            shared = fit_exact(data, hypothesis, **options).pi_mean_exact
            for s in range(data.shape[0]):
                one = data.select_sim(s)
                fine = fit_exact(one, hypothesis, **{**options, **FINE}).pi_mean_exact[0]
                alone = fit_exact(one, hypothesis, **options).pi_mean_exact[0]
                shared_worst = max(shared_worst, float((shared[s] - fine).abs().max()))
                gap = float((alone - fine).abs().max())
                alone_worst = max(alone_worst, gap)
                off += gap > 0.01
                total += 1
        name = cond.name.replace("|", "/")
        print(
            f"| {name} | {len(fits)} x {data.shape[0]} | {shared_worst:.1e} | "
            f"{alone_worst:.1e} | {off} of {total} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
