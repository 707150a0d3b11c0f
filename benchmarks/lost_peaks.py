"""Does the exact engine's warning of a sharp mode its zoomed grid missed fire where, and only
where, the fit is wrong?

Fits selfish groups (4 or 10 users, 8 games each, three seeds) under ``pooled`` and
``essential_goods_shared`` with pots of 10-100, 100-300, 600-1000 and 900-1000, with the
default grid and with 4,001 coarse points (the reference), and prints per fit the largest gap
(nats) between a density scored before the zooms and the zoomed grid's best, whether the fit
warned ("misses a sharp mode"), and how far its ``pi`` is from the reference's::

    .venv/bin/python benchmarks/lost_peaks.py
"""

from __future__ import annotations

import warnings

from scai.inference import exact_zoom, fit
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.simulate import simulate

POTS = ((10, 100), (100, 300), (600, 1000), (900, 1000))


def main() -> None:
    gaps: list[float] = []
    measure = exact_zoom._lost_peaks

    def recorded(scored, density):
        found = measure(scored, density)
        gaps.extend(found)
        return found

    exact_zoom._lost_peaks = recorded
    print("| pots | users | seed | hypothesis | gap (nats) | warned | max abs pi - reference |")
    print("|---|---:|---:|---|---:|---|---:|")
    counts = {"warned, off": 0, "warned, right": 0, "silent, off": 0, "silent, right": 0}
    for pots in POTS:
        for users in (4, 10):
            for seed in range(3):
                for name in ("pooled", "essential_goods_shared"):
                    sim = simulate(Hypothesis(), policy="selfish", users=users, rounds=4,
                                   epochs=2, seed=seed, pot_range=pots)  # fmt: skip
                    gaps.clear()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        default = fit(sim.interactions, PRESETS[name], engine="exact")
                        reference = fit(
                            sim.interactions, PRESETS[name], engine="exact", grid_points=4001
                        )
                    warned = any("misses a sharp mode" in str(w.message) for w in caught)
                    off = float((default.pi_mean() - reference.pi_mean()).abs().max())
                    counts[
                        f"{'warned' if warned else 'silent'}, {'off' if off > 0.1 else 'right'}"
                    ] += 1
                    print(f"| {pots[0]}-{pots[1]} | {users} | {seed} | {name} | "
                          f"{gaps[0]:.1f} | {warned} | {off:.3f} |", flush=True)  # fmt: skip
    print("\nfits (off: pi more than 0.1 from the reference's):", counts)


if __name__ == "__main__":
    main()
