"""Figures, drawn from saved summaries (never by re-running inference)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

from scai.models.writing import write_atomic

# matplotlib, pyplot and seaborn (~1 s of CPU) are imported where a figure is drawn, not with
# this module: `scai run all` imports it before its workers start (:func:`pyplot`).
USERS_COLOR = "0.45"
#: Colours of seaborn's ``colorblind`` palette, by position (:func:`__getattr__`).
PALETTE_COLORS = {"ASSISTANT_COLOR": 0, "ORIGINAL_COLOR": 3}


def pyplot() -> ModuleType:
    """matplotlib's pyplot, imported on first use: matplotlib alone takes ~0.17 s to import, on
    the path of ``scai run all``'s start-up were this module to import it. Where no backend has
    been chosen yet it draws with Agg: into files, no window (ArviZ imports pyplot without
    choosing one; the ``scai`` program chooses Agg, :func:`scai.experiments.cli.console`). A
    session that has chosen one (a notebook) keeps it: switched to Agg, its own figures would
    no longer show; scai's are written to files and closed whichever backend draws them."""
    import matplotlib

    if not _backend_chosen(matplotlib):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _backend_chosen(matplotlib: ModuleType) -> bool:
    """Whether matplotlib's backend has been chosen (by ``use``, ``MPLBACKEND``, a drawn
    figure) rather than left for pyplot to pick."""
    try:
        return matplotlib.get_backend(auto_select=False) is not None  # matplotlib >= 3.10
    except TypeError:
        return matplotlib.rcParams._get_backend_or_none() is not None


def seaborn() -> ModuleType:
    """The seaborn module, imported without SciPy's stats unless something imported them
    already. seaborn imports ``scipy.stats`` for ``gaussian_kde`` alone and, where SciPy's
    stats cannot be imported, uses its own copy of that estimator (``seaborn.external.kde``,
    the same code); ``scipy.stats`` takes ~0.6 s of CPU to import (it parses its docstrings),
    a twentieth of ``scai run all``'s command. Nothing is hidden afterwards: a later ``import
    scipy.stats`` imports it as usual."""
    if "seaborn" in sys.modules or "scipy.stats" in sys.modules:
        import seaborn as sns

        return sns
    sys.modules["scipy.stats"] = None  # type: ignore[assignment]  # import fails: fallback
    try:
        import seaborn as sns
    finally:
        del sys.modules["scipy.stats"]
    return sns


def palette_color(name: str) -> tuple[float, float, float]:
    """``ASSISTANT_COLOR`` or ``ORIGINAL_COLOR``: seaborn's ``colorblind`` palette, looked up
    (importing seaborn) on first use."""
    return seaborn().color_palette("colorblind")[PALETTE_COLORS[name]]


def __getattr__(name: str):
    """The module's colour constants (``plots.ORIGINAL_COLOR``), by :func:`palette_color`."""
    if name not in PALETTE_COLORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return palette_color(name)


def figure_style() -> None:
    """The one look of scai's figures (seaborn's whitegrid, notebook context), set before each
    figure is drawn: matplotlib's style is process-wide, so a figure that did not set it would
    look different depending on which experiments ran before it in the same process."""
    seaborn().set_theme(style="whitegrid", context="notebook")


#: ``set_title(..., y=TOP)``: a title at the top of its axes, for panels whose y axis cannot
#: show an offset text ("1e-3") above it (a fixed or bounded range, categories). matplotlib's
#: automatic placement, which would move the title above such a text or above top tick
#: labels (no scai figure has those), measures every axes' tick labels at each layout pass and
#: draw: a twentieth of the reports' CPU, for the same pixels.
TOP = 1.0


def offered_share_panels(
    summary: pd.DataFrame,
    original: dict[str, tuple[tuple[float, ...], tuple[float, float]]],
    path: Path,
    title: str,
    conditions: list[str] | None = None,
    titles: dict[str, str] | None = None,
) -> Path:
    """One panel per condition: users' and assistant's offered share per epoch (mean, 95% CI),
    with the original GPT-4 assistant's published numbers overlaid where the study has them.
    ``titles``: a panel's title by condition (default: the condition's name)."""
    plt = pyplot()

    figure_style()
    conditions = conditions or list(dict.fromkeys(summary["condition"]))
    n = len(conditions)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, sharey=True
    )
    for ax, cond in zip(axes.flat, conditions, strict=False):
        part = summary[summary["condition"] == cond]
        for agent, color, label in (
            ("users", USERS_COLOR, "users"),
            ("assistant", palette_color("ASSISTANT_COLOR"), "assistant (ours)"),
        ):
            rows_ = part[part["agent"] == agent].sort_values("epoch")
            ax.plot(rows_["epoch"], rows_["offered_share_mean"], "o-", color=color, label=label)
            ax.fill_between(
                rows_["epoch"],
                rows_["offered_share_lo"],
                rows_["offered_share_hi"],
                color=color,
                alpha=0.2,
            )
        if cond in original:
            gpt, _users = original[cond]
            epochs = list(range(1, len(gpt) + 1))
            ax.plot(
                epochs,
                gpt,
                "s--",
                color=palette_color("ORIGINAL_COLOR"),
                label="GPT-4 assistant (2023, as published)",
            )
        ax.set_title((titles or {}).get(cond, cond), y=TOP)  # the y range is fixed below
        ax.set_xlabel("epoch")
        ax.set_ylim(-3, 103)
        ax.set_xticks(sorted(part["epoch"].unique()))
    for ax in axes[:, 0]:
        ax.set_ylabel("offered share (% of pot)")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return save_figure(fig, path)


def save_figure(fig, path: Path, **savefig_options) -> Path:
    """Write a figure as PNG (dpi 120) atomically, then close it."""
    plt = pyplot()

    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, **savefig_options), suffix=".png")
    finally:
        plt.close(fig)
    return Path(path)
