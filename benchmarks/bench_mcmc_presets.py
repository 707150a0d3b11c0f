"""MCMC on every preset and every latent hypothesis: wall time, ESS, r-hat, divergences.

For each hypothesis (every preset of :data:`scai.models.hypotheses.PRESETS`, plus
``latent_lam`` = ``neutral`` with ``lam ~ LogNormal(log 4, 0.3)``, ``pooled_latent_lam`` =
``pooled`` with ``lam ~ LogNormal(log 4, 0.5)``, and the real-agent presets with the
rationality and the currency shifts latent too: ``real_agents_latent_lam`` = ``real_agents``
with ``lam ~ LogNormal(log 4, 0.3)``, ``real_agents_stereotyped_pooled`` =
``real_agents_stereotyped`` with ``pooled``'s shifts), one group of ``--users`` users
simulated *from that hypothesis* (``simulate(h, policy=MIXTURE, users=U, rounds=U,
epochs=5)``: 10 events per user), fitted by :func:`scai.inference.mcmc.fit_mcmc` with its
defaults (2 chains, 300 warmup + 500 draws; the chains in lockstep in this process through one
batched gradient of the density's NumPy backend).
Then the user's case of issue 14: ``pooled_latent_lam`` on a group of 64 interactions (16
users, 8 rounds, 8 epochs). ``--write-user-case DIR`` writes that case's games and hypothesis
instead, to time it as a user meets it, a cold ``scai fit`` from a shell (imports, numba's
kernels loaded, the posterior file written; ``scai fit``'s default warmup is 500)::

    .venv/bin/python benchmarks/bench_mcmc_presets.py --write-user-case /tmp/case
    time .venv/bin/scai fit --data /tmp/case/games.csv --engine mcmc --seed 1 \\
        --hypothesis /tmp/case/pooled_latent_lam.toml --out /tmp/case/out

Reported: wall time of the whole ``fit_mcmc`` call (warm-up fits first pay the imports and load
the compiled kernels of :mod:`scai.models.kernels`, as a long-lived program would have it;
``scai fit`` pays them once at start-up), the smallest bulk ESS
and the largest r-hat over every parameter, divergences, the median step size and the mean
number of leapfrog steps per draw, and what the struggle monitor said. Targets (issue 14):
wall <= 10 s, bulk ESS >= 400, r-hat <= 1.01, no divergences. Run from the project root::

    .venv/bin/python benchmarks/bench_mcmc_presets.py [--output FILE.md]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from bench_inference import MIXTURE, Table, load_average, machine_lines

from scai.inference.diagnostics import DiagnosticWarning
from scai.inference.mcmc import fit_mcmc
from scai.inference.nuts import SamplerWarning
from scai.models.hypotheses import PRESETS, Hypothesis
from scai.models.layout import GroupData
from scai.models.simulate import simulate

RESULTS = Path(__file__).with_name("results_mcmc_presets.md")
TARGET_S, TARGET_ESS, TARGET_RHAT = 10.0, 400, 1.01


def hypotheses() -> dict[str, Hypothesis]:
    out = dict(PRESETS)
    out["latent_lam"] = PRESETS["neutral"].with_(name="latent_lam", rationality_scale=0.3)
    out["pooled_latent_lam"] = PRESETS["pooled"].with_(
        name="pooled_latent_lam", rationality_scale=0.5
    )
    out["real_agents_latent_lam"] = PRESETS["real_agents"].with_(
        name="real_agents_latent_lam", rationality_scale=0.3
    )
    pooled = PRESETS["pooled"]
    out["real_agents_stereotyped_pooled"] = PRESETS["real_agents_stereotyped"].with_(
        name="real_agents_stereotyped_pooled",
        shared_scale=pooled.shared_scale,
        currency_scale=pooled.currency_scale,
    )
    return out


def group(h: Hypothesis, users: int, rounds: int, epochs: int, seed: int) -> GroupData:
    sim = simulate(h, policy=MIXTURE, users=users, rounds=rounds, epochs=epochs, seed=seed)
    return GroupData.from_table(sim.interactions)


def measure(name: str, h: Hypothesis, data: GroupData, table: Table, seed: int) -> None:
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticWarning)
        post = fit_mcmc(data, h, seed=seed)
    wall = time.perf_counter() - start
    diag = post.diagnostics
    ess = min(diag["ess_bulk"].values())
    rhat = max(diag["r_hat"].values())
    st = post.sample_stats
    said = [str(w.message) for w in caught if issubclass(w.category, SamplerWarning)]
    ok = wall <= TARGET_S and ess >= TARGET_ESS and rhat <= TARGET_RHAT and diag["divergences"] == 0
    n_games = int(data.event_mask.sum()) // 2
    table.rows.append(
        [
            name,
            f"{n_games:,}",
            f"{wall:.1f}",
            f"{ess:,.0f}",
            f"{rhat:.3f}",
            str(diag["divergences"]),
            f"{np.median(st['step_size']):.3f}",
            f"{np.mean(st['n_steps']):.1f}",
            "yes" if ok else "**no**",
            "; ".join(s.split(": ", 2)[-1][:160] for s in said) or "",
        ]
    )
    print(table.rows[-1], flush=True)


def main(args: argparse.Namespace) -> None:
    before = load_average()
    table = Table(
        f"MCMC, {args.users} users per group, fit_mcmc defaults",
        [
            "hypothesis",
            "games",
            "wall (s)",
            "min bulk ESS",
            "max r-hat",
            "divergences",
            "step size",
            "leapfrog / draw",
            "targets met",
            "struggle monitor said",
        ],
        "lrrrrrrrll",
    )
    hs = hypotheses()
    warm = group(hs["neutral"], 20, 20, 1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_mcmc(warm, hs["neutral"], warmup=20, samples=20)  # pay the imports
        # and the compiled kernels' loading (or compiling, with no cache yet)
        h = hs["real_agents_stereotyped_pooled"]
        start = time.perf_counter()
        fit_mcmc(group(h, 10, 10, 1, 0), h, warmup=5, samples=5)
        kernels = time.perf_counter() - start
    for name, h in hs.items():
        if args.only and name not in args.only:
            continue
        measure(name, h, group(h, args.users, args.users, 5, args.seed), table, args.seed)
    user = hs["pooled_latent_lam"]
    measure("pooled_latent_lam, 64 games", user, group(user, 16, 8, 8, 1), table, args.seed)
    after = load_average()
    lines = [
        "## MCMC on every preset and latent hypothesis",
        "",
        f"- command: `{shlex.join([sys.executable.split('/')[-1], *sys.argv])}`",
        *machine_lines(),
        f"- load average (1, 5, 15 min) before: {before}; after: {after}",
        f"- warm-up: a tiny real-agent fit that loads the compiled kernels took {kernels:.1f} s"
        " (numba's on-disk cache; compiling them with no cache takes longer, once per install)",
        "",
        table.render(),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)


USER_CASE_TOML = """name = "pooled_latent_lam"
description = "pooled with a latent rationality (issue 14's new user's case)"
rationality = 4.0
rationality_scale = 0.5

[currency]
shared_scale = 0.5
currency_scale = 0.02
"""


def write_user_case(folder: Path) -> None:
    """The user's case as a user meets it: ``games.csv`` (the 64 games the table's last row
    fits) and ``pooled_latent_lam.toml``, for ``scai fit`` from a shell (module docstring)."""
    h = hypotheses()["pooled_latent_lam"]
    folder.mkdir(parents=True, exist_ok=True)
    toml = folder / "pooled_latent_lam.toml"
    toml.write_text(USER_CASE_TOML)
    from scai.models.hypotheses import get_hypothesis

    if get_hypothesis(toml).with_(description=h.description) != h:
        raise SystemExit(f"{toml} is not the benchmark's pooled_latent_lam")
    sim = simulate(h, policy=MIXTURE, users=16, rounds=8, epochs=8, seed=1)
    sim.interactions.to_csv(folder / "games.csv", index=False)
    print(f"wrote {folder / 'games.csv'} and {toml}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument(
        "--write-user-case", type=Path, default=None, metavar="DIR", help="see write_user_case"
    )
    args = parser.parse_args()
    if args.write_user_case:
        write_user_case(args.write_user_case)
    else:
        main(args)
