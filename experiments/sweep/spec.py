"""A sweep's specification: a TOML file naming the base condition, the axes to vary and the
measure, read and checked completely before any work (:func:`load_spec`).

::

    base = "inconsistency"     # the experiment whose sweep cell is the base condition
    measure = "slowdown"       # what each cell measures: see MEASURES

    [settings]                 # the protocol, as scai run's options (defaults: scai run's)
    sims = 20
    epochs = 5
    seed = 0

    [condition]                # the base condition (defaults: the experiment's sweep cell)
    policy = "altruistic"      # the users' one norm
    manner = "rude"            # their manner, contrasted with neutral users by the measure
    hypothesis = "stereotyped" # the assistant's prior: a preset or a TOML file (beside the spec)
    users = 10

    [axes]                     # every combination of these values is one cell
    stereotype_strength = [0.0, 0.5, 0.8, 0.95]
    rationality = [0.5, 1.0, 2.0, 4.0]

    [figure]                   # the heat-map's axes (default: the first two axes)
    x = "rationality"
    y = "stereotype_strength"

A bad file is one :class:`~scai.models.errors.RunError` naming the file, the key, the value
and what is allowed.
"""

from __future__ import annotations

import collections
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scai.experiments.common import RUN_LIMITS
from scai.experiments.conditions import HYPOTHESIS_SETTINGS, SCHEDULES
from scai.models.errors import MAX_SEED, RunError
from scai.models.errors import show_value as _show
from scai.models.hypotheses import BOUNDS, PRESETS, is_hypothesis_file, read_toml
from scai.models.language import MANNERS

#: The experiments whose sweep cell can be a base condition, with that cell's settings.
BASES: dict[str, dict[str, Any]] = {
    "inconsistency": {
        "policy": "altruistic",
        "manner": "rude",
        "hypothesis": "stereotyped",
        "users": 10,
        "rationality": 4.0,
        "stereotype_strength": None,  # None: the hypothesis's own
        "assistant_rationality": "users",
    },
}

#: What a cell can measure (each from the learning curves of the cell's conditions).
MEASURES: dict[str, str] = {
    "slowdown": "ratio of mean interactions to reach 95% on the true norm, users of the "
    "condition's manner / neutral users (paired bootstrap 95% interval)",
    "belief_deficit": "mean loss of belief in the true norm over the first epoch, neutral "
    "users minus users of the condition's manner (paired bootstrap 95% interval)",
    "interactions_to_95": "mean interactions to reach 95% on the true norm, users of the "
    "condition's manner (bootstrap 95% interval)",
}
#: Measures that contrast the condition's manner with neutral users.
CONTRASTS = ("slowdown", "belief_deficit")
#: Measures that count a simulation that never reaches 95% at its last interaction + 1.
REACH_MEASURES = ("slowdown", "interactions_to_95")

TOP_KEYS = ("base", "measure", "settings", "condition", "axes", "figure")
SETTING_KEYS = ("sims", "epochs", "seed", "schedule")
FIGURE_KEYS = ("x", "y")
#: Number keys of ``[condition]`` and axes: ``key: (low, high, whole number?)``.
NUMBERS: dict[str, tuple[float, float, bool]] = {
    "users": (3, 1000, True),
    "rationality": (*BOUNDS["rationality"], False),
    "stereotype_strength": (*BOUNDS["stereotype_strength"], False),
    "assistant_rationality": (*BOUNDS["rationality"], False),
    **{key: (*BOUNDS[key], False) for key in HYPOTHESIS_SETTINGS},
}
CONDITION_KEYS = ("policy", "manner", "hypothesis", *NUMBERS)
#: What may vary: the condition's numbers and the settings' seed.
AXES = (*NUMBERS, "seed")
#: The most cells one sweep may have.
MAX_CELLS = 100_000
#: What each axis is, for ``--help`` and errors.
AXIS_MEANING = {
    "users": "group size",
    "rationality": "the users' rationality (the assistant assumes the same unless "
    "assistant_rationality is given)",
    "stereotype_strength": "the assistant's stereotype strength",
    "assistant_rationality": "the rationality the assistant assumes",
    "seed": "the run's seed",
    **{key: f"the assistant's hypothesis's {key}" for key in HYPOTHESIS_SETTINGS},
}

