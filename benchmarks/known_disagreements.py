"""A group on which the engines disagreed, found by a review.

Ten selfish users, 8 games in dollars with pots 10-100: their posterior has a sharp mode
(selfish, dollars' shift about -0.49, sd about 0.006) and, tens of nats below it, one where
they read as altruistic (shift about -1.0).

1. ``pooled`` with the group beside a second one that plays in medicine: the exact engine's
   grid had a dimension for each currency of the table, so this group's first grid was
   two-dimensional (40 points a side, a step of ~0.15), did not show the sharp mode, and the
   fit landed on the wrong modes with no warning. Fixed: each simulation's grid covers the
   shifts of the currencies it plays (the others are drawn from their prior given the shared
   shift), so the group's fit is its fit alone (one latent shift, 200 points), as MCMC's.
2. ``essential_goods_shared``, the group alone: every MCMC chain starts from the one Laplace
   mode that L-BFGS finds from the prior median and some prior draws; from four, the
   altruistic one, where r-hat is fine (all chains share it) and nothing warned. From
   :data:`scai.inference.laplace.MODE_STARTS` (16) it finds the sharp mode, as exact and SVI do.
   (Starting L-BFGS at each type's corner of the simplex did not reach it: the shift walks
   to -1 first.)

Prints, per engine: ``pi`` mean, the dollars shift's mean and the largest log joint over
draws (:meth:`Posterior.log_joint`, higher is better)::

    .venv/bin/python benchmarks/known_disagreements.py
"""

from __future__ import annotations

import warnings

import pandas as pd

from scai.inference import fit
from scai.models import PRESETS, simulate


def group(hyp, policy: str, seed: int, name: str, pots: tuple[int, int], currency: str):
    table = simulate(
        hyp, policy=policy, users=10, rounds=8, epochs=1, seed=seed, pot_range=pots,
        currency=currency, assign="exact",
    ).interactions  # fmt: skip
    return table.assign(sim=name)


def show(label: str, table: pd.DataFrame, hyp, sim: int) -> None:
    for engine, options in (("exact", {}), ("svi", {}), ("mcmc", {"num_chains": 4, "seed": 1})):
        with warnings.catch_warnings(record=True) as heard:
            warnings.simplefilter("always")
            post = fit(table, hyp, engine=engine, **options)
        dollars = post.data.currencies.index("dollars")
        shift = post.draws["shift"][..., sim, dollars].double()
        print(
            f"{label} {engine:5s}: pi {post.pi_mean()[sim].numpy().round(3)}, "
            f"shift[dollars] {shift.mean():.3f}, max log joint {post.log_joint().max():.1f}, "
            f"{len(heard)} warning(s)"
        )


def main() -> None:
    pooled, shared = PRESETS["pooled"], PRESETS["essential_goods_shared"]
    beside = group(pooled, "selfish=0.5,altruistic=0.3,fair=0.2", 25, "a", (2, 10), "medicine")
    alone = group(pooled, "selfish", 26, "b", (10, 100), "dollars")
    show("pooled, alone      ", alone, pooled, 0)
    show("pooled, beside one ", pd.concat([beside, alone], ignore_index=True), pooled, 1)
    show("essential_goods_shared, alone", alone, shared, 0)


if __name__ == "__main__":
    main()
