"""The TOML form of a hypothesis: the keys of a hypothesis file, reading a TOML file
(:func:`read_toml`), a hypothesis as a file's table and back (:func:`to_table`,
:func:`from_table`) and writing it (:func:`save_toml`). :data:`TEMPLATE_PATH` is a commented
template of every key.

``Hypothesis.to_dict``, ``from_dict`` and ``save`` are these; files are read by the one
loader, :func:`scai.models.hypothesis_files.load_hypothesis_file`.
"""

from __future__ import annotations

import numbers
import re
import sys
import tomllib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tomli_w

from scai.models.errors import (
    HypothesisError,
    HypothesisWarning,
    ScaiError,
    check_path,
    not_a_regular_file,
)
from scai.models.errors import show_value as _show
from scai.models.hypothesis_bounds import check_policy_count
from scai.models.hypothesis_warnings import tell_again, warn_inert_stereotype
from scai.models.language import MANNERS
from scai.models.policies import DEFAULT_POLICIES, PolicyType
from scai.models.writing import check_format_ending, write_atomic

if TYPE_CHECKING:
    from scai.models.hypothesis_spec import Hypothesis

_TOP_KEYS = {
    "name": str,
    "description": str,
    "rationality": float,
    "rationality_scale": float,
    "pi_concentration": (float, list),
    "stereotype_strength": float,
    "tone_fidelity": float,
    "reader_confusion": list,
    "policies": dict,
    "stereotype": dict,
    "currency": dict,
    "lapse": float,
    "lapse_prior": list,
    "stereotype_prior": list,
    "clone_prior": list,
}
_POLICY_KEYS = ("w", "alpha", "beta", "description", "responder", "norm")
#: The keys of a type's ``responder`` table: its parameters as a responder.
RESPONDER_KEYS = ("w", "alpha", "beta")
#: Group-level latents in (0, 1) with a Beta prior, by the hypothesis key of the prior.
BETA_PRIORS = ("lapse_prior", "stereotype_prior", "clone_prior")
_CURRENCY_KEYS = ("shared_scale", "currency_scale", "essential_shift")

#: A commented TOML template of every key, shipped with the package.
TEMPLATE_PATH = Path(__file__).with_name("hypothesis_template.toml")


def read_toml(
    path: str | Path, error: type[ScaiError] = HypothesisError, what: str = "hypothesis file"
) -> dict[str, Any]:
    """A TOML file's table; an ``error`` naming the file (a ``what``) if it cannot be read
    (missing, a folder, not UTF-8, not TOML, nested too deeply, a number of more digits than
    Python reads). A byte-order mark, which editors on Windows write and TOML does not allow,
    is skipped as in a CSV."""
    path = Path(path)
    if why := not_a_regular_file(path):
        raise error(f"{path}: {why}; give a {what} (TOML)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise error(
            f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}); "
            "TOML files must be UTF-8"
        ) from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError:  # a number of more digits than Python reads (4,300)
        raise error(
            f"{path}: a number of more than {sys.get_int_max_str_digits():,} digits, beyond any "
            "value a key allows"
        ) from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what}: {err.strerror or err}") from None


def _describe(key: str) -> str:
    return {
        "name": "a string",
        "description": "a string",
        "pi_concentration": "a number > 0 or a list of them, one per policy",
        "policies": "a table of policy tables",
        "stereotype": "a table of manner weights per policy",
        "currency": "a table with shared_scale, currency_scale, essential_shift",
        "lapse_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "stereotype_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "clone_prior": "two numbers [a, b] of a Beta(a, b) prior",
        "reader_confusion": f"{len(MANNERS)} rows of {len(MANNERS)} numbers in [0, 1], each "
        f"summing to 1 (P(reported | tone); rows and columns: {', '.join(MANNERS)})",
    }.get(key, "a number")


