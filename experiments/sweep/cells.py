"""A sweep's cells: every combination of the axes' values, each one or two conditions of the
protocol (:class:`~scai.experiments.conditions.Condition`), and what a cell measures.

A cell's conditions share one random stream (``sweep`` and the cell's axis values, the seed
aside: it is the settings'), so the users of a contrast (the condition's manner against
neutral users) meet the same partners and play the same games; only their tones differ. The
inconsistency experiment's own sweep cells are named this way (``sweep s=0.8 lam=4.0``), so
a sweep over the same values computes the same conditions as ``scai run inconsistency``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from scai.experiments.conditions import (
    HYPOTHESIS_SETTINGS,
    Condition,
    Settings,
    assistant_hypothesis,
    condition_seed,
)
from scai.experiments.inconsistency import belief_deficit, slowdown
from scai.experiments.learning_curve import interactions_to_reach
from scai.experiments.sweep.spec import AXES, CONTRASTS, SweepSpec, Value
from scai.inference.exact_bounded import check_groups_fit
from scai.models.errors import HypothesisError, ScaiError
from scai.models.game import TRAINING_CURRENCIES
from scai.models.hypotheses import Hypothesis, get_hypothesis

#: Short names of axes in condition names (the inconsistency experiment's).
SHORT = {"stereotype_strength": "s", "rationality": "lam"}
#: The order of the axes in a cell's stream: the inconsistency experiment's (``sweep s=0.8
#: lam=4.0``), then the others in :data:`~scai.experiments.sweep.spec.AXES` order.
STREAM_ORDER = (*SHORT, *(a for a in AXES if a not in SHORT))


@dataclass(frozen=True)
class Cell:
    """One combination of the axes' values and the conditions that measure it."""

    values: tuple[tuple[str, Value], ...]  # (axis, value) in the spec's order
    stream: str
    settings: Settings
    conditions: tuple[Condition, ...]  # the condition's manner first, then neutral if a contrast

    def label(self) -> str:
        """``axis=value ...``: the cell in messages."""
        return " ".join(f"{axis}={value}" for axis, value in self.values)


def make_cells(spec: SweepSpec) -> list[Cell]:
    """Every cell of ``spec``, in the order of the axes' values (the last axis fastest); each
    condition's hypothesis is built here, so a bad combination fails before any work."""
    base = Settings(**spec.settings, curve=True)  # the measures need the learning curves
    _check_rationality_kept(spec)
    cells = []
    for combo in itertools.product(*spec.axes.values()):
        values = tuple(zip(spec.axes, combo, strict=True))
        cells.append(_cell(spec, base, values))
    return cells


def _cell(spec: SweepSpec, base: Settings, values: tuple[tuple[str, Value], ...]) -> Cell:
    chosen = dict(spec.condition)
    settings = base
    for axis, value in values:
        if axis == "seed":
            settings = replace(settings, seed=int(value))
        else:
            chosen[axis] = value
    # The stream names the values in one fixed order (STREAM_ORDER), not the file's: a TOML
    # table's keys have no meaning in their order, and the numbers must not change with it.
    shown = sorted(
        ((axis, value) for axis, value in values if axis != "seed"),
        key=lambda pair: STREAM_ORDER.index(pair[0]),
    )
    stream = " ".join(["sweep", *(f"{SHORT.get(a, a)}={v}" for a, v in shown)])
    assistant = chosen["assistant_rationality"]
    manners = [chosen["manner"], "neutral"] if spec.measure in CONTRASTS else [chosen["manner"]]
    conditions = tuple(
        Condition(
            f"{stream} {manner}",
            chosen["policy"],
            manner=manner,
            hypothesis=chosen["hypothesis"],
            users=int(chosen["users"]),
            rationality=float(chosen["rationality"]),
            stereotype_strength=_maybe(chosen["stereotype_strength"]),
            assistant_rationality=float(
                chosen["rationality"] if assistant == "users" else assistant
            ),
            true_policy=chosen["policy"],
            stream=stream,
            save_posterior=False,  # only the learning curves are used
            hypothesis_settings=tuple(
                (key, float(chosen[key])) for key in HYPOTHESIS_SETTINGS if key in chosen
            ),
        )
        for manner in manners
    )
    for cond in conditions[:1]:  # the same hypothesis for both manners
        try:
            hypothesis = assistant_hypothesis(cond)
            _check_norm_is_a_type(cond.policy, hypothesis)
            _check_axes_act(spec, hypothesis)
            # every failure of its condition would be this one, retried: told before any work
            prefixes = settings.sims * settings.epochs * (settings.rounds + 2)
            check_groups_fit(
                hypothesis,
                prefixes,
                f"settings sims={settings.sims}, epochs={settings.epochs}, rounds="
                f"{settings.rounds} (its learning curves' prefixes: sims x epochs x "
                "(rounds + 2))",
            )
        except ScaiError as err:
            raise HypothesisError(
                f"{spec.path}: cell {' '.join(f'{a}={v}' for a, v in values)}: {err.one_line()}"
            ) from None
    return Cell(values, stream, settings, conditions)