Value = int | float


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep specification (see the module docstring)."""

    path: Path
    base: str
    measure: str
    settings: dict[str, Any]
    condition: dict[str, Any]
    axes: dict[str, tuple[Value, ...]]
    figure: tuple[str, str | None] = field(default=("", None))
    given: tuple[str, ...] = ()  # the [condition] keys the file sets (the rest: the base's)

    @property
    def cells(self) -> int:
        return math.prod(len(values) for values in self.axes.values())


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; a :class:`RunError` names the file, key, value and what is
    allowed."""
    path = Path(path)
    raw = read_toml(path, RunError, "sweep file")
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], path: Path) -> SweepSpec:
    """Check a sweep file's table (``path``: where it came from, for messages and for a
    hypothesis file named relative to it)."""
    where = str(path)
    _known(raw, TOP_KEYS, where, "")
    base = _choice(raw.get("base", "inconsistency"), BASES, where, "base")
    measure = _choice(raw.get("measure", "slowdown"), MEASURES, where, "measure")

    settings_raw = _table(raw, "settings", where)
    _known(settings_raw, SETTING_KEYS, where, "settings.")
    settings: dict[str, Any] = {}
    for key in ("sims", "epochs"):
        if key in settings_raw:
            low, high = RUN_LIMITS[key]
            settings[key] = _number(settings_raw[key], where, f"settings.{key}", low, high, True)
    if "seed" in settings_raw:
        settings["seed"] = _number(settings_raw["seed"], where, "settings.seed", 0, MAX_SEED, True)
    if "schedule" in settings_raw:
        settings["schedule"] = _choice(
            settings_raw["schedule"], SCHEDULES, where, "settings.schedule"
        )

    condition_raw = _table(raw, "condition", where)
    _known(condition_raw, CONDITION_KEYS, where, "condition.")
    condition = dict(BASES[base])
    for key, value in condition_raw.items():
        condition[key] = _condition_value(key, value, where, path)
    if measure in CONTRASTS and condition["manner"] == "neutral":
        raise RunError(
            f"{where}: condition.manner: 'neutral' cannot be contrasted with neutral users "
            f"(measure {measure!r}); allowed: {', '.join(m for m in MANNERS if m != 'neutral')}"
        )

    axes_raw = _table(raw, "axes", where)
    _known(axes_raw, AXES, where, "axes.")
    if not axes_raw:
        raise RunError(
            f"{where}: [axes] is empty; give at least one axis to vary, one of: {', '.join(AXES)}"
        )
    axes = {key: _axis(key, values, where) for key, values in axes_raw.items()}
    for key in axes:
        if key in condition_raw or (key == "seed" and "seed" in settings_raw):
            table = "settings" if key == "seed" else "condition"
            raise RunError(
                f"{where}: {key} is both in [{table}] (one value) and in [axes] (values to "
                "vary); give it in one of them"
            )
    cells = math.prod(len(v) for v in axes.values())
    if cells > MAX_CELLS:
        raise RunError(
            f"{where}: [axes]: {cells:,} cells; allowed: at most {MAX_CELLS:,} in one sweep"
        )
    figure = _figure(_table(raw, "figure", where), list(axes), where)
    return SweepSpec(path, base, measure, settings, condition, axes, figure, tuple(condition_raw))


# -- checks -----------------------------------------------------------------------------------
def _known(table: dict[str, Any], allowed: tuple[str, ...], where: str, prefix: str) -> None:
    for key in table:
        if key not in allowed:
            # shown as a value: a quoted TOML key may hold a newline or a terminal's escape
            shown = _show(f"{prefix}{key}")
            raise RunError(f"{where}: unknown key {shown}; allowed: {', '.join(allowed)}")


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise RunError(f"{where}: {key}: must be a table ([{key}]), got {_show(value)}")
    return value


