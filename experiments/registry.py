"""The registry of experiments: the one place an experiment name is defined.

Each experiment is a module with ``main(args) -> ExperimentResult`` reading the common options
(``--seed``, ``--quick``, ``--out``, ``--sims``, ``--epochs``, ``--engine``, ``--hypothesis``)
and writing only under ``args.out / NAME`` and ``figures/``. ``scai run NAME`` runs one;
``scai run all`` runs them all. A test discovers this registry and runs each with ``--quick``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS: dict[str, str] = {
    "alignment": "experiments.alignment",
    "generalization": "experiments.generalization",
    "inconsistency": "experiments.inconsistency",
    "human-data": "experiments.human_data",
}


def load(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS)}, all")
    return importlib.import_module(EXPERIMENTS[name])
