"""Large populations: one group of 10^5 and 10^6 simulated users, simulated and fitted.

Stages, each in its own process so that its peak memory is its own (``resource.getrusage``
max RSS of the process: the whole interpreter with torch, Pyro and the data, not only the
tensors):

* ``simulate``: ``simulate(Hypothesis(), policy=NORM, users=U, rounds=U, epochs=2)`` (every user
  proposes twice and responds twice: 2U games) and ``GroupData.from_table`` of its table;
* ``exact``: ``fit_exact`` (``neutral``: only ``pi`` is latent), the default lattice zoomed onto
  the posterior (:func:`scai.inference.grids.simplex.zoom_simplex`: sd ~ 0.0005 at 10^6 users
  against the default lattice's step of 0.013); its ``pi`` sd from 1,000 draws;
* ``laplace``: the Laplace approximation of the one density (``MarginalDensity``: mode by
  L-BFGS, Hessian blocks), ``pi``'s mean and sd from 4,000 of its draws: a second reference;
* ``svi``: minibatch SVI, ``fit_svi(subsample_size=B, init="median", correction=None)``: from
  the prior median, without the importance correction, so the fit reads only minibatches.

Later stages load the layout the ``simulate`` stage saved (not timed). Run from the project's
root (``--stages`` runs some of them; ``simulate`` always runs)::

    .venv/bin/python benchmarks/bench_large.py --users 100000 1000000 --output FILE.md
    .venv/bin/python benchmarks/bench_large.py --users 1000000 --stages exact laplace
    .venv/bin/python benchmarks/bench_large.py --users 30000 --rationality-scale 0.5

With ``--rationality-scale X`` the users are simulated and fitted under ``neutral`` with a
latent rationality (``rationality_scale = X``), and each fit's ``lam`` (mean and sd) is
reported and compared too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

NORM = "selfish=0.5,fair=0.3,altruistic=0.2"
STAGES = ("simulate", "exact", "laplace", "svi")


def max_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB on Linux


def stage(
    name: str, users: int, folder: Path, batch: int, steps: int, rationality_scale: float = 0.0
) -> dict:
    """Run one stage in this process; returns its measurements."""
    import torch

    from scai.models.hypotheses import Hypothesis
    from scai.models.layout import GroupData

    torch.set_num_threads(1)
    hypothesis = Hypothesis().with_(rationality_scale=rationality_scale)
    lam = None
    path = folder / f"layout_{users}.pt"
    if name == "simulate":
        from scai.models.simulate import simulate

        start = time.perf_counter()
        sim = simulate(hypothesis, policy=NORM, users=users, rounds=users, epochs=2, seed=0)
        data = GroupData.from_table(sim.interactions)
        seconds = time.perf_counter() - start
        torch.save(data, path)
        return {"seconds": seconds, "games": len(sim.interactions), "shape": list(data.shape)}
    data = torch.load(path, weights_only=False)
    start = time.perf_counter()
    if name == "exact":
        from scai.inference.exact import fit_exact

        post = fit_exact(data, hypothesis)
        mean, sd = post.pi_mean_exact[0], post.flat_draws("pi")[:, 0].std(0)
        lam = post.flat_draws("lam")[:, 0] if "lam" in post.draws else None
        extra = {
            "lattice": post.diagnostics["grid_size"][1],
            "zooms": post.diagnostics.get("simplex_zooms", [0])[0],
        }
    elif name == "laplace":
        from scai.inference.laplace import laplace
        from scai.models.density import MarginalDensity

        density = MarginalDensity(data, hypothesis)
        approx = laplace(density)
        draws = torch.distributions.MultivariateNormal(
            torch.as_tensor(approx.mode), torch.as_tensor(approx.covariance[0])
        ).sample(
            (4000,),
        )
        constrained = density.constrain(draws.to(torch.get_default_dtype()))
        pi = constrained["pi"][:, 0]
        mean, sd, extra = pi.mean(0), pi.std(0), {}
        lam = constrained["lam"][:, 0] if "lam" in constrained else None
    else:
        from scai.inference.svi import fit_svi

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = fit_svi(
                data,
                hypothesis,
                subsample_size=batch,
                init="median",
                correction=None,
                max_steps=steps,
                seed=0,
            )
        pi = post.flat_draws("pi")[:, 0]
        mean, sd = pi.mean(0), pi.std(0)
        lam = post.flat_draws("lam")[:, 0] if "lam" in post.draws else None
        extra = {
            "steps": post.diagnostics["steps"],
            "converged": post.diagnostics["converged"],
            "batch": batch,
            "warnings": [str(w.message)[:80] for w in caught],
        }
    seconds = time.perf_counter() - start
    if lam is not None:
        extra["lam"] = [float(lam.double().mean()), float(lam.double().std())]
    return {"seconds": seconds, "mean": mean.tolist(), "sd": sd.tolist(), **extra}


def load() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=2000, help="SVI minibatch users")
    parser.add_argument("--steps", type=int, default=1000, help="SVI steps")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--rationality-scale",
        type=float,
        default=0.0,
        help="a latent rationality with this prior scale (default 0: fixed, only pi latent)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES[1:],
        default=list(STAGES[1:]),
        help="fits to run after simulate (default: all)",
    )
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:  # a child process: one stage, one JSON line
        result = stage(
            args.stage, args.users[0], args.folder, args.batch, args.steps, args.rationality_scale
        )
        print(json.dumps({**result, "max_rss_gb": max_rss_gb()}))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for users in args.users:
            for name in [n for n in STAGES if n == "simulate" or n in args.stages]:
                before = load()
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--stage",
                        name,
                        "--users",
                        str(users),
                        "--folder",
                        folder,
                        "--batch",
                        str(args.batch),
                        "--steps",
                        str(args.steps),
                        "--rationality-scale",
                        str(args.rationality_scale),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result.update(users=users, stage=name, load=(before, load()))
                print(json.dumps(result), flush=True)
                rows.append(result)
    lines = [
        f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| users | stage | wall (s) | peak RSS (GB) | pi mean | pi sd | notes "
        "| load (before, after) |",
        "|---:|---|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        mean = ", ".join(f"{x:.4f}" for x in r.get("mean", [])) or ""
        sd = ", ".join(f"{x:.4f}" for x in r.get("sd", [])) or ""
        notes = {
            k: r[k]
            for k in ("games", "shape", "lattice", "zooms", "steps", "converged", "batch")
            if k in r
        }
        if "lam" in r:
            notes["lam (mean, sd)"] = f"{r['lam'][0]:.3f}, {r['lam'][1]:.3f}"
        lines.append(
            f"| {r['users']:,} | {r['stage']} | {r['seconds']:.1f} | {r['max_rss_gb']:.2f} | "
            f"{mean} | {sd} | {notes} | {r['load'][0]:.1f}, {r['load'][1]:.1f} |"
        )
    # each fit against the references, in posterior sds of the reference
    lines += [
        "",
        "| users | fit vs reference | difference in pi mean | in reference sds |",
        "|---:|---|---|---|",
    ]
    for users in args.users:
        by = {r["stage"]: r for r in rows if r["users"] == users}
        pairs = [("exact", "laplace"), ("svi", "exact"), ("svi", "laplace")]
        for fit, ref in [(f, r) for f, r in pairs if f in by and r in by]:
            diff = [a - b for a, b in zip(by[fit]["mean"], by[ref]["mean"], strict=True)]
            sds = [
                d / s if s > 0 else float("inf") for d, s in zip(diff, by[ref]["sd"], strict=True)
            ]
            lines.append(
                f"| {users:,} | {fit} vs {ref} | {', '.join(f'{d:+.5f}' for d in diff)} | "
                f"{', '.join(f'{x:+.2f}' for x in sds)} |"
            )
            if "lam" in by[fit] and "lam" in by[ref]:
                d = by[fit]["lam"][0] - by[ref]["lam"][0]
                lines.append(
                    f"| {users:,} | {fit} vs {ref}: lam | {d:+.4f} | {d / by[ref]['lam'][1]:+.2f} |"
                )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
