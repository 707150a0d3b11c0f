"""The registry of experiments: the one place an experiment name is defined.

Each experiment is a module with ``main(args) -> ExperimentResult`` reading the common options
(``--seed``, ``--quick``, ``--out``, ``--hypothesis``, and those of
:data:`scai.experiments.commands.run.EXPERIMENT_OPTIONS` that name it) and writing only under
``args.out / NAME`` and ``figures/``. ``scai run NAME`` runs one;
``scai run all`` runs the original study's experiments (:data:`STUDY`); ``scai run everything``
adds the experiments on real human data, whose MCMC fits take minutes rather than seconds. A
test discovers this registry and runs each with ``--quick``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS: dict[str, str] = {
    "alignment": "scai.experiments.alignment",
    "generalization": "scai.experiments.generalization",
    "inconsistency": "scai.experiments.inconsistency",
    "human-data": "scai.experiments.human_data",
    "original-logs": "scai.experiments.original_logs",
}

#: The original study's experiments: what ``scai run all`` reproduces.
STUDY = ("alignment", "generalization", "inconsistency")
#: What ``scai run NAME`` accepts besides the experiments' own names.
GROUPS: dict[str, tuple[str, ...]] = {"all": STUDY, "everything": tuple(EXPERIMENTS)}


def load(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        allowed = ", ".join([*EXPERIMENTS, *GROUPS])
        raise ValueError(f"unknown experiment {name!r}; allowed: {allowed}")
    return importlib.import_module(EXPERIMENTS[name])
