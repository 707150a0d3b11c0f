"""Wall and CPU time of the human-data experiment's quick subset fit (20 subjects per role).

The fit ``tests/test_human_experiment.py::test_subset_fit_matches_data`` checks for quality:
``fit_responders`` of the inequity-aversion hypothesis on ``QUICK_SUBJECTS`` subjects per role
of ``../shared/data/study1_ug.csv`` (``HumanFitSettings.for_run(quick=True)``, chains one after
another in this process). Target: under a minute of CPU. Run from the project root::

    .venv/bin/python benchmarks/bench_human_subset.py [--repeats 3] [--data PATH]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from bench_inference import load_average, machine_lines

from scai.experiments.human_data.experiment import QUICK_SUBJECTS, subset
from scai.experiments.human_data.fitting import INEQUITY_FILE, HumanFitSettings, fit_responders
from scai.models.human_data import read_human_data
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.responders import ResponderData

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "study1_ug.csv"


def main(args: argparse.Namespace) -> None:
    before = load_average()
    table, roles = subset(read_human_data(args.data), QUICK_SUBJECTS, seed=0)
    data = ResponderData.from_table(table, roles)
    spec = load_hypothesis_file(INEQUITY_FILE)
    settings = HumanFitSettings.for_run(quick=True, seed=0)
    rows = []
    for repeat in range(1, args.repeats + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        fit = fit_responders(data, spec, settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        divergences = int(fit.stats["diverging"].sum())
        rows.append(f"| {repeat} | {wall:.1f} | {cpu:.1f} | {divergences} | {load_average()} |")
        print(rows[-1], flush=True)
    lines = [
        f"## Human-data quick subset fit ({QUICK_SUBJECTS} subjects per role)",
        "",
        f"- command: `{shlex.join([sys.executable.split('/')[-1], *sys.argv])}`",
        *machine_lines(),
        f"- load average (1, 5, 15 min) before: {before}",
        "",
        "| repeat | wall (s) | CPU (s) | divergences | load after |",
        "|---:|---:|---:|---:|---|",
        *rows,
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    main(parser.parse_args())
