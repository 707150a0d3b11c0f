"""Two codes side by side on ``scai run all``'s conditions: their CPU time, measured at the same
time, and whether every condition's results are equal to the bit.

Runs :func:`scai.experiments.protocol.run_condition` at full size (20 simulations, 5 epochs,
exact engine, the settings ``scai run all`` gives each experiment) on every condition of the
chosen experiments, in two processes started together, one with this code and one with the
code under ``OLD`` (a folder holding a ``scai`` package: ``git archive COMMIT --prefix=scai/``
unpacked into it), each with one torch thread and freed memory kept for reuse (as a worker of
the command runs them). On this two-core machine each process has a core, so a change of the
host's speed (a fifth within minutes here) hits both: their CPU seconds compare where two
runs one after the other do not. Each process writes what it computed (every condition's
per-simulation table, interactions, learning curve, posterior draws and type probabilities);
the script then says which conditions differ, field by field::

    .venv/bin/python benchmarks/compare_conditions.py --before OLD               # all 49
    .venv/bin/python benchmarks/compare_conditions.py --before OLD --rounds 3 inconsistency

Posterior files are not written (``scai run all`` writes five; ``bench_run_all.py`` times the
whole command).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("inconsistency", "generalization", "alignment")


def conditions(experiments: list[str]):
    """``(condition, settings)`` of the experiments, as ``scai run all`` computes them."""
    from scai.experiments import alignment, generalization, inconsistency
    from scai.experiments.conditions import Settings

    jobs = []
    if "inconsistency" in experiments:
        main = inconsistency.main_conditions(("stereotyped", "neutral"))
        sweep = inconsistency.sweep_conditions(
            inconsistency.SWEEP_STRENGTHS, inconsistency.SWEEP_RATIONALITIES
        )
        jobs += [(c, Settings(curve=True)) for c in main + sweep]
    if "generalization" in experiments:
        jobs += [(c, Settings()) for c in generalization.conditions(generalization.HYPOTHESES)]
    if "alignment" in experiments:
        jobs += [(c, Settings()) for c in alignment.conditions("neutral")]
    return jobs


def compute(experiments: list[str], out: str) -> None:
    """In this process (whichever code it imports): every condition, its results to ``out``."""
    import gc
    import time

    import torch

    from scai.experiments import protocol
    from scai.experiments.conditions import condition_seed
    from scai.worker_start import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(1)
    gc.freeze()  # as the worker server does before forking a worker
    results, start = {}, time.process_time()
    for cond, settings in conditions(experiments):
        seed = condition_seed(settings.seed, cond.stream or cond.name)  # as the runner's
        r = protocol.run_condition(cond, settings, seed)
        results[cond.name] = {
            "per_sim": r.per_sim,
            "interactions": r.interactions,
            "curve": r.curve,
            **{f"draws {k}": v.numpy().copy() for k, v in r.posterior.draws.items()},
            "policy_probs": r.posterior.policy_probs.numpy().copy(),
        }
    spent = time.process_time() - start
    with open(out, "wb") as file:
        pickle.dump({"cpu": spent, "results": results}, file)


def differences(a: dict, b: dict) -> list[str]:
    """``condition: field`` wherever two runs' results are not equal to the bit."""
    out = [f"{name}: missing" for name in a.keys() ^ b.keys()]
    for name in a.keys() & b.keys():
        for field in a[name].keys() | b[name].keys():
            x, y = a[name].get(field), b[name].get(field)
            if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
                same = x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
            elif x is None or y is None:
                same = x is None and y is None
            else:
                same = x.equals(y)
            if not same:
                out.append(f"{name}: {field}")
    return sorted(out)


def main(args) -> None:
    old = Path(args.before).resolve()
    if not (old / "scai" / "__init__.py").exists():
        sys.exit(f"--before: {old} holds no scai package (git archive COMMIT --prefix=scai/)")
    experiments = args.experiments or list(EXPERIMENTS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"experiments: {', '.join(experiments)}; before: {old}; load {os.getloadavg()[0]:.1f}")
    print("\n| round | CPU s, before | CPU s, this code | ratio | conditions not equal |")
    print("|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            runs = {}
            for code, path in (("before", old), ("this", ROOT.parent)):
                out = f"{tmp}/{code}.pkl"
                call = [sys.executable, __file__, "--compute", out, *experiments]
                runs[code] = (
                    out,
                    subprocess.Popen(call, env={**env, "PYTHONPATH": str(path)}, cwd=tmp),
                )
            for code, (_, process) in runs.items():
                if process.wait():
                    sys.exit(f"the {code} code's process failed (exit {process.returncode})")
            before, this = (pickle.loads(Path(runs[c][0]).read_bytes()) for c in runs)
            differ = differences(before["results"], this["results"])
            shown = ", ".join(differ[:5]) + (" ..." if len(differ) > 5 else "") or "none"
            print(
                f"| {round_} | {before['cpu']:.2f} | {this['cpu']:.2f} | "
                f"{this['cpu'] / before['cpu']:.3f} | {shown} |"
            )
    print(f"\n{len(before['results'])} conditions; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "experiments", nargs="*", help=f"some of {', '.join(EXPERIMENTS)} (default: all)"
    )
    parser.add_argument("--before", help="a folder holding the other code's scai package")
    parser.add_argument("--rounds", type=int, default=1, help="runs of both codes, together")
    parser.add_argument("--compute", metavar="OUT", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    unknown = [name for name in parsed.experiments if name not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment {unknown[0]!r}; allowed: {', '.join(EXPERIMENTS)}")
    if parsed.compute:
        compute(parsed.experiments or list(EXPERIMENTS), parsed.compute)
    elif not parsed.before:
        parser.error("--before OLD is required")
    else:
        main(parsed)