def _check_norm_is_a_type(norm: str, hypothesis: Hypothesis) -> None:
    """The users' norm (``condition.policy``, one of the simulated users' types) must be a type
    of the assistant's hypothesis: every measure follows the assistant's belief in it."""
    if norm in hypothesis.policy_names:
        return
    from scai.models.policies import DEFAULT_POLICIES

    usable = [p.name for p in DEFAULT_POLICIES if p.name in hypothesis.policy_names]
    allowed = (
        f"allowed: {', '.join(usable)}"
        if usable
        else "give a hypothesis with a type named as one of the users' norms "
        f"({', '.join(p.name for p in DEFAULT_POLICIES)})"
    )
    raise HypothesisError(
        f"condition.policy: the users' norm {norm!r} is not a type of the hypothesis "
        f"{hypothesis.name!r} (its types: {', '.join(hypothesis.policy_names)}), and every "
        f"measure follows the assistant's belief in it; {allowed}"
    )


def _check_rationality_kept(spec: SweepSpec) -> None:
    """A sweep's assistant assumes the users' rationality (the base condition's 4.0 unless
    ``rationality`` is given) unless ``assistant_rationality`` is given: where the spec gives
    neither, a hypothesis whose own ``rationality`` differs would have it replaced in every
    cell without a word (a file's ``rationality = 1.0`` fitted at 4.0): refused, naming the
    settings that keep it."""
    if {"rationality", "assistant_rationality"} & {*spec.given, *spec.axes}:
        return
    name = spec.condition["hypothesis"]
    try:
        own = get_hypothesis(name).rationality
    except ScaiError as err:
        raise HypothesisError(f"{spec.path}: condition.hypothesis: {err.one_line()}") from None
    users = float(spec.condition["rationality"])
    if own != users:
        raise HypothesisError(
            f"{spec.path}: condition.hypothesis: hypothesis {get_hypothesis(name).name!r} has "
            f"rationality {own:g}, but a sweep's assistant assumes the users' rationality "
            f"({users:g}, condition.rationality's default), which would replace it in every "
            f"cell; give condition.assistant_rationality = {own:g} to keep it (or "
            "condition.rationality to set the users' too)"
        )


