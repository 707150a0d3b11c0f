"""``scai sweep SPEC.toml --out DIR``: an experiment's base condition over a grid of settings
(:mod:`scai.experiments.sweep`), on this machine or a Dask cluster."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from scai.experiments.commands import (
    check_outputs,
    command,
    count,
    input_path,
    output_dir,
    warnings_on_one_line,
)
from scai.experiments.common import RUN_LIMITS
from scai.experiments.locking import LOCK_NAME, locked


def _add_sweep(p: argparse.ArgumentParser) -> None:
    from scai.experiments.sweep.backends import BACKENDS
    from scai.experiments.sweep.spec import AXES, MEASURES

    p.add_argument(
        "spec",
        type=input_path,
        metavar="SPEC.toml",
        help="the sweep: base condition, axes (any of "
        f"{', '.join(AXES)}), measure ({', '.join(MEASURES)}); see "
        "scai.experiments.sweep.spec",
    )
    p.add_argument(
        "--out",
        type=output_dir,
        required=True,
        metavar="DIR",
        help="writes DIR/sweep.csv (one row per cell); finished conditions are cached in "
        "DIR/cache, so an interrupted sweep resumes where it stopped",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the cells run: local (this machine's processes, the default) or dask (a "
        "Dask distributed cluster: --scheduler, or a local one of --workers processes)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="with --backend dask: the scheduler's address, e.g. tcp://10.0.0.5:8786",
    )
    p.add_argument(
        "--workers",
        type=count("--workers", *RUN_LIMITS["workers"]),
        default=None,
        help="parallel processes (default: cores); not with --scheduler",
    )
    p.add_argument(
        "--figures",
        type=output_dir,
        default=None,
        metavar="DIR",
        help="where the heat-map sweep.png goes (default DIR/figures of --out)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help=f"if another scai process is running into --out (it holds OUT/{LOCK_NAME}), wait "
        "for it to end; by default the sweep is refused",
    )


@command("sweep", "run an experiment's condition over a grid of settings (local or Dask)")(
    _add_sweep
)
def sweep(args: argparse.Namespace) -> int:
    from scai.experiments.cache import CacheWarning, nothing_left_on_failure
    from scai.experiments.sweep import load_spec, run_sweep
    from scai.experiments.sweep.backends import check_options
    from scai.experiments.sweep.cells import make_cells
    from scai.experiments.sweep.report import map_path, table_path

    spec = load_spec(args.spec)
    check_options(args.backend, args.scheduler, args.workers)
    # before any cell runs: a table or figure that cannot be written would be found at the end
    check_outputs("--out", args.out, [table_path(args.out)])
    figures = ("--figures", args.figures) if args.figures else ("--out", args.out)
    check_outputs(*figures, [map_path(args.out, args.figures)])
    # The cells' own checks (a setting the hypothesis ignores, a hypothesis file that does not
    # load) before the lock, which makes --out: a refused spec leaves no folder behind.
    cells = make_cells(spec)
    start = time.perf_counter()
    made = [Path(args.out), *([Path(args.figures)] if args.figures else [])]
    figures_held = args.figures and Path(args.figures).resolve() != Path(args.out).resolve()
    with (
        nothing_left_on_failure(made),
        locked(args.out, wait=args.wait, on_wait=_tell, merges_into=args.figures),
        # held as --out is: two sweeps into one --figures each drew their map there, and one
        # reported the other's as its own
        locked(args.figures, what="--figures", wait=args.wait, on_wait=_tell, held=args.out)
        if figures_held
        else contextlib.nullcontext(),
        warnings_on_one_line((CacheWarning,), _tell),
    ):
        result = run_sweep(
            spec,
            args.out,
            figures=args.figures,
            backend=args.backend,
            scheduler=args.scheduler,
            workers=args.workers,
            tell=_tell,
            cells=cells,
        )
    cells = len(result.table)
    print(
        f"sweep: {cells} cells in {time.perf_counter() - start:.1f} s -> {result.table_path}, "
        f"{result.figure}"
    )
    if result.failed:
        _tell(
            f"{result.failed} of {cells} cells failed (their rows in {result.table_path} say "
            "why); run the same command again to retry them (finished cells come from the "
            "cache; a cell whose inputs failed it fails again until the spec changes)"
        )
        return 1
    return 0


def _tell(message: str) -> None:
    print(f"scai sweep: {message}", file=sys.stderr, flush=True)
