"""How scai's figures get matplotlib (:func:`scai.experiments.plots.pyplot`)."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "MPLBACKEND": ""}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_command_draws_with_agg(tmp_path):
    code = (
        "import sys\n"
        "import scai.experiments.plots as plots\n"
        "assert 'matplotlib' not in sys.modules, 'imported with the module'\n"
        "print(plots.pyplot().get_backend().lower())\n"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "agg"


def test_a_session_using_pyplot_keeps_its_backend_and_figures(tmp_path):
    """A notebook's pyplot keeps its backend and open figures when scai draws one (switched to
    Agg, the notebook's own figures would no longer show)."""
    out = tmp_path / "figure.png"
    code = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"  # a backend of the session's own (non-interactive here)
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
