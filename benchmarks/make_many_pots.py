"""A 400-row table of one group with many distinct pots (1-1,000), where saving a fit's
posterior (its predictive replicates' action tables) was most of ``scai fit``'s time::

    .venv/bin/python benchmarks/make_many_pots.py /tmp/manypots.csv
    time .venv/bin/scai fit --data /tmp/manypots.csv --out /tmp/manypots_fit
"""

import sys

import numpy as np
import pandas as pd


def main(path: str, n: int = 400) -> None:
    rng = np.random.default_rng(0)
    pot = rng.integers(1, 1001, n)
    offer = (pot * rng.uniform(0, 0.6, n)).astype(int)
    proposer = rng.integers(0, 20, n)
    table = pd.DataFrame(
        {
            "sim": 0,
            "epoch": np.arange(n) // 8,
            "round": np.arange(n) % 8,
            "proposer": [f"u{i}" for i in proposer],
            "responder": [f"u{(i + 1) % 20}" for i in proposer],
            "currency": rng.choice(["dollars", "medicine", "apples"], n),
            "pot": pot,
            "offer": offer,
            "accepted": rng.integers(0, 2, n),
            "proposer_tone": "",
            "responder_tone": "",
        }
    )
    table.to_csv(path, index=False)


if __name__ == "__main__":
    main(sys.argv[1])