def to_table(hypothesis: Hypothesis) -> dict[str, Any]:
    """``hypothesis`` as the table of a hypothesis file (what :func:`from_table` reads)."""
    out = {
        "name": hypothesis.name,
        "description": hypothesis.description,
        "rationality": hypothesis.rationality,
        "rationality_scale": hypothesis.rationality_scale,
        "pi_concentration": list(hypothesis.pi_concentration),
        "stereotype_strength": hypothesis.stereotype_strength,
        "tone_fidelity": hypothesis.tone_fidelity,
        "policies": {p.name: _policy_table(p) for p in hypothesis.policies},
        "stereotype": {k: dict(v) for k, v in hypothesis.stereotype.items()},
        "currency": {
            "shared_scale": hypothesis.shared_scale,
            "currency_scale": hypothesis.currency_scale,
            "essential_shift": hypothesis.essential_shift,
        },
        "lapse": hypothesis.lapse,
        **{key: list(getattr(hypothesis, key)) for key in BETA_PRIORS if getattr(hypothesis, key)},
    }
    if hypothesis.reader_confusion is not None:
        out["reader_confusion"] = [list(row) for row in hypothesis.reader_confusion]
    return out


def save_toml(hypothesis: Hypothesis, path: str | Path) -> None:
    """Write ``hypothesis`` as a TOML file, atomically (:meth:`Hypothesis.save`, which says
    what a bad ``path`` raises)."""
    path = check_path(path, "Hypothesis.save", HypothesisError)
    check_format_ending(path, ".toml", "Hypothesis.save", HypothesisError)
    text = tomli_w.dumps(hypothesis.to_dict())
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def from_table(
    cls: type[Hypothesis], raw: dict[str, Any], source: str = "hypothesis"
) -> Hypothesis:
    """The hypothesis (a ``cls``) of a hypothesis file's table; every error a
    :class:`HypothesisError` naming the ``source`` and the key."""
    if not isinstance(raw, dict):
        raise HypothesisError(f"{source}: expected a table of settings, got {_show(raw)}")
    for key, value in raw.items():
        if key not in _TOP_KEYS:
            raise HypothesisError(f"{source}: unknown key {key!r}; allowed: {', '.join(_TOP_KEYS)}")
        expected = _TOP_KEYS[key]
        if expected is float:
            expected = (int, float)
        elif isinstance(expected, tuple) and float in expected:
            expected = (int, float, list)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise HypothesisError(
                f"{source}: key {key!r} has value {_show(value)}; expected {_describe(key)}"
            )
    kwargs: dict[str, Any] = {}
    for key in ("name", "description", "rationality", "rationality_scale"):
        if key in raw:
            kwargs[key] = raw[key]
    for key in ("stereotype_strength", "tone_fidelity", "lapse"):
        if key in raw:
            kwargs[key] = _number(raw[key], f"{source}: {key}")
    for key in BETA_PRIORS:
        if key in raw:
            kwargs[key] = tuple(_number(v, f"{source}: {key}[{i}]") for i, v in enumerate(raw[key]))
    if "reader_confusion" in raw:
        kwargs["reader_confusion"] = raw["reader_confusion"]
    if "policies" in raw:
        check_policy_count(len(raw["policies"]), f"{source}: policies")
        policies = []
        for pname, spec in raw["policies"].items():
            if not isinstance(spec, dict):
                raise HypothesisError(f"{source}: policies.{pname} must be a table")
            for k, v in spec.items():
                if k not in _POLICY_KEYS:
                    raise HypothesisError(
                        f"{source}: policies.{pname}: unknown key {k!r}; "
                        f"allowed: {', '.join(_POLICY_KEYS)}"
                    )
                if k == "description" and not isinstance(v, str):
                    raise HypothesisError(
                        f"{source}: policies.{pname}.description has value {_show(v)}; "
                        "expected a string"
                    )
            spec = dict(spec)
            # (a list is no key: PolicyType below names the bad norm)
            norm = spec.get("norm")
            base = raw["policies"].get(norm) if isinstance(norm, str) else None
            if isinstance(base, dict):  # a role variant proposes like its norm: by default
                for key in ("w", "alpha", "beta"):  # the norm's proposer parameters
                    if key not in spec and key in base:
                        spec[key] = base[key]
            if "responder" in spec:
                spec["responder"] = _responder(spec["responder"], f"{source}: policies.{pname}")
            try:
                policies.append(PolicyType(name=pname, **spec))
            except (TypeError, ValueError) as err:
                raise HypothesisError(f"{source}: policies.{pname}: {err}") from None
        kwargs["policies"] = tuple(policies)
    n_policies = len(kwargs.get("policies", DEFAULT_POLICIES))
    conc = raw.get("pi_concentration", 0.5)
    kwargs["pi_concentration"] = per_policy(
        [_number(c, f"{source}: pi_concentration[{i}]") for i, c in enumerate(conc)]
        if isinstance(conc, list)
        else _number(conc, f"{source}: pi_concentration"),
        n_policies,
    )
    if "stereotype" in raw:
        stereotype = {}
        for policy, row in raw["stereotype"].items():
            if not isinstance(row, dict):
                raise HypothesisError(
                    f"{source}: stereotype.{policy} has value {_show(row)}; expected a "
                    "table of manner weights, e.g. [stereotype.selfish] rude = 1.0"
                )
            stereotype[policy] = {
                m: _number(w, f"{source}: stereotype.{policy}.{m}") for m, w in row.items()
            }
        kwargs["stereotype"] = stereotype
    for k, v in raw.get("currency", {}).items():
        if k not in _CURRENCY_KEYS:
            raise HypothesisError(
                f"{source}: currency: unknown key {k!r}; allowed: {', '.join(_CURRENCY_KEYS)}"
            )
        kwargs[k] = _number(v, f"{source}: currency.{k}")
    with warnings.catch_warnings(record=True) as told:  # to name the source in them
        warnings.simplefilter("always", HypothesisWarning)
        try:
            hypothesis = cls(**kwargs)
        except HypothesisError as err:
            # the constructor names its argument; the file's key is in [currency]
            text = re.sub(rf"^({'|'.join(_CURRENCY_KEYS)}):", r"currency.\1:", str(err))
            raise HypothesisError(f"{source}: {text}") from None
    tell_again(told, source)
    warn_inert_stereotype(raw, hypothesis, source)
    return hypothesis


