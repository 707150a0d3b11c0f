"""A :class:`~scai.inference.posterior.Posterior` as ArviZ data and NetCDF, and back.

The groups follow :mod:`scai.inference.arviz_schema`:

* ``posterior``: ``pi (chain, draw, sim, policy)`` and, where latent, ``lam (chain, draw,
  sim)``, ``shift_shared (chain, draw, sim)``, ``shift (chain, draw, sim, currency)``, and the
  bounded sites ``lapse``, ``strength``, ``clone (chain, draw, sim)``;
* ``sample_stats``: ``lp``, the log joint density of each draw (exact, SVI), or MCMC's: the
  sampler's log density in its unconstrained coordinates, Jacobian included, as ArviZ's
  converters of other samplers record it (``Posterior.log_joint()`` gives the log joint of
  any engine's draws); and NUTS's statistics;
* ``log_likelihood``: ``user_actions (chain, draw, user)``, each user's log-likelihood with its
  policy and manner summed out (``az.loo``, ``az.compare``);
* ``posterior_predictive``: per draw, a replicate of every user action from the model run
  forward (:mod:`scai.inference.replicates`): ``offer``, ``accepted``, ``proposer_tone``,
  ``responder_tone (chain, draw, interaction)`` and ``user_actions (chain, draw, user)``;
* ``observed_data``: the same variables observed; ``constant_data``: who played whom, when,
  with which pot and currency (and any text), per ``interaction``;
* ``user_posterior``: ``policy_prob (user, policy)``, ``manner_prob (user, manner)`` and, for
  the exact engine, the grid's ``pi_mean (sim, policy)``.

Users are labelled ``sim:user``. :func:`load_posterior` rebuilds the :class:`Posterior` from the
file (its hypothesis is stored as TOML, its data layout as JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import pandas as pd
import torch

from scai.inference.arviz_schema import (
    FIT_PROVENANCE,
    Group,
    InferenceParts,
    PosteriorFileError,
    build_inference_data,
    provenance,
    read_netcdf,
    read_plain_groups,
    write_netcdf,
)
from scai.inference.diagnostics import SITE_DIMS, dim_sizes, in_site_order
from scai.inference.errors import EngineError, no_table
from scai.inference.posterior import GRID_POINT_STATS
from scai.inference.replicates import ACTION_VARIABLES, posterior_replicates
from scai.models.data import INTERACTION_COLUMNS, TONE_COLUMNS, tones_heard, validate_frame
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    HypothesisError,
    RunError,
    StereotypeStrengthWarning,
    check_count,
)
from scai.models.game import CURRENCIES, register_currency
from scai.models.hypotheses import Hypothesis
from scai.models.language import MANNERS, TONES
from scai.models.layout import GroupData
from scai.models.memory import check_memory
from scai.models.prior import SITES, GroupPrior

REQUIRED_GROUPS = (
    "posterior",
    "log_likelihood",
    "observed_data",
    "constant_data",
    "user_posterior",
)
#: The groups a :class:`Posterior` is rebuilt from (not the log-likelihood and the posterior
#: predictive, which are most of a file).
LOADED_GROUPS = ("posterior", "sample_stats", "observed_data", "constant_data", "user_posterior")
#: The variables a :class:`Posterior` cannot be rebuilt without, by group.
LOADED_VARIABLES = {
    "posterior": ("pi",),
    "observed_data": ACTION_VARIABLES,
    "constant_data": tuple(c for c in INTERACTION_COLUMNS if c not in ACTION_VARIABLES),
    "user_posterior": ("policy_prob", "manner_prob"),
}
#: The dims of the ``user_posterior`` group's variables.
USER_DIMS = {
    "policy_prob": ("user", "policy"),
    "manner_prob": ("user", "manner"),
    "pi_mean": ("sim", "policy"),
}


def user_labels(data: GroupData) -> list[str]:
    """The ``user`` coordinate: ``sim:user`` for each real user, simulation by simulation.
    Where two labels would read the same (ids holding ``:``: group ``a:b``'s user ``c`` and
    group ``a``'s user ``b:c``), every label quotes its two ids instead (``'a:b':'c'``), so that
    each user has one label and ``.sel(user=...)`` one row."""
    pairs = [(sim, user) for s, sim in enumerate(data.sim_ids) for user in data.user_ids[s]]
    labels = [f"{sim}:{user}" for sim, user in pairs]
    if len(set(labels)) < len(labels):
        labels = [f"{sim!r}:{user!r}" for sim, user in pairs]
    return labels


#: The dims whose coordinates name things (groups, types, currencies, users, manners): a
#: file's labels of them must be the ones its attributes give, in that order.
LABELLED_DIMS = ("sim", "policy", "currency", "user", "manner")


def labelled_coords(data: GroupData, policy_names) -> dict[str, list]:
    """The labels of :data:`LABELLED_DIMS` for a posterior of ``data`` whose types are
    ``policy_names``, in the order of its arrays."""
    return {
        "sim": list(data.sim_ids),
        "policy": list(policy_names),
        "currency": list(data.currencies),
        "user": user_labels(data),
        "manner": list(MANNERS),
    }


def data_sha256(table: pd.DataFrame) -> str:
    """SHA-256 of the interaction table as scai writes it in CSV (validated, no index): the
    games a posterior came from, however they were stored (a gzipped file, a DataFrame)."""
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()


def draws_description(posterior) -> str:
    """What the draws are, so that ``az.summary`` is read right."""
    if posterior.engine == "mcmc":
        return "NUTS Markov chains (r_hat and ESS apply)"
    if posterior.engine == "exact":
        return (
            "independent draws from the exact engine's lattice posterior, one chain "
            "(r_hat is undefined and the draws are i.i.d.: ESS is their number)"
        )
    if posterior.settings.get("correction") == "importance":
        return (
            "independent draws resampled from PSIS-weighted importance draws around the SVI "
            "guide, one chain (i.i.d. given the weights; some repeat, and az.ess counts each "
            "repeat: the effective sample size is at most diagnostics.importance.ess, per sim)"
        )
    return "independent draws from the SVI guide, one chain (i.i.d.)"


#: What the file's variables hold, in its ``variables`` attribute (ArviZ keeps no units).
USER_LOGLIK = "log_likelihood.user_actions"
VARIABLE_NOTES = {
    USER_LOGLIK: "log p(the user's offers, decisions and tones | the draw), "
    "its policy and manner summed out",
    "observed_data.user_actions": "the units the user offered plus the number of offers it "
    "accepted (a summary statistic for az.loo_pit and az.plot_ppc; the same in "
    "posterior_predictive)",
    "proposer_tone, responder_tone": "index in (" + ", ".join(TONES) + "), -1 where none heard",
    "offer": "units offered to the responder",
    "accepted": "1 accepted, 0 rejected",
}
#: ``log_likelihood.user_actions``'s note where users may copy a prototype (clones).
CLONE_USER_LOGLIK = (
    "log p(the user's offers, decisions and tones | the draw, the other users' data): the "
    "group's log-likelihood minus the group's without the user (users sharing a prototype are "
    "not independent given the draw), policies and manners summed out"
)


def posterior_parts(
    posterior, max_memory: int | None = None, saving: bool = False
) -> InferenceParts:
    """The posterior as :class:`InferenceParts` (module docstring). An :class:`EngineError`,
    before any is built, where its draws' rows would not fit in memory (``max_memory`` bytes,
    by default most of the available memory: :data:`~scai.inference.fit.DRAWS_SHARE`).
    A posterior loaded from a file keeps that fit's provenance; ``saving`` it again adds when
    and by what command (``resaved``, ``resaved_command``)."""
    from scai.inference.fit import DRAWS_SHARE, arviz_bytes

    if posterior.table is None:
        raise no_table("to_arviz and save")
    data = posterior.data
    table = posterior.table.reset_index(drop=True)
    draws = posterior.n_chains * posterior.n_draws

    def too_large(text: str) -> EngineError:
        return EngineError(
            f"to_arviz: {draws:,} draws of {len(table):,} rows (each row's predictive and "
            f"log-likelihood per draw) {text}; fit with fewer draws or raise the limit "
            "(max_memory=, --max-memory)"
        )

    if max_memory is not None:  # as fit checks it
        check_count("max_memory", max_memory, 1, error=EngineError)
    need = arviz_bytes(draws, len(table), math.prod(data.shape))
    check_memory(need, too_large, max_memory, DRAWS_SHARE)
    coords = {
        **labelled_coords(data, posterior.policy_names),
        "interaction": np.arange(len(table)),
    }
    per_row = ["interaction"]
    dims = {
        **{site: list(names) for site, names in SITE_DIMS.items()},
        **{stat: ["sim"] for stat in GRID_POINT_STATS.values()},
        "user_actions": ["user"],
        **{name: per_row for name in ACTION_VARIABLES},
    }
    constant = {}
    for column in table.columns:
        if column in ACTION_VARIABLES:
            continue
        values = table[column].to_numpy()
        constant[column] = values.astype(str) if values.dtype == object else values
        dims[column] = per_row
    s_idx, u_idx = torch.nonzero(data.user_mask, as_tuple=True)
    log_lik = posterior.pointwise_loglik()[..., s_idx, u_idx].double().numpy()
    replicates = posterior_replicates(posterior, posterior.seed + 1)
    if "lp" not in posterior.sample_stats:  # computed once, when first asked for
        posterior.sample_stats["lp"] = posterior.log_joint().numpy()
    user_variables = {
        "policy_prob": (USER_DIMS["policy_prob"], _users(posterior.policy_probs, s_idx, u_idx)),
        "manner_prob": (USER_DIMS["manner_prob"], _users(posterior.manner_probs, s_idx, u_idx)),
    }
    if posterior.pi_mean_exact is not None:
        pi_mean = posterior.pi_mean_exact.double().numpy()
        user_variables["pi_mean"] = (USER_DIMS["pi_mean"], pi_mean)
    user_group = Group(user_variables, coords)
    attrs = provenance(
        seed=posterior.seed,
        engine=posterior.engine,
        draws=draws_description(posterior),
        data_sha256=data_sha256(table),
        settings=posterior.settings,
        diagnostics=posterior.diagnostics,
    )
    if posterior.provenance:  # loaded from a file: the fit's provenance (and this copy's)
        if saving:
            attrs.update(resaved=attrs["created"], resaved_command=attrs["command"])
        attrs.update(posterior.provenance)
    import tomli_w

    attrs["hypothesis_toml"] = tomli_w.dumps(posterior.hypothesis.to_dict())
    attrs["layout"] = json.dumps(
        {
            "sim_ids": data.sim_ids,
            "user_ids": data.user_ids,
            "currencies": data.currencies,
            "essential": data.essential_flags,
            # how a pot of each is counted (a currency of one's own registered on reading:
            # with the unit it was registered with, not its name)
            "units": [CURRENCIES[c].unit if c in CURRENCIES else c for c in data.currencies],
        }
    )
    notes = dict(VARIABLE_NOTES)
    if posterior.hypothesis.clones:  # users share a prototype: not independent given the draw
        notes[USER_LOGLIK] = CLONE_USER_LOGLIK
    attrs["variables"] = json.dumps(notes)
    # The tones the data held: two fits of the same games with and without tones score other
    # data, and az.compare would rank them (by ~1,100 nats on one group) all the same.
    attrs["tones_heard"] = str(tones_heard(table))
    return InferenceParts(
        posterior={
            site: posterior.draws[site].detach().double().numpy()
            for site in in_site_order(posterior.draws)
        },
        prior=prior_draws(posterior),
        log_likelihood={"user_actions": log_lik},
        posterior_predictive=replicates.replicated,
        observed_data=replicates.observed,
        constant_data=constant,
        sample_stats=dict(posterior.sample_stats),
        dims=dims,
        coords=coords,
        attrs=attrs,
        extra_groups={"user_posterior": user_group},
    )


def prior_draws(posterior) -> dict[str, np.ndarray]:
    """As many draws of the hypothesis's prior as the posterior has, of each of its sites and
    shape (``[chains, draws, sim, ...]``): the file's ``prior`` group, for ArviZ's prior and
    posterior side by side (``az.plot_dist_comparison``). Seeded by the fit's seed (its
    replicates take ``seed + 1``)."""
    shape = (posterior.n_chains, posterior.n_draws, posterior.data.shape[0])
    generator = torch.Generator().manual_seed(posterior.seed + 2)
    drawn = GroupPrior(posterior.hypothesis).sample(shape, posterior.data.essential, generator)
    return {site: drawn[site].double().numpy() for site in in_site_order(posterior.draws)}


def _users(value: torch.Tensor, s_idx: torch.Tensor, u_idx: torch.Tensor) -> np.ndarray:
    return value[s_idx, u_idx].detach().double().numpy()


def to_inference_data(posterior, max_memory: int | None = None):
    return build_inference_data(posterior_parts(posterior, max_memory))


def save_posterior(posterior, path, max_memory: int | None = None) -> None:
    """Write ``posterior.to_arviz()`` to NetCDF atomically (temporary file, then rename),
    without building it (:func:`~scai.inference.arviz_schema.write_netcdf`)."""
    write_netcdf(posterior_parts(posterior, max_memory, saving=True), path)


def load_posterior(path):
    """Rebuild a :class:`Posterior` from a file written by :func:`save_posterior`: its groups
    :data:`LOADED_GROUPS` read straight from HDF5 (:func:`read_plain_groups`), or by ArviZ for
    a file that needs decoding (or is not scai's: :func:`read_netcdf` names the problem).
    A file that lacks what the :class:`Posterior` is built from (:data:`LOADED_VARIABLES`,
    the ``hypothesis_toml`` and ``layout`` attributes), or whose attributes disagree with its
    arrays (another hypothesis's number of policies, another layout's users), is a
    :class:`PosteriorFileError` naming the file, the attribute or variable, and what fits.
    A currency the file flags and the session lacks is registered (a file refused: none)."""
    groups, attrs, labels = _read_groups(path)
    if attrs.get("scai_experiment") == "human-data":  # scai's, but of another model
        raise PosteriorFileError(
            f"{path}: a posterior of the human-data experiment's responder model "
            f"({attrs.get('model', 'unknown')!r}); Posterior.load reads the posteriors of the "
            "social-contract model (scai fit, scai run): read this one with arviz.from_netcdf"
        )
    for group, names in LOADED_VARIABLES.items():
        absent = [name for name in names if name not in groups[group]]
        if absent:
            raise PosteriorFileError(
                f"{path}: group {group} lacks variable(s) {', '.join(absent)}; a scai file's "
                f"{group} has {', '.join(names)}"
            )
    _check_numbers(path, groups)
    hypothesis, layout = _hypothesis(path, attrs), _layout(path, attrs)
    added = _register_currencies(path, layout)
    try:
        return _posterior_of(path, groups, attrs, labels, hypothesis, layout)
    except BaseException:
        for name in added:  # a file refused leaves the registry as it found it
            CURRENCIES.pop(name, None)
        raise


def _posterior_of(path, groups: dict, attrs: dict, labels: dict, hypothesis, layout: dict):
    """The :class:`Posterior` of a file's checked groups, attributes, hypothesis and layout
    (:func:`load_posterior`), its currencies registered; a :class:`PosteriorFileError` where
    the arrays disagree with the attributes."""
    from scai.inference.posterior import Posterior, on_simplex

    engine = _engine(path, attrs)
    settings = _settings(path, attrs, engine)
    table = _valid_table(path, _table(path, groups["constant_data"], groups["observed_data"]))
    _check_same_games(path, attrs, table)
    unknown = sorted(set(table["currency"]) - set(layout["currencies"]))
    if unknown:
        raise PosteriorFileError(
            f"{path}: currency {unknown[0]!r} of the table is not in attribute layout's "
            f"currencies {layout['currencies']}"
        )
    data = GroupData.from_table(
        table,
        users=dict(zip(layout["sim_ids"], layout["user_ids"], strict=True)),
        currencies=layout["currencies"],
    )
    dtype = torch.get_default_dtype()
    draws = {
        k: torch.as_tensor(groups["posterior"][k], dtype=dtype)
        for k in SITES
        if k in groups["posterior"]
    }
    user_group = groups["user_posterior"]
    _check_shapes(path, hypothesis, data, draws, user_group)
    _check_labels(path, labels, labelled_coords(data, hypothesis.policy_names))
    if not on_simplex(draws["pi"]):
        raise PosteriorFileError(
            f"{path}: posterior.pi is not on the simplex; allowed: finite draws >= 0 summing to 1"
        )
    S, U, _ = data.shape
    s_idx, u_idx = torch.nonzero(data.user_mask, as_tuple=True)
    policy = torch.zeros(S, U, len(hypothesis.policies), dtype=dtype)
    policy[s_idx, u_idx] = torch.as_tensor(user_group["policy_prob"], dtype=dtype)
    manner = torch.zeros(S, U, len(MANNERS), dtype=dtype)
    manner[s_idx, u_idx] = torch.as_tensor(user_group["manner_prob"], dtype=dtype)
    pi_mean = (
        torch.as_tensor(user_group["pi_mean"], dtype=dtype) if "pi_mean" in user_group else None
    )
    posterior = Posterior(
        engine=engine,
        hypothesis=hypothesis,
        table=table,
        data=data,
        draws=draws,
        policy_probs=policy,
        manner_probs=manner,
        sample_stats=dict(groups.get("sample_stats", {})),  # lp is recomputed when absent
        diagnostics=json.loads(attrs["diagnostics"]),
        settings=settings,
        seed=_seed(path, attrs),
        pi_mean_exact=pi_mean,
        provenance={key: str(attrs[key]) for key in FIT_PROVENANCE if key in attrs},
    )
    _score_at_grid_points(path, posterior)
    return posterior


def _check_same_games(path, attrs: dict, table: pd.DataFrame) -> None:
    """The games read from the file are the ones its draws were fitted to: their
    :func:`data_sha256` is the ``data_sha256`` attribute written with them. A file whose
    observed or constant data were cut or edited afterwards (``idata.sel(interaction=...)``,
    a changed offer) loaded as a posterior of the games it holds, and an update then fitted
    the new games to draws of other ones."""
    stored = attrs.get("data_sha256")
    if stored is not None and data_sha256(table) != str(stored):
        raise PosteriorFileError(
            f"{path}: its games are not the ones its draws were fitted to (their SHA-256 is "
            f"not the file's data_sha256 {str(stored)[:12]}...): observed_data or "
            "constant_data were cut or changed after the fit; fit the games again, or select "
            "draws or chains only (those keep the games)"
        )


def _score_at_grid_points(path, posterior) -> None:
    """Where the file keeps the exact engine's grid points of a lapse or strength drawn within
    its cells (:data:`~scai.inference.posterior.GRID_POINT_STATS`), the loaded posterior's
    :meth:`user_loglik` scores them there, as the saved one did (its type weights differed by
    up to 0.6% per draw), and its ``draws_loglik`` at the values drawn."""
    stats = posterior.sample_stats
    points = {}
    for site, stat in GRID_POINT_STATS.items():
        if stat not in stats:
            continue
        value = np.asarray(stats[stat])
        expected = (posterior.n_chains, posterior.n_draws, posterior.data.shape[0])
        if site not in posterior.draws or value.shape != expected or not np.isfinite(value).all():
            raise PosteriorFileError(
                f"{path}: sample_stats.{stat} is {value.shape} for a posterior of "
                f"{'no' if site not in posterior.draws else 'a'} latent {site}; expected "
                f"finite values [chains, draws, sim] {list(expected)} where {site} is latent"
            )
        dtype = torch.get_default_dtype()  # as the draws (the file keeps float64)
        points[site] = torch.as_tensor(value.reshape(-1, expected[-1]), dtype=dtype)
    if points:
        posterior._lazy["user_loglik"] = lambda: posterior._user_loglik(256, points)
        posterior._lazy["draws_loglik"] = lambda: posterior._user_loglik(256)


def _hypothesis(path, attrs: dict) -> Hypothesis:
    """The file's hypothesis, from its ``hypothesis_toml`` attribute. A file saved before
    ``real_agents_stereotyped`` dropped its unused strength holds it beside its prior: not the
    reader's setting to drop, so not told."""
    import tomllib

    try:
        raw = tomllib.loads(_attribute(path, attrs, "hypothesis_toml"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StereotypeStrengthWarning)
            return Hypothesis.from_dict(raw, source=f"{path}: attribute hypothesis_toml")
    except (TypeError, ValueError, HypothesisError) as err:
        raise PosteriorFileError(f"{path}: bad attribute hypothesis_toml ({err})") from None


def _layout(path, attrs: dict) -> dict:
    """The file's ``layout`` attribute: JSON ``{"sim_ids": [...], "user_ids": [[...], ...],
    "currencies": [...]}``, one list of users per simulation."""
    allowed = 'JSON {"sim_ids": [...], "user_ids": [[...], ...], "currencies": [...]}'
    try:
        layout = json.loads(_attribute(path, attrs, "layout"))
    except (TypeError, ValueError) as err:
        raise PosteriorFileError(
            f"{path}: bad attribute layout ({err}); allowed: {allowed}"
        ) from None
    keys = ("sim_ids", "user_ids", "currencies")
    absent = [
        k for k in keys if not isinstance(layout, dict) or not isinstance(layout.get(k), list)
    ]
    if absent:
        raise PosteriorFileError(
            f"{path}: attribute layout lacks the list(s) {', '.join(absent)}; allowed: {allowed}"
        )
    if not all(isinstance(users, list) for users in layout["user_ids"]):
        raise PosteriorFileError(
            f"{path}: attribute layout's user_ids is not a list of lists; allowed: {allowed}"
        )
    if len(layout["sim_ids"]) != len(layout["user_ids"]):
        raise PosteriorFileError(
            f"{path}: attribute layout lists {len(layout['sim_ids'])} sim_ids but "
            f"{len(layout['user_ids'])} lists of user_ids; allowed: one list per simulation"
        )
    currencies = layout["currencies"]
    if not all(isinstance(c, str) for c in currencies) or len(set(currencies)) != len(currencies):
        raise PosteriorFileError(
            f"{path}: attribute layout's currencies {currencies} are not distinct names; "
            "allowed: each currency once, as text"
        )
    return layout


def _register_currencies(path, layout: dict) -> list[str]:
    """Register the file's currencies that this session lacks (a currency of one's own data,
    :func:`~scai.models.game.register_currency`) as the file flags them ``essential`` and with
    their ``units`` (a file without units: the name), and return their names; a file that
    flags none: the registry's, nothing registered. One registered here with another flag is
    refused; a file refused registers nothing."""
    flags = layout.get("essential")
    if flags is None:
        return []
    currencies = layout["currencies"]
    units = layout.get("units", currencies)
    for key, value, allowed in (("essential", flags, "true/false"), ("units", units, "text")):
        if not isinstance(value, list) or len(value) != len(currencies):
            raise PosteriorFileError(
                f"{path}: attribute layout's {key} {value!r:.80} is not one per currency of "
                f"{currencies}; allowed: a list of {allowed}"
            )
    for name, flag in zip(currencies, flags, strict=True):
        if not isinstance(flag, bool):
            raise PosteriorFileError(
                f"{path}: attribute layout's essential flag of {name!r} is {flag!r}; allowed: "
                "true or false"
            )
        if name in CURRENCIES and CURRENCIES[name].essential != flag:
            raise PosteriorFileError(
                f"{path}: currency {name!r} is essential={flag} in the file but "
                f"essential={CURRENCIES[name].essential} in this session's registry"
            )
    added: list[str] = []
    try:
        for name, flag, unit in zip(currencies, flags, units, strict=True):
            if name not in CURRENCIES:
                register_currency(name, unit, essential=flag)
                added.append(name)
    except RunError as err:
        for name in added:
            CURRENCIES.pop(name)
        raise PosteriorFileError(f"{path}: attribute layout's currencies: {err}") from None
    return added


def _attribute(path, attrs: dict, key: str):
    """``attrs[key]``, or a :class:`PosteriorFileError` naming the file and the attribute
    (``hypothesis_toml`` and ``layout`` are scai's, beside :data:`PROVENANCE_KEYS`)."""
    if key not in attrs:
        raise PosteriorFileError(f"{path}: missing attribute {key}; a scai posterior file has it")
    return attrs[key]


def _engine(path, attrs: dict) -> str:
    """The file's ``engine`` attribute, one of :data:`~scai.inference.fit.ENGINES`."""
    from scai.inference.fit import ENGINES

    engine = attrs["engine"]
    if engine not in ENGINES:
        raise PosteriorFileError(
            f"{path}: attribute engine is {engine!r}; allowed: {', '.join(ENGINES)}"
        )
    return engine


def _settings(path, attrs: dict, engine: str) -> dict:
    """The file's ``settings`` attribute: a JSON object of ``engine``'s options, each one
    :func:`~scai.inference.fit.check_options` accepts (an update passes them to the engine)."""
    from scai.inference.fit import check_options

    settings = json.loads(attrs["settings"])  # JSON: checked with the provenance
    if not isinstance(settings, dict):
        raise PosteriorFileError(
            f"{path}: attribute settings is {settings!r}; allowed: a JSON object of "
            f"engine {engine!r}'s options"
        )
    try:
        return check_options(engine, settings)[1]
    except EngineError as err:
        raise PosteriorFileError(f"{path}: bad attribute settings ({err})") from None


def _check_numbers(path, groups: dict[str, dict[str, np.ndarray]]) -> None:
    """Every array the :class:`Posterior` is built from holds numbers (booleans, integers or
    floats; the table's text columns aside): a file whose attributes make xarray decode a
    variable as dates or text is refused, naming the variable."""
    for group, values in groups.items():
        for name, value in values.items():
            text = group == "constant_data" and value.dtype.kind in "OSU"
            if not text and value.dtype.kind not in "biuf":
                raise PosteriorFileError(
                    f"{path}: {group}.{name} holds {value.dtype} values; allowed: numbers"
                )


def _seed(path, attrs: dict) -> int:
    """The file's ``seed`` attribute, a whole number."""
    try:
        return int(attrs["seed"])
    except (TypeError, ValueError):
        raise PosteriorFileError(
            f"{path}: attribute seed is {attrs['seed']!r}; allowed: a whole number"
        ) from None


def _check_shapes(path, hypothesis, data: GroupData, draws: dict, user_group: dict) -> None:
    """Every loaded array has the shape the hypothesis and layout give its dims
    (:data:`~scai.inference.diagnostics.SITE_DIMS`; ``user``, a user of the layout): a file
    whose attributes were edited apart from its arrays is refused, naming the first misfit."""
    sizes = dim_sizes(data, hypothesis)
    lead = tuple(draws["pi"].shape[:2])
    arrays = [
        (f"posterior.{site}", value.shape, lead, SITE_DIMS[site]) for site, value in draws.items()
    ]
    arrays += [
        (f"user_posterior.{name}", np.shape(user_group[name]), (), dims)
        for name, dims in USER_DIMS.items()
        if name in user_group
    ]
    for name, shape, first, dims in arrays:
        expected = (*first, *(sizes[d] for d in dims))
        if tuple(shape) != expected:
            said = ", ".join(f"{d} {sizes[d]}" for d in dims)
            raise PosteriorFileError(
                f"{path}: {name} has shape {tuple(shape)}, but attributes hypothesis_toml "
                f"({hypothesis.name!r}) and layout give {said}: {expected}"
            )


def _check_labels(path, labels: dict, expected: dict[str, list]) -> None:
    """Every loaded group's labels of a dim are the ones the attributes give, in their order:
    the arrays are read by position, so a file whose rows were reordered after the fit
    (``idata.sel(sim=[...])`` in another order, then saved) would pair draws with other
    groups', types', currencies' or users' names. Such a file is refused, naming the dim."""
    for group, found in labels.items():
        for dim, names in found.items():
            want = [str(label) for label in expected[dim]]
            if names == want:
                continue
            at = next(
                (i for i, (a, b) in enumerate(zip(names, want, strict=False)) if a != b), None
            )
            where = (
                f"{len(names)} labels where the attributes give {len(want)}"
                if at is None
                else f"label {names[at]!r} at position {at} where the attributes give {want[at]!r}"
            )
            raise PosteriorFileError(
                f"{path}: {group}'s coordinate {dim} has {where} (attributes hypothesis_toml "
                "and layout; the arrays are read in their order): were its rows reordered "
                "after the fit (sel, isel, reindex)? Select in the file's own order, or fit "
                "again"
            )


def _valid_table(path, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as :func:`~scai.models.data.validate_frame` types it, or a
    :class:`PosteriorFileError` naming the file and the first problem (an edited file's offer
    above its pot would otherwise surface later, as an index error). Games entered twice
    were told of when the table was fitted: not again at each load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateGamesWarning)
        try:
            return validate_frame(table, source=f"{path}: the table of its data groups")
        except DataError as err:
            raise PosteriorFileError(err.one_line()) from None


def _read_groups(path) -> tuple[dict[str, dict[str, np.ndarray]], dict, dict]:
    """:data:`LOADED_GROUPS` of a posterior file, ``{group: {data variable: values}}``, the
    posterior group's attributes and ``{group: {dim: labels}}`` of :data:`LABELLED_DIMS`."""
    try:
        plain = read_plain_groups(path, LOADED_GROUPS, REQUIRED_GROUPS, LABELLED_DIMS)
    except NotImplementedError:
        raise
    except (RuntimeError, OSError) as err:  # HDF5's, on damaged metadata or data
        raise PosteriorFileError(
            f"{path}: cannot read: HDF5 says {err} (the file is damaged, or needs an HDF5 filter "
            "this installation lacks)"
        ) from None
    if plain is not None:
        return plain.groups, plain.attrs, plain.labels
    idata = read_netcdf(path, REQUIRED_GROUPS)
    present = [g for g in LOADED_GROUPS if g in idata.groups()]
    try:  # xarray decodes a variable as its attributes say (scale, fill value, units)
        groups = {g: {k: idata[g][k].values for k in idata[g].data_vars} for g in present}
        labels = {
            g: {
                d: [str(v) for v in idata[g][d].values.tolist()]
                for d in LABELLED_DIMS
                if d in idata[g].coords
            }
            for g in present
        }
    except (TypeError, ValueError, OverflowError) as err:
        raise PosteriorFileError(
            f"{path}: cannot decode its variables ({type(err).__name__}: {err}); a scai file's "
            "are numbers and text as stored"
        ) from None
    return groups, dict(idata.posterior.attrs), labels


def _table(path, constant: dict[str, np.ndarray], observed: dict[str, np.ndarray]) -> pd.DataFrame:
    """The interaction table, from ``constant_data`` and ``observed_data`` (a tone as its
    index in :data:`TONES`, -1 where none was heard)."""
    columns = dict(constant)
    columns["offer"] = observed["offer"]
    columns["accepted"] = observed["accepted"]
    for name in TONE_COLUMNS:
        codes = observed[name]
        if codes.dtype.kind not in "iu" or not ((codes >= -1) & (codes < len(TONES))).all():
            raise PosteriorFileError(
                f"{path}: observed_data.{name} holds codes other than -1 (none heard) and "
                f"0..{len(TONES) - 1} (the tones {', '.join(TONES)})"
            )
        columns[name] = np.where(codes >= 0, np.array(TONES)[codes.clip(min=0)], "")
    table = pd.DataFrame(columns)
    order = [*INTERACTION_COLUMNS, *[c for c in table.columns if c not in INTERACTION_COLUMNS]]
    table = table[order]
    for name in table.columns:
        if table[name].dtype == object or name in TONE_COLUMNS:
            table[name] = table[name].astype(str)
    return table