def _check_axes_act(spec: SweepSpec, hypothesis: Hypothesis) -> None:
    """An axis, a setting of ``[condition]`` or a measure the cell's hypothesis ignores would
    give the same numbers in every cell (or numbers that do not show the setting): a fixed
    stereotype strength where the hypothesis learns it or has no stereotype, a fixed lapse
    where it learns the lapse, an essential-goods shift (no sweep currency is essential), and,
    where no manner is tied to a type, tones' fidelity or a contrast of manners (slowdown,
    belief deficit)."""
    name = hypothesis.name
    set_in = {key: "condition" for key in spec.given} | {key: "axes" for key in spec.axes}

    def key_of(setting: str) -> str:
        return f"{set_in[setting]}.{setting}"

    if "stereotype_strength" in set_in:
        if hypothesis.stereotype_prior is not None:
            raise HypothesisError(
                f"{key_of('stereotype_strength')}: hypothesis {name!r} learns the strength "
                "(stereotype_prior): a fixed one would change nothing"
            )
        if not hypothesis.stereotype:
            raise HypothesisError(
                f"{key_of('stereotype_strength')}: hypothesis {name!r} has no stereotype: its "
                "strength would change nothing"
            )
    if "lapse" in set_in and hypothesis.lapse_prior is not None:
        raise HypothesisError(
            f"{key_of('lapse')}: hypothesis {name!r} learns the lapse (lapse_prior): a fixed "
            "one would change nothing"
        )
    if "essential_shift" in set_in:
        raise HypothesisError(
            f"{key_of('essential_shift')}: a sweep's users trade in the training currencies "
            f"({', '.join(TRAINING_CURRENCIES)}), none of them essential: the shift of "
            "essential goods would change nothing"
        )
    # Without a stereotype a user's manner says nothing of its type: how faithfully tones
    # show manners, and the contrast of a manner with neutral, change nothing. A cell of
    # strength 0 runs where the axis has a strength above 0 (the sweep shows the contrast
    # growing from nothing), not where 0 is its only value (one cell, or the same in all).
    couples = hypothesis.ties_manners_to_types or (
        bool(hypothesis.stereotype) and any(s > 0 for s in spec.axes.get("stereotype_strength", ()))
    )
    if "tone_fidelity" in set_in and not couples:
        raise HypothesisError(
            f"{key_of('tone_fidelity')}: hypothesis {name!r} ties no manner to a type (no "
            "stereotype, or its strength is 0): tones' fidelity would change nothing"
        )
    if spec.measure in CONTRASTS and not couples:
        raise HypothesisError(
            f"measure {spec.measure!r}: hypothesis {name!r} ties no manner to a type (no "
            "stereotype, or its strength is 0), so every cell's manner learns as fast as "
            'neutral: give a hypothesis with a stereotype, or measure = "interactions_to_95"'
        )


def _maybe(value: Value | None) -> float | None:
    return None if value is None else float(value)


def measure(cell: Cell, curves: list[pd.DataFrame], name: str) -> tuple[float, float, float]:
    """``(value, low, high)`` of measure ``name`` for one cell from its conditions' learning
    curves (in :attr:`Cell.conditions`' order): a 95% bootstrap interval whose random numbers
    come from the cell's seed and stream, so a cell's row never depends on the others or on
    where it was computed. A simulation that never reaches 95% counts at its last interaction
    + 1, as in :func:`scai.experiments.inconsistency.reach_table`."""
    settings = cell.settings
    rng = np.random.default_rng(condition_seed(settings.seed, f"measure: {cell.stream}"))
    total = settings.epochs * (settings.rounds + 2)
    first = interactions_to_reach(curves[0], 0.95).fillna(total + 1)
    if name == "slowdown":
        return slowdown(first, interactions_to_reach(curves[1], 0.95).fillna(total + 1), rng)
    if name == "belief_deficit":
        return belief_deficit(curves[0], curves[1], settings.rounds + 2, rng)
    if name == "interactions_to_95":
        values = first.sort_index().to_numpy(float)
        idx = rng.integers(0, len(values), size=(2000, len(values)))
        lo, hi = np.percentile(values[idx].mean(1), [2.5, 97.5])
        return float(values.mean()), float(lo), float(hi)
    raise ValueError(f"unknown measure {name!r}")


def never_reached(curves: list[pd.DataFrame], level: float = 0.95) -> int:
    """How many of a cell's simulations never reach ``level`` in one of its conditions'
    learning curves (a contrast's conditions share their simulations, paired): those
    :func:`measure` counts at their last interaction + 1. At most the cell's simulations."""
    censored: set = set()
    for curve in curves:
        reach = interactions_to_reach(curve, level)
        censored |= set(reach.index[reach.isna()])
    return len(censored)


def as_frame(cells: list[Cell]) -> pd.DataFrame:
    """The cells' axis values, one row per cell (the sweep table's first columns)."""
    return pd.DataFrame([dict(cell.values) for cell in cells])
