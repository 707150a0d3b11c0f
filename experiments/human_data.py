"""``scai run human-data``: which norms explain real responders and third-party punishers?

Reads human responder data (:func:`scai.models.human_data.read_human_data`: Study 1 of van Baar et
al., or the generic layout), fits two hypotheses of :mod:`scai.models.responders` with NUTS
(``experiments/hypotheses/human_norms.toml``: a mixture of seven named envy norms;
``experiments/hypotheses/human_inequity.toml``: a continuous, hierarchical Fehr-Schmidt envy
per subject), and compares them by PSIS-LOO (``az.compare``) with one log-likelihood term per
*subject* (its decisions, its norm or envy integrated out: leave one subject out).

Writes, under ``OUT/human-data/``:

* ``posterior_<hypothesis>.nc``: ArviZ InferenceData (NetCDF; see :func:`to_inference_data`);
* ``compare.csv``: the LOO comparison table;
* ``pareto_k.csv``: every subject's Pareto k under each hypothesis;
* ``rejection_by_offer.csv`` (``role, offer_share, n, observed, predicted_mean, predicted_lo,
  predicted_hi``; shares and rates as fractions; 95% intervals) under the better hypothesis,
  and ``rejection_by_offer_<hypothesis>.csv`` for each. ``predicted`` is the posterior
  predictive of the same subjects: per draw, each subject's state is drawn from its posterior
  and its decisions replicated, and the rejection rate of the replicated decisions is taken;

and figures ``FIGURES/human_data_{rejection_by_offer,norm_types,roles}.png``.

``--quick``: 20 subjects per role (chosen with the seed) and short chains, for tests.
The inference engine is always NUTS (``--engine`` is ignored); the chains of both hypotheses
run in ``--workers`` processes (default: one per core).
``--hypothesis FILE.toml`` replaces the hypothesis of its kind (a file with
``model = "inequity_aversion"`` replaces the envy model; any other hypothesis the norms).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scai.experiments.plots import save_figure
from scai.inference.arviz_schema import save_netcdf
from scai.models.data import write_csv_atomic
from scai.models.human_data import HumanImport, read_human_data, rejection_by_offer
from scai.models.hypotheses import get_hypothesis
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.responders import (
    ROLE_NAMES,
    InequitySpec,
    NormMixtureSpec,
    ResponderData,
    Spec,
    as_responder_spec,
    responder_marginal_model,
    role_params,
    subject_posterior,
)
from scai.models.responders.states import norm_of_state, norm_probabilities, norm_state_names

NAME = "human-data"
HYPOTHESES_DIR = Path(__file__).resolve().parent / "hypotheses"
NORMS_FILE = HYPOTHESES_DIR / "human_norms.toml"
INEQUITY_FILE = HYPOTHESES_DIR / "human_inequity.toml"
QUICK_SUBJECTS = 20  # per role
PARETO_K_LIMIT = 0.7
CSV_COLUMNS = (
    "role",
    "offer_share",
    "n",
    "observed",
    "predicted_mean",
    "predicted_lo",
    "predicted_hi",
)


@dataclass(frozen=True)
class Settings:
    """NUTS settings: ``chains`` chains of ``warmup + samples`` iterations each."""

    chains: int = 2
    warmup: int = 200
    samples: int = 200
    target_accept: float = 0.8
    full_mass: bool = False
    seed: int = 0

    @classmethod
    def for_run(cls, quick: bool, seed: int) -> Settings:
        return cls(warmup=75, samples=75, seed=seed) if quick else cls(seed=seed)


def default_specs() -> list[Spec]:
    """The two hypotheses of issue 5: named norms, then continuous envy."""
    return [as_responder_spec(load_hypothesis_file(f)) for f in (NORMS_FILE, INEQUITY_FILE)]


# -- fitting ------------------------------------------------------------------------------------
@dataclass
class ResponderFit:
    """A fitted hypothesis: draws ``[chains, draws, ...]``, NUTS statistics and per-subject
    results of :func:`scai.models.responders.subject_posterior` (``[chains, draws, ...]`` too)."""

    spec: Spec
    data: ResponderData
    settings: Settings
    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    subjects: dict[str, np.ndarray]
    state_prob: np.ndarray  # [S, M]
    seconds: float
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    replicated_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [C, D, R, A]

    @property
    def name(self) -> str:
        return self.spec.name


_COMPILED: dict[str, tuple] = {}


def _fingerprint(data: ResponderData, spec: Spec) -> str:
    """What a compiled potential depends on: the hypothesis and the data's counts."""
    digest = hashlib.sha1(repr(spec).encode())
    for tensor in (data.role_index, data.pots, data.offers, data.n_reject, data.n_trials):
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _run_chain(data: ResponderData, spec: Spec, settings: Settings, chain: int):
    """One NUTS chain on :func:`scai.models.responders.responder_marginal_model` (its own
    process or not): constrained draws ``[samples, ...]`` and per-iteration statistics."""
    import pyro
    from pyro.infer.autoguide.initialization import init_to_median
    from pyro.infer.mcmc import MCMC
    from pyro.infer.mcmc.util import initialize_model

    from scai.inference.mcmc import RecordingNUTS

    torch.set_num_threads(1)
    pyro.set_rng_seed(settings.seed * 1000 + chain)
    start = time.perf_counter()
    key = _fingerprint(data, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the JIT-compiled potential is reused by the next chain of the same fit in this process
        init, potential_fn, transforms, _ = initialize_model(
            responder_marginal_model,
            model_args=(data, spec),
            jit_compile=key not in _COMPILED,
            skip_jit_warnings=True,
            init_strategy=init_to_median(num_samples=15),
        )
        potential_fn, transforms = _COMPILED.setdefault(key, (potential_fn, transforms))
        kernel = RecordingNUTS(
            potential_fn=potential_fn,
            transforms=transforms,
            target_accept_prob=settings.target_accept,
            full_mass=settings.full_mass,
            jit_compile=True,
            ignore_jit_warnings=True,
        )
        mcmc = MCMC(
            kernel,
            num_samples=settings.samples,
            warmup_steps=settings.warmup,
            initial_params=init,
            transforms=transforms,
            disable_progbar=True,
        )
        mcmc.run()
    draws = {k: v.detach().to(torch.float64) for k, v in mcmc.get_samples().items()}
    stats = {k: np.asarray(v[settings.warmup :]) for k, v in kernel.stats.items()}
    return draws, stats, time.perf_counter() - start


def run_chains(
    data: ResponderData, specs: list[Spec], settings: Settings, workers: int | None = None
) -> list[list[tuple]]:
    """Every chain of every hypothesis, in ``workers`` processes (default: one per core;
    1: one after another in this process). Returns ``chains[hypothesis][chain]``."""
    from scai.inference.workers import worker_pool

    tasks = [(i, c) for i in range(len(specs)) for c in range(settings.chains)]
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    threads = torch.get_num_threads()
    try:
        if workers > 1:
            pool = worker_pool(workers)  # the experiments' processes, when already started
            futures = [pool.submit(_run_chain, data, specs[i], settings, c) for i, c in tasks]
            results = [f.result() for f in futures]
        else:
            results = [_run_chain(data, specs[i], settings, c) for i, c in tasks]
    finally:
        torch.set_num_threads(threads)
    out: list[list[tuple]] = [[] for _ in specs]
    for (i, _), result in zip(tasks, results, strict=True):
        out[i].append(result)
    return out


def fit_responders(
    data: ResponderData, spec: Spec, settings: Settings, chains: list[tuple] | None = None
) -> ResponderFit:
    """NUTS on :func:`scai.models.responders.responder_marginal_model` (or its finished
    ``chains``, from :func:`run_chains`), then every subject's state and the replicated
    decisions per draw."""
    start = time.perf_counter()
    if chains is None:
        chains = run_chains(data, [spec], settings, workers=1)[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        C, D = settings.chains, settings.samples
        flat = {k: torch.cat([ch[0][k] for ch in chains]) for k in chains[0][0]}
        params = role_params(spec, flat, data.n_roles)
        generator = torch.Generator().manual_seed(settings.seed * 1000 + 999)
        per_subject = subject_posterior(spec, data, params, generator)
    finally:
        torch.set_num_threads(threads)
    draws = {k: v.reshape(C, D, *v.shape[1:]).numpy() for k, v in params.items()}
    subjects = {
        k: v.reshape(C, D, *v.shape[1:]).numpy()
        for k, v in per_subject.items()
        if k != "state_prob"
    }
    stats = {k: np.stack([ch[1][k] for ch in chains]) for k in chains[0][1]}
    fit = ResponderFit(
        spec=spec,
        data=data,
        settings=settings,
        draws=draws,
        stats=stats,
        subjects=subjects,
        state_prob=per_subject["state_prob"].numpy(),
        seconds=time.perf_counter() - start + sum(ch[2] for ch in chains),
    )
    fit.shares, fit.replicated_rate = replicated_rates(fit)
    return fit


def replicated_rates(fit: ResponderFit) -> tuple[np.ndarray, np.ndarray]:
    """Distinct offer shares ``[A]`` and the replicated rejection rate per role and share
    ``[chains, draws, R, A]`` (replicated rejections over decisions)."""
    data = fit.data
    shares = np.round(data.shares.numpy(), 10)
    unique = np.unique(shares)
    rep = fit.subjects["replicated"]  # [C, D, S, cells]
    n = data.n_trials.numpy()
    rate = np.full((*rep.shape[:2], data.n_roles, len(unique)), np.nan)
    for r, (lo, hi) in enumerate(data.role_slices):
        for a, share in enumerate(unique):
            cells = shares == share
            total = n[lo:hi][:, cells].sum()
            if total > 0:
                rate[:, :, r, a] = rep[:, :, lo:hi][..., cells].sum(axis=(-1, -2)) / total
    return unique, rate


# -- ArviZ --------------------------------------------------------------------------------------
def to_inference_data(fit: ResponderFit, observed: pd.DataFrame):
    """InferenceData of a fit (ArviZ 0.23, built with ``az.from_dict``):

    * ``posterior``: role-level sites ``(chain, draw, role[, norm])`` (``pi``, ``envy_mu``,
      ``envy_sigma``, ``lam``, ``lapse``, ``inattentive``), each subject's drawn ``state``
      ``(chain, draw, subject)`` (index into the ``state`` coordinate) and, for inequity
      aversion, its ``envy`` ``(chain, draw, subject)``;
    * ``log_likelihood``: ``decisions (chain, draw, subject)``, a subject's decisions with its
      state integrated out;
    * ``posterior_predictive``: ``rejection_rate (chain, draw, role, offer_share)``;
    * ``observed_data``: ``rejection_rate (role, offer_share)``, ``n_reject`` and ``n_trials``
      ``(subject, cell)``; ``constant_data``: ``subject_role``, ``cell_pot``, ``cell_offer``;
    * ``sample_stats``: NUTS's ``diverging, step_size, tree_depth, n_steps, energy, lp``;
    * ``subject_posterior``: ``state_prob (subject, state)``, Rao-Blackwellised.
    """
    import arviz as az
    import tomli_w
    import xarray as xr

    data = fit.data
    roles = list(data.roles)
    coords = {
        "role": roles,
        "subject": list(data.subjects),
        "cell": np.arange(len(data.offers)),
        "offer_share": fit.shares,
        "state": norm_state_names(fit.spec),
    }
    dims: dict[str, list[str]] = {
        "pi": ["role", "norm"],
        "state": ["subject"],
        "envy": ["subject"],
        "decisions": ["subject"],
        "rejection_rate": ["role", "offer_share"],
        "n_reject": ["subject", "cell"],
        "n_trials": ["subject", "cell"],
        "subject_role": ["subject"],
        "cell_pot": ["cell"],
        "cell_offer": ["cell"],
    }
    for site in ("envy_mu", "envy_sigma", "lam", "lam_spread", "lapse", "inattentive"):
        dims[site] = ["role"]
    if isinstance(fit.spec, NormMixtureSpec):
        coords["norm"] = list(fit.spec.norms)
    posterior = dict(fit.draws)
    posterior["state"] = norm_of_state(fit.spec, fit.subjects["state"]).astype(np.int64)
    if "envy" in fit.subjects:
        posterior["envy"] = fit.subjects["envy"]
    obs_rate = (
        observed.pivot(index="role", columns="offer_share", values="observed")
        .reindex(index=roles, columns=fit.shares)
        .to_numpy()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(
            posterior=posterior,
            sample_stats=fit.stats,
            log_likelihood={"decisions": fit.subjects["loglik"]},
            posterior_predictive={"rejection_rate": fit.replicated_rate},
            observed_data={
                "rejection_rate": obs_rate,
                "n_reject": data.n_reject.numpy(),
                "n_trials": data.n_trials.numpy(),
            },
            constant_data={
                "subject_role": np.array(data.subject_roles(), dtype=str),
                "cell_pot": data.pots.numpy(),
                "cell_offer": data.offers.numpy(),
            },
            coords=coords,
            dims=dims,
        )
        group = xr.Dataset(
            {"state_prob": (("subject", "state"), norm_probabilities(fit.spec, fit.state_prob))},
            coords={"subject": coords["subject"], "state": coords["state"]},
        )
        idata.add_groups({"subject_posterior": group})
    attrs = {
        "scai_experiment": NAME,
        "hypothesis": fit.spec.name,
        "model": fit.spec.kind,
        "hypothesis_toml": tomli_w.dumps(fit.spec.to_dict()),
        "settings": repr(fit.settings),
        "seconds": f"{fit.seconds:.1f}",
    }
    for name in idata.groups():
        getattr(idata, name).attrs.update(attrs)
    return idata


# -- checks -------------------------------------------------------------------------------------
def rejection_table(fit: ResponderFit, observed: pd.DataFrame) -> pd.DataFrame:
    """``role, offer_share, n, observed, predicted_mean, predicted_lo, predicted_hi``: the
    observed rejection rate and the posterior predictive's mean and 95% interval."""
    rows = []
    rate = fit.replicated_rate.reshape(-1, *fit.replicated_rate.shape[2:])  # [draws, R, A]
    share_index = {round(float(s), 10): a for a, s in enumerate(fit.shares)}
    role_index = {r: i for i, r in enumerate(fit.data.roles)}
    for row in observed.itertuples(index=False):
        r, a = role_index[row.role], share_index[round(float(row.offer_share), 10)]
        values = rate[:, r, a]
        rows.append(
            {
                "role": row.role,
                "offer_share": float(row.offer_share),
                "n": int(row.n),
                "observed": float(row.observed),
                "predicted_mean": float(values.mean()),
                "predicted_lo": float(np.quantile(values, 0.025)),
                "predicted_hi": float(np.quantile(values, 0.975)),
            }
        )
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def pareto_table(fits: list[ResponderFit], idatas: dict[str, Any]) -> pd.DataFrame:
    """Every subject's Pareto k (PSIS-LOO) under each hypothesis, with what makes the subject
    unusual: its rejections, its rejections of an offer higher than one it accepted (pairs),
    and its posterior probability of being inattentive."""
    import arviz as az

    rows = []
    for fit in fits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(idatas[fit.name], pointwise=True)
        k = loo.pareto_k.values
        data = fit.data
        inattentive = fit.state_prob[:, -1] if fit.spec.inattentive.enabled else np.zeros(len(k))
        n_rej, n_tr = data.n_reject.numpy(), data.n_trials.numpy()
        offers = data.shares.numpy()
        loglik = fit.subjects["loglik"].reshape(-1, len(k)).mean(0)
        for s, subject in enumerate(data.subjects):
            rej = n_rej[s]
            acc = n_tr[s] - rej
            inverted = sum(
                rej[i] * acc[j]
                for i in range(len(offers))
                for j in range(len(offers))
                if offers[j] < offers[i]
            )
            rows.append(
                {
                    "hypothesis": fit.name,
                    "subject": subject,
                    "role": data.roles[int(data.role_index[s])],
                    "pareto_k": float(k[s]),
                    "rejections": int(rej.sum()),
                    "decisions": int(n_tr[s].sum()),
                    "inverted_pairs": int(inverted),
                    "p_inattentive": float(inattentive[s]),
                    "mean_loglik": float(loglik[s]),
                }
            )
    return pd.DataFrame(rows)


def arviz_k_threshold(n_draws: int) -> float:
    """ArviZ's sample-size-dependent Pareto k threshold, ``min(1 - 1 / log10(S), 0.7)``."""
    return min(1 - 1 / math.log10(n_draws), PARETO_K_LIMIT)


def explain_high_k(
    table: pd.DataFrame, limit: float = PARETO_K_LIMIT, below: float = math.inf
) -> list[str]:
    """One line per subject with Pareto k above ``limit`` (and at most ``below``), naming it
    and why."""
    lines = []
    chosen = (table["pareto_k"] > limit) & (table["pareto_k"] <= below)
    for row in table[chosen].itertuples(index=False):
        same = table[(table.hypothesis == row.hypothesis) & (table.role == row.role)]
        median = same["mean_loglik"].median()
        why = (
            f"rejected {row.rejections}/{row.decisions}, {row.inverted_pairs} inverted pairs "
            f"(rejected an offer higher than one it accepted), P(inattentive) "
            f"{row.p_inattentive:.2f}, log-likelihood {row.mean_loglik:.1f} vs the role's "
            f"median {median:.1f}: an atypical subject whose removal moves the population "
            "parameters"
        )
        lines.append(
            f"  {row.hypothesis}: subject {row.subject} ({row.role}), k = {row.pareto_k:.2f}: {why}"
        )
    return lines


# -- figures ------------------------------------------------------------------------------------
def _role_label(role: str) -> str:
    name = ROLE_NAMES.get(role)
    return f"{name}s ({role})" if name else role


def plot_rejection(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Observed vs posterior-predictive rejection rate by offer, one panel per role."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    first = next(iter(tables.values()))
    roles = list(dict.fromkeys(first["role"]))
    fig, axes = plt.subplots(1, len(roles), figsize=(5.2 * len(roles), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    palette = sns.color_palette("colorblind", len(tables))
    for ax, role in zip(axes, roles, strict=True):
        for colour, (name, table) in zip(palette, tables.items(), strict=True):
            t = table[table.role == role]
            x = 100 * t.offer_share
            ax.plot(x, t.predicted_mean, color=colour, label=f"predicted: {name}")
            ax.fill_between(x, t.predicted_lo, t.predicted_hi, color=colour, alpha=0.2, lw=0)
        t = first[first.role == role]
        se = np.sqrt(t.observed * (1 - t.observed) / t.n)
        ax.errorbar(
            100 * t.offer_share,
            t.observed,
            yerr=1.96 * se,
            fmt="o",
            color="black",
            ms=4,
            capsize=2,
            label="observed (95% binomial CI)",
        )
        ax.set_title(_role_label(role))
        ax.set_xlabel("offer (% of the pot)")
        ax.set_ylim(-0.02, 1.0)
    axes[0].set_ylabel("rejection rate")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Rejection by offer: observed vs posterior predictive (95% bands)")
    fig.tight_layout()
    save_figure(fig, path)


def plot_norm_types(fit: ResponderFit, path: Path) -> None:
    """Subjects over norm types: each role's expected share of subjects per norm (bars, from
    the subjects' posterior), with the population share ``pi`` (95% interval, whiskers)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data, spec = fit.data, fit.spec
    assert isinstance(spec, NormMixtureSpec)
    states = norm_state_names(spec)
    probs = norm_probabilities(spec, fit.state_prob)
    rows = []
    pi = fit.draws["pi"].reshape(-1, data.n_roles, len(spec.norms))
    rho = fit.draws.get("inattentive")
    rho = rho.reshape(-1, data.n_roles) if rho is not None else None
    for r, (lo, hi) in enumerate(data.role_slices):
        share = probs[lo:hi].mean(0)
        for m, state in enumerate(states):
            if m < len(spec.norms):
                pop = pi[:, r, m] * (1 - rho[:, r]) if rho is not None else pi[:, r, m]
            else:
                pop = rho[:, r]
            rows.append(
                {
                    "role": _role_label(data.roles[r]),
                    "norm": state,
                    "share": share[m],
                    "lo": np.quantile(pop, 0.025),
                    "hi": np.quantile(pop, 0.975),
                }
            )
    table = pd.DataFrame(rows)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(10, 4.2))
    sns.barplot(table, x="norm", y="share", hue="role", ax=ax, palette="colorblind")
    n_roles = data.n_roles
    width = 0.8 / n_roles
    for r, role in enumerate(dict.fromkeys(table.role)):
        t = table[table.role == role]
        x = np.arange(len(t)) - 0.4 + width * (r + 0.5)
        ax.errorbar(
            x, (t.lo + t.hi) / 2, yerr=(t.hi - t.lo) / 2, fmt="none", color="black", capsize=2, lw=1
        )
    ax.set_xlabel("")
    ax.set_ylabel("share of subjects")
    ax.set_title(
        "Subjects over norm types (bars: posterior expected share; whiskers: 95% "
        "interval of the population share)"
    )
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    save_figure(fig, path)


def plot_roles(fit: ResponderFit, path: Path) -> None:
    """Responders vs third-party punishers under inequity aversion: each subject's posterior
    median envy, the population's envy distribution, and the role-level parameters."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = fit.data
    labels = [_role_label(r) for r in data.roles]
    palette = dict(zip(labels, sns.color_palette("colorblind", len(labels)), strict=True))
    envy = fit.subjects["envy"].reshape(-1, data.n_subjects)
    subject_median = np.median(envy, axis=0)
    per_subject = pd.DataFrame(
        {
            "role": [labels[int(r)] for r in data.role_index],
            "envy": subject_median,
        }
    )
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    ax = axes[0]
    sns.histplot(
        per_subject,
        x="envy",
        hue="role",
        log_scale=True,
        element="step",
        stat="density",
        common_norm=False,
        ax=ax,
        palette=palette,
        bins=30,
    )
    ax.set_xlabel("subject's posterior median envy alpha (log scale)")
    ax.set_title("Envy per subject")
    # threshold axis: alpha -> the share below which the subject rejects
    ax2 = axes[1]
    mu = fit.draws["envy_mu"].reshape(-1, data.n_roles)
    sigma = fit.draws["envy_sigma"].reshape(-1, data.n_roles)
    for r, label in enumerate(labels):
        # P(threshold share < t) = P(alpha < t / (1 - 2t)): the population's acceptance curve
        t = np.linspace(0.01, 0.49, 97)
        a = np.log(t / (1 - 2 * t))
        cdf = 0.5 * (1 + _erf((a[None] - mu[:, r, None]) / (sigma[:, r, None] * math.sqrt(2))))
        rejecting = 1 - cdf  # share of (attentive) subjects who reject offer share t
        ax2.plot(100 * t, rejecting.mean(0), color=palette[label], label=label)
        ax2.fill_between(
            100 * t,
            np.quantile(rejecting, 0.025, 0),
            np.quantile(rejecting, 0.975, 0),
            color=palette[label],
            alpha=0.25,
            lw=0,
        )
    ax2.set_xlabel("offer (% of the pot)")
    ax2.set_ylabel("share of attentive subjects who reject")
    ax2.set_title("Population norm: who rejects an offer")
    ax2.legend(fontsize=8)
    ax3 = axes[2]
    rows = []
    names = {
        "envy_mu": "median envy exp(mu)",
        "envy_sigma": "spread of log envy sigma",
        "lam": "median rationality lam (per cent)",
        "lam_spread": "spread of log rationality tau",
        "lapse": "lapse rate eps",
        "inattentive": "inattentive share rho",
    }
    for site, title in names.items():
        if site not in fit.draws:
            continue
        values = fit.draws[site].reshape(-1, data.n_roles)
        if site == "envy_mu":
            values = np.exp(values)
        for r, label in enumerate(labels):
            v = values[:, r]
            rows.append(
                {
                    "parameter": title,
                    "role": label,
                    "median": np.median(v),
                    "lo": np.quantile(v, 0.025),
                    "hi": np.quantile(v, 0.975),
                }
            )
    table = pd.DataFrame(rows)
    params = list(dict.fromkeys(table.parameter))
    for r, label in enumerate(labels):
        t = table[table.role == label]
        y = np.arange(len(t)) + (r - (len(labels) - 1) / 2) * 0.2
        ax3.errorbar(
            t["median"],
            y,
            xerr=[t["median"] - t.lo, t.hi - t["median"]],
            fmt="o",
            color=palette[label],
            label=label,
            capsize=2,
        )
    ax3.set_yticks(np.arange(len(params)), params)
    ax3.set_xscale("log")
    ax3.set_title("Role-level parameters (median, 95% interval)")
    ax3.invert_yaxis()
    fig.suptitle("Responders vs third-party punishers (inequity-aversion model)")
    save_figure(fig, path)


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.as_tensor(x)).numpy()


# -- the experiment -----------------------------------------------------------------------------
@dataclass
class HumanDataResult:
    """What ``scai run human-data`` found; ``report`` is printed by the CLI."""

    imported: HumanImport
    fits: list[ResponderFit]
    compare: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    pareto: pd.DataFrame
    best: str
    max_error: dict[str, dict[str, float]]  # hypothesis -> role -> max |observed - predicted|
    paths: list[Path]
    report: str = ""


def subset(imported: HumanImport, per_role: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """``per_role`` subjects of each role, drawn with ``seed``: the table and roles."""
    rng = np.random.default_rng(seed)
    keep: list[str] = []
    by_role: dict[str, list[str]] = {}
    for subject, role in imported.roles.items():
        by_role.setdefault(role, []).append(subject)
    for role in sorted(by_role):
        subjects = sorted(by_role[role])
        n = min(per_role, len(subjects))
        keep.extend(subjects[i] for i in sorted(rng.choice(len(subjects), n, replace=False)))
    table = imported.table[imported.table["responder"].isin(keep)].reset_index(drop=True)
    return table, {s: imported.roles[s] for s in keep}


def _specs(hypothesis: str | None) -> list[Spec]:
    specs = default_specs()
    if hypothesis:
        loaded = (
            load_hypothesis_file(hypothesis)
            if hypothesis.endswith(".toml")
            else get_hypothesis(hypothesis)
        )
        override = as_responder_spec(loaded)
        specs = [override if s.kind == override.kind else s for s in specs]
    return specs


def run(
    data_path: Path,
    out: Path,
    figures: Path,
    *,
    format: str = "auto",
    skip_invalid: bool = False,
    seed: int = 0,
    quick: bool = False,
    hypothesis: str | None = None,
    settings: Settings | None = None,
    workers: int | None = None,
) -> HumanDataResult:
    """The experiment (see the module docstring); :func:`main` reads ``args`` into this."""
    import arviz as az

    imported = read_human_data(data_path, format=format, skip_invalid=skip_invalid)
    if quick:
        table, roles = subset(imported, QUICK_SUBJECTS, seed)
    else:
        table, roles = imported.table, imported.roles
    data = ResponderData.from_table(table, roles)
    observed = rejection_by_offer(table, roles)
    settings = settings or Settings.for_run(quick, seed)
    outdir = out / NAME
    fits, idatas, tables, paths = [], {}, {}, []
    specs = _specs(hypothesis)
    chains = run_chains(data, specs, settings, workers)
    for spec, spec_chains in zip(specs, chains, strict=True):
        fit = fit_responders(data, spec, settings, spec_chains)
        fits.append(fit)
        idatas[fit.name] = to_inference_data(fit, observed)
        path = outdir / f"posterior_{fit.name}.nc"
        save_netcdf(idatas[fit.name], path)
        tables[fit.name] = rejection_table(fit, observed)
        paths.append(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare = az.compare(idatas, ic="loo", method="stacking")
    compare = compare.rename_axis("hypothesis").reset_index()
    best = str(compare.iloc[0]["hypothesis"])
    pareto = pareto_table(fits, idatas)
    max_error = {
        name: {
            role: float((t[t.role == role].observed - t[t.role == role].predicted_mean).abs().max())
            for role in dict.fromkeys(t.role)
        }
        for name, t in tables.items()
    }
    files = {
        "rejection_by_offer.csv": tables[best],
        "compare.csv": compare,
        "pareto_k.csv": pareto,
        **{f"rejection_by_offer_{name}.csv": t for name, t in tables.items()},
    }
    for name, frame in files.items():
        write_csv_atomic(frame, outdir / name)
        paths.append(outdir / name)
    figure_paths = {
        "rejection_by_offer": figures / "human_data_rejection_by_offer.png",
        "norm_types": figures / "human_data_norm_types.png",
        "roles": figures / "human_data_roles.png",
    }
    plot_rejection(tables, figure_paths["rejection_by_offer"])
    mixture = next((f for f in fits if isinstance(f.spec, NormMixtureSpec)), None)
    inequity = next((f for f in fits if isinstance(f.spec, InequitySpec)), None)
    if mixture is not None:
        plot_norm_types(mixture, figure_paths["norm_types"])
    if inequity is not None:
        plot_roles(inequity, figure_paths["roles"])
    paths.extend(p for p in figure_paths.values() if p.exists())
    result = HumanDataResult(
        imported=imported,
        fits=fits,
        compare=compare,
        tables=tables,
        pareto=pareto,
        best=best,
        max_error=max_error,
        paths=paths,
    )
    result.report = _report(result, data, quick)
    return result


def _report(result: HumanDataResult, data: ResponderData, quick: bool) -> str:
    imp = result.imported
    counts = ", ".join(
        f"{(data.role_index == r).sum().item()} {_role_label(role)}"
        for r, role in enumerate(data.roles)
    )
    lines = [
        f"imported {len(imp.table)} decisions ({imp.format} layout); skipped {imp.skipped} "
        f"bad row(s)",
        f"modelled {int(data.n_trials.sum())} decisions of {data.n_subjects} subjects: {counts}"
        + (f" (quick: {QUICK_SUBJECTS} per role)" if quick else ""),
    ]
    for fit in result.fits:
        div = int(fit.stats["diverging"].sum())
        lines.append(
            f"{fit.name}: NUTS {fit.settings.chains} chains x {fit.settings.samples} draws "
            f"({fit.settings.warmup} warmup), {div} divergences, mean "
            f"{fit.stats['n_steps'].mean():.1f} leapfrog steps per draw, {fit.seconds:.1f} s "
            "(chains' wall time, summed, + post-processing)"
        )
    cols = ["hypothesis", "rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight"]
    lines.append("PSIS-LOO comparison (one term per subject):")
    lines.append(result.compare[cols].to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for name, errors in result.max_error.items():
        parts = ", ".join(f"{role} {e:.3f}" for role, e in errors.items())
        lines.append(f"max |observed - predicted| by offer, {name}: {parts}")
    worst = max(result.max_error[result.best].values())
    verdict = "meets" if worst <= 0.03 else "does NOT meet"
    lines.append(
        f"better hypothesis (LOO): {result.best}; its worst offer level is off by {worst:.3f}: "
        f"{verdict} the 0.03 criterion"
    )
    high = explain_high_k(result.pareto)
    k_max = result.pareto.groupby("hypothesis")["pareto_k"].max()
    lines.append(
        "max Pareto k: "
        + ", ".join(f"{h} {k:.2f}" for h, k in k_max.items())
        + (f"; subjects above {PARETO_K_LIMIT}:" if high else f"; none above {PARETO_K_LIMIT}")
    )
    lines.extend(high)
    settings = result.fits[0].settings
    threshold = arviz_k_threshold(settings.chains * settings.samples)
    if threshold < PARETO_K_LIMIT:
        between = explain_high_k(result.pareto, limit=threshold, below=PARETO_K_LIMIT)
        if between:
            lines.append(
                f"between ArviZ's threshold for {settings.chains * settings.samples} draws "
                f"({threshold:.2f}; it flags a warning in compare.csv) and {PARETO_K_LIMIT}:"
            )
            lines.extend(between)
    lines.append("wrote " + ", ".join(str(p) for p in result.paths))
    return "\n".join(lines)


def main(args) -> HumanDataResult:
    """``scai run human-data`` (options: ``--data --format --skip-invalid --out --figures
    --seed --quick --hypothesis``)."""
    import matplotlib

    matplotlib.use("Agg")
    if args.data is None:
        raise ValueError("human-data needs --data PATH")
    return run(
        Path(args.data),
        Path(args.out),
        Path(args.figures),
        format=getattr(args, "format", "auto"),
        skip_invalid=getattr(args, "skip_invalid", False),
        seed=args.seed,
        quick=args.quick,
        hypothesis=getattr(args, "hypothesis", None),
        workers=getattr(args, "workers", None),
    )