def _choice(value: Any, allowed, where: str, key: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise RunError(
            f"{where}: {key}: unknown value {_show(value)}; allowed: {', '.join(allowed)}"
        )
    return value


def _number(value: Any, where: str, key: str, low: float, high: float, whole: bool) -> Value:
    """A number in ``low..high`` (a whole number if ``whole``), else a :class:`RunError`."""
    kind = "a whole number" if whole else "a number"
    allowed = (
        f"{kind} from {int(low):,} to {int(high):,}"
        if whole
        else f"{kind} from {low:g} to {high:g}"
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RunError(f"{where}: {key}: {_show(value)} is not a number; allowed: {allowed}")
    if isinstance(value, numbers.Integral) and not low <= value <= high:  # (beyond a float)
        raise RunError(f"{where}: {key}: {_show(value)} is out of range; allowed: {allowed}")
    if not math.isfinite(value) or (whole and value != int(value)):
        raise RunError(f"{where}: {key}: {_show(value)} is not {kind}; allowed: {allowed}")
    if not low <= value <= high:
        raise RunError(f"{where}: {key}: {_show(value)} is out of range; allowed: {allowed}")
    return int(value) if whole else float(value) + 0.0  # -0.0 is 0.0 (one cell, one stream)


def _condition_value(key: str, value: Any, where: str, path: Path) -> Any:
    name = f"condition.{key}"
    if key == "policy":
        from scai.models.policies import DEFAULT_POLICIES

        return _choice(value, [p.name for p in DEFAULT_POLICIES], where, name)
    if key == "manner":
        return _choice(value, MANNERS, where, name)
    if key == "hypothesis":
        if not isinstance(value, str) or not (value in PRESETS or is_hypothesis_file(value)):
            raise RunError(
                f"{where}: {name}: unknown hypothesis {_show(value)}; allowed: "
                f"{', '.join(PRESETS)} or a .toml file (relative to the sweep file)"
            )
        if value in PRESETS:
            return value
        file = path.parent / value
        if not file.is_file():
            raise RunError(f"{where}: {name}: {file} is not a file")
        return str(file.resolve())
    low, high, whole = NUMBERS[key]
    if key == "assistant_rationality" and isinstance(value, str):
        if value == "users":
            return value
        raise RunError(
            f"{where}: {name}: {_show(value)} is not allowed; allowed: 'users' (the users' "
            f"rationality) or a number from {low:g} to {high:g}"
        )
    return _number(value, where, name, low, high, whole)


def _axis(key: str, values: Any, where: str) -> tuple[Value, ...]:
    name = f"axes.{key}"
    if not isinstance(values, list):
        raise RunError(
            f"{where}: {name}: must be a list of values, got {_show(values)}; e.g. {key} = [1, 2]"
        )
    if not values:
        raise RunError(f"{where}: {name}: is empty; give at least one value")
    low, high, whole = NUMBERS.get(key, (0, MAX_SEED, True))
    checked = tuple(_number(v, where, name, low, high, whole) for v in values)
    repeated = sorted(v for v, n in collections.Counter(checked).items() if n > 1)
    if repeated:
        raise RunError(f"{where}: {name}: {_show(repeated[0])} is given twice; give each once")
    return checked


def _figure(raw: dict[str, Any], axes: list[str], where: str) -> tuple[str, str | None]:
    _known(raw, FIGURE_KEYS, where, "figure.")
    preferred = [*axes[1:2], *axes[:1], *axes[2:]]  # x: the second axis, unless y is it
    default_x = next((a for a in preferred if a != raw.get("y")), axes[0])
    x = raw.get("x", default_x)
    others = [a for a in axes if a != x]
    y = raw.get("y", others[0] if others else None)
    for key, value in (("x", x), ("y", y)):
        if value is not None and value not in axes:
            raise RunError(
                f"{where}: figure.{key}: {_show(value)} is not an axis of this sweep; "
                f"allowed: {', '.join(axes)}"
            )
    if x == y and len(axes) == 1 and "x" not in raw:
        raise RunError(
            f"{where}: figure.y: {x!r} is the sweep's only axis, which the heat-map puts on x; "
            "leave figure.y out"
        )
    if x == y:
        raise RunError(f"{where}: figure: x and y are both {x!r}; give two different axes")
    return x, y
