"""How scai's figures get matplotlib (:func:`scai.experiments.plots.pyplot`) and its backend."""

from __future__ import annotations

import os
import subprocess
import sys

#: The backend matplotlib has been told to use, ``None`` if none yet (not what pyplot would
#: pick on its own: Agg too on a machine without a display, which would hide the choice).
CHOSEN = (
    "import matplotlib\n"
    "def chosen():\n"
    "    try:\n"
    "        return matplotlib.get_backend(auto_select=False)\n"
    "    except TypeError:\n"
    "        return matplotlib.rcParams._get_backend_or_none()\n"
)


def _run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    environ.update(MPLCONFIGDIR=str(tmp_path / "mpl"), **env)
    return subprocess.run(
        [sys.executable, "-c", CHOSEN + code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_figures_choose_agg_where_nothing_chose_a_backend(tmp_path):
    """pyplot already imported (ArviZ imports it) but no backend chosen: scai's figures
    choose Agg; and importing the figures' module imports no matplotlib."""
    code = (
        "import sys\n"
        "import scai.experiments.plots as plots\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported with the module'\n"
        "import matplotlib.pyplot\n"
        "print(chosen())\n"
        "plots.pyplot()\n"
        "print(chosen())\n"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert [b.lower() for b in done.stdout.split()] == ["none", "agg"]


def test_a_session_keeps_its_backend_and_figures(tmp_path):
    """A session that chose a backend (a notebook's) keeps it, and its open figure, when scai
    draws one (switched to Agg, the notebook's own figures would no longer show)."""
    out = tmp_path / "figure.png"
    code = (
        "matplotlib.use('svg')\n"  # the session's own (non-interactive here)
        "import matplotlib.pyplot as plt\n"
        "mine = plt.figure()\n"
        "from scai.experiments.plots import pyplot, save_figure\n"
        "fig, ax = pyplot().subplots()\n"
        f"save_figure(fig, {str(out)!r})\n"
        "print(plt.get_backend(), plt.fignum_exists(mine.number))\n"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "True"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_program_draws_with_agg_whatever_the_shell_names(tmp_path):
    """The ``scai`` program (its console) chooses Agg for its figures, over a shell's
    ``MPLBACKEND`` naming a window backend."""
    code = (
        "import scai.experiments.cli as cli\n"
        "def main(argv):\n"
        "    from scai.experiments.plots import pyplot\n"
        "    print(pyplot().get_backend())\n"
        "    return 0\n"
        "cli.main = main\n"
        "cli.console([])\n"
    )
    done = _run(code, tmp_path, MPLBACKEND="TkAgg")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().lower() == "agg"


def test_the_generalization_bars_are_over_simulations(tmp_path, monkeypatch):
    """The bars' error bars were normal intervals over the test games' rows (100 a bar: 20
    simulations x 5 games), not over simulations, which summary.csv's intervals and the README
    count (a review: half-widths 0.73-1.18x the per-simulation ones, a bar past 100%). Here a
    simulation's games are averaged first and the bar is the t 95% interval of those means, cut
    to 0-100: simulation 0 with nine games at 0 and simulation 1 with one at 100 is a bar at
    50 (the rows' mean would be 10)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    import scai.experiments.generalization as generalization
    from scai.experiments.statistics import mean_interval

    rows = [("0", 0.0)] * 9 + [("1", 100.0)] + [("2", 40.0), ("2", 60.0)]
    test = pd.DataFrame(
        {
            "sim": [sim for sim, _ in rows],
            "currency": "dollars",
            "share": [share for _, share in rows],
            "hypothesis": "pooled",
        }
    )
    shifts = pd.DataFrame(
        {
            "hypothesis": "pooled",
            "currency": ["dollars"] * 4,
            "kind": ["prior", "posterior"] * 2,
            "shift": [0.1, 0.2, 0.3, 0.4],
        }
    )
    drawn = []
    monkeypatch.setattr(
        generalization, "save_figure", lambda fig, path, **kw: drawn.append(fig) or path
    )
    generalization.plot_generalization(test, shifts, tmp_path)
    ax = drawn[0].axes[0]
    bar = next(p for p in ax.patches if p.get_height() > 0)
    assert np.isclose(bar.get_height(), 50.0)
    lo, hi = mean_interval(np.array([0.0, 100.0, 50.0]))[1:3]
    vertical = [line for line in ax.lines if len(set(line.get_xdata())) == 1]  # (not axhline)
    ends = sorted(y for line in vertical for y in line.get_ydata())
    assert np.allclose(ends, [lo, hi]), (ends, lo, hi)
