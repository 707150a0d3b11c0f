"""The human-data experiment's figures, drawn from its tables and fits.

* :func:`plot_rejection`: observed vs replicated (in-sample) rejection rate by offer, one panel
  per role (``human_data_rejection_by_offer.png``);
* :func:`plot_norm_types`: subjects over the named norms under the norm mixture
  (``human_data_norm_types.png``);
* :func:`plot_roles`: responders vs third-party punishers under inequity aversion
  (``human_data_roles.png``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scai.experiments.human_data.fitting import ResponderFit
from scai.experiments.plots import figure_style, pyplot, save_figure, seaborn
from scai.models.responders import ROLE_NAMES, NormMixtureSpec
from scai.models.responders.states import norm_probabilities, norm_state_names


def role_label(role: str) -> str:
    name = ROLE_NAMES.get(role)
    return f"{name}s ({role})" if name else role


def wilson_interval(rate: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, ...]:
    """The Wilson score interval of binomial rates ``rate`` of ``n`` trials: unlike
    ``rate +- z se`` it has width at a rate of 0 or 1 (responders never reject 50%: 0 of 384)
    and stays inside [0, 1]. (The trials of one subject are not independent: the interval is
    the binomial one, narrower than one over subjects would be.)"""
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def plot_rejection(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Observed rejection rate by offer (Wilson intervals) vs the in-sample replicates' (each
    subject's state redrawn given its own decisions; mean and 95% band) and new subjects'
    (mean, dashed), one panel per role."""
    plt = pyplot()

    sns = seaborn()

    figure_style()
    first = next(iter(tables.values()))
    roles = list(dict.fromkeys(first["role"]))
    fig, axes = plt.subplots(1, len(roles), figsize=(5.2 * len(roles), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    palette = sns.color_palette("colorblind", len(tables))
    for ax, role in zip(axes, roles, strict=True):
        for colour, (name, table) in zip(palette, tables.items(), strict=True):
            t = table[table.role == role]
            x = 100 * t.offer_share
            ax.plot(x, t.predicted_mean, color=colour, label=f"in-sample: {name}")
            ax.fill_between(x, t.predicted_lo, t.predicted_hi, color=colour, alpha=0.2, lw=0)
            ax.plot(x, t.new_subject_mean, color=colour, ls="--", label=f"new subjects: {name}")
        t = first[first.role == role]
        lo, hi = wilson_interval(t.observed.to_numpy(), t.n.to_numpy())
        ax.errorbar(
            100 * t.offer_share,
            t.observed,
            yerr=np.stack([t.observed - lo, hi - t.observed]).clip(0),  # (rounding at 0)
            fmt="o",
            color="black",
            ms=4,
            capsize=2,
            label="observed (95% Wilson interval)",
        )
        ax.set_title(role_label(role))
        ax.set_xlabel("offer (% of the pot)")
        ax.set_ylim(-0.02, 1.0)
    axes[0].set_ylabel("rejection rate")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Rejection by offer: observed, in-sample replicates (95% bands), new subjects")
    fig.tight_layout()
    save_figure(fig, path)


def plot_norm_types(fit: ResponderFit, path: Path) -> None:
    """Subjects over norm types: each role's expected share of subjects per norm (bars, from
    the subjects' posterior), with the population share ``pi`` (95% interval, whiskers)."""
    plt = pyplot()

    sns = seaborn()

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
                    "role": role_label(data.roles[r]),
                    "norm": state,
                    "share": share[m],
                    "lo": np.quantile(pop, 0.025),
                    "hi": np.quantile(pop, 0.975),
                }
            )
    table = pd.DataFrame(rows)
    figure_style()
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


#: The role-level parameters the roles figure compares, with how they are shown.
ROLE_PARAMETERS = {
    "envy_mu": "median envy exp(mu)",
    "envy_sigma": "spread of log envy sigma",
    "lam": "median rationality lam (per cent)",
    "lam_spread": "spread of log rationality tau",
    "lapse": "lapse rate eps",
    "inattentive": "inattentive share rho",
}


def role_parameters(fit: ResponderFit) -> pd.DataFrame:
    """Per role-level parameter of :data:`ROLE_PARAMETERS` the fit has and per role: the
    posterior ``median`` and 95% interval (``lo``, ``hi``); ``parameter`` is its description."""
    rows = []
    for site, title in ROLE_PARAMETERS.items():
        if site not in fit.draws:
            continue
        values = fit.draws[site].reshape(-1, fit.data.n_roles)
        if site == "envy_mu":
            values = np.exp(values)
        for r, role in enumerate(fit.data.roles):
            v = values[:, r]
            rows.append(
                {
                    "parameter": title,
                    "role": role_label(role),
                    "median": float(np.median(v)),
                    "lo": float(np.quantile(v, 0.025)),
                    "hi": float(np.quantile(v, 0.975)),
                }
            )
    return pd.DataFrame(rows)


def plot_roles(fit: ResponderFit, path: Path) -> None:
    """Responders vs third-party punishers under inequity aversion: each subject's posterior
    median envy, the population's envy distribution, and the role-level parameters."""
    plt = pyplot()

    sns = seaborn()

    data = fit.data
    labels = [role_label(r) for r in data.roles]
    palette = dict(zip(labels, sns.color_palette("colorblind", len(labels)), strict=True))
    envy = fit.subjects["envy"].reshape(-1, data.n_subjects)
    subject_median = np.median(envy, axis=0)
    per_subject = pd.DataFrame(
        {
            "role": [labels[int(r)] for r in data.role_index],
            "envy": subject_median,
        }
    )
    figure_style()
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
    table = role_parameters(fit)
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
    ax3.set_xlabel("value (log scale; each row in its own units)")
    ax3.set_title("Role-level parameters (median, 95% interval)")
    ax3.invert_yaxis()
    fig.suptitle("Responders vs third-party punishers (inequity-aversion model)")
    save_figure(fig, path)


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.as_tensor(x)).numpy()