def _policy_table(p: PolicyType) -> dict[str, Any]:
    out: dict[str, Any] = {"w": p.w, "alpha": p.alpha, "beta": p.beta, "description": p.description}
    if p.responder is not None:
        out["responder"] = dict(zip(RESPONDER_KEYS, p.responder, strict=True))
    if p.norm:
        out["norm"] = p.norm
    return out


def _responder(table: Any, where: str) -> tuple[float, float, float]:
    """A ``responder = {w = ..., alpha = ..., beta = ...}`` table; missing keys are 0 (not the
    norm's: a responder is written whole, as the template says)."""
    if not isinstance(table, dict):
        raise HypothesisError(
            f"{where}.responder has value {_show(table)}; expected a table such as "
            "{ alpha = 0.5 } (keys w, alpha, beta)"
        )
    for key in table:
        if key not in RESPONDER_KEYS:
            raise HypothesisError(
                f"{where}.responder: unknown key {key!r}; allowed: {', '.join(RESPONDER_KEYS)}"
            )
    return tuple(_number(table.get(k, 0.0), f"{where}.responder.{k}") for k in RESPONDER_KEYS)


def per_policy(concentration: Any, n_policies: int) -> Any:
    """``pi_concentration`` as every hypothesis holds it, a tuple of one value per policy: a
    list as a tuple, and one number as every policy's (a file's ``pi_concentration = 0.5``,
    ``with_(pi_concentration=0.5)``). Anything else is returned as it is, for the hypothesis's
    own checks to name."""
    if isinstance(concentration, list):
        return tuple(concentration)
    if isinstance(concentration, numbers.Real) and not isinstance(concentration, bool | np.bool_):
        if isinstance(concentration, numbers.Integral):  # a huge int: out of range, not inf
            concentration = min(concentration, 10**300)
        return (float(concentration),) * n_policies
    return concentration


def _number(value: Any, where: str) -> float:
    """``value`` as a float, or a :class:`HypothesisError` naming ``where`` it was found."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HypothesisError(f"{where} has value {_show(value)}; expected a number")
    try:
        return float(value)
    except OverflowError:
        raise HypothesisError(f"{where} has value {_show(value)}; too large a number") from None
