"""CPU time of ``scai run all``'s conditions, one process, warm, phase by phase.

Runs :func:`scai.experiments.protocol.run_condition` at full size (20 simulations, 5 epochs,
exact engine) on some of an experiment's conditions, in one process with one torch thread and
freed memory kept for reuse (as a worker of the command runs them), after one small warm-up
condition, and prints the mean CPU seconds (``time.process_time``) per condition and of each
phase: the assistant's norms, the users' games, the first fit, the updates (and within them
the table checks and layout, ``prepare``, and the exact update), the learning curve (and its
type probabilities), the users' true acceptance tables and the per-epoch records::

    .venv/bin/python benchmarks/bench_conditions.py inconsistency    # 4 main + 4 sweep conditions
    .venv/bin/python benchmarks/bench_conditions.py generalization   # its 3 conditions
    .venv/bin/python benchmarks/bench_conditions.py alignment        # its 6 conditions

With ``--sims 20,80,320,640`` it times instead every fourth of inconsistency's sweep conditions
at each of those numbers of simulations (one program: the same shapes, more simulations) and prints
the CPU per 20 simulations: what batching conditions of one shape into one tensor program
could save at most, against twenty simulations a condition::

    .venv/bin/python benchmarks/bench_conditions.py --sims 20,80,320,640

Phases are timed by wrapping the functions the protocol calls (a phase named
``parent: part`` is counted in its parent too); ``other`` is the rest of ``run_condition``.
"""

from __future__ import annotations

import argparse
import collections
import os
import time

import torch

from scai.worker_start import keep_freed_memory

#: ``(module, function, label)``: the phases timed, in the module where the caller finds them.
PHASES = (
    ("protocol", "assistant_norms", "assistant's norms"),
    ("protocol", "epoch_schedule", "schedule"),
    ("protocol", "play", "users' games"),
    ("protocol", "fit", "first fit"),
    ("protocol", "update_as_fitted", "updates"),
    ("online", "prepare", "updates: table checks and layout"),
    ("online", "update_exact", "updates: exact update"),
    ("protocol", "learning_curve", "learning curve"),
    ("learning_curve", "policy_probabilities", "learning curve: its type probabilities"),
    ("protocol", "action_tables", "users' acceptance tables"),
    ("protocol", "_epoch_records", "per-epoch records"),
)


def conditions(experiment: str):
    """Some of ``experiment``'s conditions, with the settings ``scai run all`` gives them."""
    from scai.experiments import alignment, generalization, inconsistency
    from scai.experiments.conditions import Settings

    if experiment == "inconsistency":
        main = inconsistency.main_conditions(("stereotyped", "neutral"))
        sweep = inconsistency.sweep_conditions(
            inconsistency.SWEEP_STRENGTHS, inconsistency.SWEEP_RATIONALITIES
        )
        return [(c, Settings(curve=True)) for c in main[:4] + sweep[:8:2]]
    if experiment == "generalization":
        return [(c, Settings()) for c in generalization.conditions(generalization.HYPOTHESES)]
    return [(c, Settings()) for c in alignment.conditions("neutral")]


def by_simulations(counts: list[int]) -> None:
    """Every fourth inconsistency sweep condition at ``counts`` simulations each: their mean
    CPU per 20 simulations."""
    from scai.experiments import inconsistency, protocol
    from scai.experiments.conditions import Settings, condition_seed

    conds = inconsistency.sweep_conditions(
        inconsistency.SWEEP_STRENGTHS, inconsistency.SWEEP_RATIONALITIES
    )[::4]
    protocol.run_condition(conds[0], Settings(sims=2, epochs=2, curve=True), 1)  # warm-up
    print(f"{len(conds)} sweep conditions, load average {os.getloadavg()[0]:.1f}")
    print("\n| simulations | CPU s per condition | CPU s per 20 simulations |\n|---:|---:|---:|")
    for sims in counts:
        settings = Settings(sims=sims, curve=True)
        start = time.process_time()
        for cond in conds:
            protocol.run_condition(cond, settings, condition_seed(settings.seed, cond.stream))
        spent = (time.process_time() - start) / len(conds)
        print(f"| {sims} | {spent:.3f} | {spent * 20 / sims:.3f} |")


def simulation_counts(text: str) -> list[int]:
    """``--sims``: comma-separated positive whole numbers."""
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected numbers of simulations such as 20,160, got {text!r}"
        )
    return counts


def main(args) -> None:
    keep_freed_memory()
    torch.set_num_threads(1)
    if args.sims:
        by_simulations(args.sims)
        return
    from scai.experiments import learning_curve, protocol
    from scai.experiments.conditions import Settings, condition_seed
    from scai.inference import online

    modules = {"protocol": protocol, "online": online, "learning_curve": learning_curve}
    spent: collections.Counter = collections.Counter()

    def timed(function, label):
        def wrapper(*a, **k):
            start = time.process_time()
            try:
                return function(*a, **k)
            finally:
                spent[label] += time.process_time() - start

        return wrapper

    for module, name, label in PHASES:
        setattr(modules[module], name, timed(getattr(modules[module], name), label))
    jobs = conditions(args.experiment)
    warm = Settings(sims=2, epochs=2, curve=jobs[0][1].curve)
    protocol.run_condition(jobs[0][0], warm, 1)
    spent.clear()
    start = time.process_time()
    for cond, settings in jobs:
        protocol.run_condition(
            cond, settings, condition_seed(settings.seed, cond.stream or cond.name)
        )
    total = (time.process_time() - start) / len(jobs)
    print(f"{args.experiment}: {len(jobs)} conditions, load average {os.getloadavg()[0]:.1f}")
    print("\n| phase | CPU s per condition |\n|---|---:|")
    print(f"| condition | {total:.3f} |")
    for _, _, label in PHASES:
        print(f"| {label} | {spent[label] / len(jobs):.3f} |")
    top = sum(v for k, v in spent.items() if ":" not in k) / len(jobs)
    print(f"| other | {total - top:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "experiment",
        choices=("inconsistency", "generalization", "alignment"),
        nargs="?",
        default="inconsistency",
    )
    parser.add_argument(
        "--sims",
        type=simulation_counts,
        help="comma-separated numbers of simulations: time every fourth inconsistency sweep "
        "condition at each instead (the experiment argument is then not used)",
    )
    main(parser.parse_args())
