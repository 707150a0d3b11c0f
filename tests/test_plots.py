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
