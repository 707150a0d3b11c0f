"""How far the exact engine's simplex lattice puts the posterior mean of ``pi`` from the closed
form, by number of types and Dirichlet concentration: the error
:func:`scai.inference.grids.simplex.check_lattice` measures (groups of users of known types, whose
posterior is the Dirichlet ``a + counts``) and warns of above
:data:`~scai.inference.grids.simplex.LATTICE_TOLERANCE`::

    .venv/bin/python benchmarks/lattice_error.py [--points 3000]
"""

from __future__ import annotations

import argparse
import warnings

from scai.inference.grids.simplex import LATTICE_TOLERANCE, lattice_error, simplex_lattice
from scai.models.hypotheses import Hypothesis
from scai.models.policies import PolicyType

TYPES = (2, 3, 4, 5, 6, 8, 10, 12)
CONCENTRATIONS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("::")[0])
    parser.add_argument("--points", type=int, default=3000, help="max_simplex_points")
    points = parser.parse_args().points
    print(f"largest error of the lattice's posterior mean of pi (max_simplex_points={points});")
    print(f"* where check_lattice warns (above {LATTICE_TOLERANCE})\n")
    print("| types | lattice points | " + " | ".join(f"a = {a:g}" for a in CONCENTRATIONS) + " |")
    print("|---:|---:|" + "---:|" * len(CONCENTRATIONS))
    for K in TYPES:
        cells = []
        for a in CONCENTRATIONS:
            with warnings.catch_warnings():  # types that act alike: irrelevant to the lattice
                warnings.simplefilter("ignore")
                hyp = Hypothesis(
                    name="probe",
                    policies=tuple(PolicyType(f"t{k}", w=k / K) for k in range(K)),
                    pi_concentration=(a,) * K,
                )
            error = lattice_error(hyp, points)
            cells.append(f"{error:.3f}" + ("*" if error > LATTICE_TOLERANCE else ""))
        size = len(simplex_lattice(K, points))
        print(f"| {K} | {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
