"""Fitting the responder hypotheses with NUTS, and what each fit gives per subject.

Every chain runs with the one NUTS runner (:mod:`scai.inference.nuts`) on the responder
marginal model (:func:`scai.models.responders.responder_marginal_model`, each subject's state
summed out), JIT-compiled once per process and hypothesis and started from Pyro's
``init_to_median``. Afterwards, per draw, each subject's state is drawn from its exact
posterior and its decisions replicated (:func:`scai.models.responders.subject_posterior`).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scai.inference.diagnostics import chain_problems
from scai.inference.nuts import (
    ChainProblem,
    ChainResult,
    ChainTask,
    one_torch_thread,
    run_chains,
    stack_chains,
)
from scai.models.errors import HypothesisError, RunError
from scai.models.hypotheses import get_hypothesis, is_hypothesis_file
from scai.models.hypothesis_files import load_hypothesis_file
from scai.models.memory import check_memory
from scai.models.responders import (
    NormMixtureSpec,
    ResponderData,
    Spec,
    as_responder_spec,
    responder_marginal_model,
    role_params,
    subject_posterior,
)
from scai.models.responders.states import n_norm_states

HYPOTHESES_DIR = Path(__file__).resolve().parents[1] / "hypotheses"
NORMS_FILE = HYPOTHESES_DIR / "human_norms.toml"
INEQUITY_FILE = HYPOTHESES_DIR / "human_inequity.toml"


@dataclass(frozen=True)
class HumanFitSettings:
    """NUTS settings of the human-data fits: ``chains`` chains of ``warmup + samples``
    iterations each."""

    chains: int = 2
    warmup: int = 200
    samples: int = 200
    target_accept: float = 0.8
    full_mass: bool = False
    seed: int = 0

    @classmethod
    def for_run(cls, quick: bool, seed: int) -> HumanFitSettings:
        return cls(warmup=75, samples=75, seed=seed) if quick else cls(seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_specs() -> list[Spec]:
    """The two hypotheses: named norms, then continuous envy."""
    return [as_responder_spec(load_hypothesis_file(f)) for f in (NORMS_FILE, INEQUITY_FILE)]


#: Tensors of a role's states by cells (``[R, M, C]``) that one gradient of a fit's potential
#: holds at once: the decision log-probabilities, their intermediates and autograd's copies
#: (measured: 80 subjects in 10 roles with 1,589 cells, ``--quick``: 1.3 GB at most, 0.3 GB
#: of it the imports, where 24 copies make 0.9 GB).
TABLE_COPIES = 24


def fit_bytes(subjects: int, roles: int, cells: int, specs: list[Spec], settings) -> int:
    """About the memory the human-data fits need at most, in bytes: every tensor over the
    distinct (pot, offer) cells is dense (``[R, M, C]`` state tables, ``M`` a spec's states:
    rationality nodes times norms or envy bins, plus the inattentive one; ``[D, S, C]``
    replicated and predictive rejections over the ``D`` draws; ``[S, C]`` counts), so it grows
    with subjects times cells, not with the decisions."""
    states = max(
        (int(spec.rationality_nodes) if spec.rationality_spread_scale > 0 else 1)
        * n_norm_states(spec)
        + 1
        for spec in specs
    )
    draws = settings.chains * settings.samples
    tables = TABLE_COPIES * roles * states * cells
    return 8 * (max(tables, 2 * draws * subjects * cells) + 2 * subjects * cells)


def check_fit_memory(
    table: pd.DataFrame, roles: dict, specs: list[Spec], settings, source: str
) -> None:
    """A :class:`~scai.models.errors.RunError` before any work where :func:`fit_bytes` is above
    the memory limit (:func:`~scai.models.memory.memory_limit`): a small file of many subjects
    and pots (20,000 rows, 1,000 subjects in 50 roles, pots drawn from 1-1,000) took 15 GB and
    never ended."""
    subjects = table["responder"].astype(str)
    cells = len(table[["pot", "offer"]].drop_duplicates())
    pairs = zip(subjects, table["sim"].astype(str), strict=True)
    n_roles = len({roles.get(s, sim) for s, sim in pairs})
    need = fit_bytes(subjects.nunique(), n_roles, cells, specs, settings)

    def error(text: str) -> RunError:
        return RunError(
            f"{source}: {subjects.nunique():,} subjects in {n_roles:,} role(s) with "
            f"{cells:,} distinct (pot, offer) cells: the fits {text}; their tables are dense "
            "over cells (each role's states by cells, each subject's replicates by cells): "
            "fewer distinct pots and offers, subjects or roles fit (--quick: fewer subjects)"
        )

    check_memory(need, error)


def specs_with(hypothesis: str | None) -> list[Spec]:
    """:func:`default_specs`, with ``hypothesis`` (a TOML file or a preset's name) replacing
    the one of its kind."""
    specs = default_specs()
    if hypothesis:
        loaded = (
            load_hypothesis_file(hypothesis)
            if is_hypothesis_file(hypothesis)
            else get_hypothesis(hypothesis)
        )
        override = as_responder_spec(loaded)
        others = [s for s in specs if s.kind != override.kind]
        clash = [s for s in others if s.name == override.name]
        if clash:  # each hypothesis's files and row are named after it: one would replace the other
            raise HypothesisError(
                f"{hypothesis}: name {override.name!r} is the name of the {clash[0].kind} "
                "hypothesis the experiment compares it with; give it another name (key 'name')"
            )
        specs = [override if s.kind == override.kind else s for s in specs]
    return specs


@dataclass
class ResponderFit:
    """A fitted hypothesis: role-level draws ``[chains, draws, R, ...]``, NUTS statistics
    ``[chains, draws]``, the per-subject results of
    :func:`scai.models.responders.subject_posterior` (``[chains, draws, ...]`` too) and the
    replicated rejection rate by role and offer share."""

    spec: Spec
    data: ResponderData
    settings: HumanFitSettings
    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    subjects: dict[str, np.ndarray]
    state_prob: np.ndarray  # [S, M]
    seconds: float
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    replicated_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [C, D, R, A]
    new_subject_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [C, D, R, A]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def role_dims(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """``(dims, coords)`` of the role-level sites: ``pi (role, norm)``, the others
        ``(role)``."""
        dims = {site: ["role"] for site in self.draws}
        coords = {"role": list(self.data.roles)}
        if isinstance(self.spec, NormMixtureSpec):
            dims["pi"] = ["role", "norm"]
            coords["norm"] = list(self.spec.norms)
        return dims, coords


_COMPILED: dict[str, tuple] = {}


def _fingerprint(data: ResponderData, spec: Spec) -> str:
    """What a compiled potential depends on: the hypothesis and the data's counts."""
    digest = hashlib.sha1(repr(spec).encode())
    for tensor in (data.role_index, data.pots, data.offers, data.n_reject, data.n_trials):
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def responder_chain_problem(data: ResponderData, spec: Spec) -> ChainProblem:
    """What one chain samples: Pyro's potential of the responder marginal model (JIT-compiled
    on its first chain in a process, then reused), from ``init_to_median``."""
    from pyro.infer.autoguide.initialization import init_to_median
    from pyro.infer.mcmc.util import initialize_model

    key = _fingerprint(data, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init, potential_fn, transforms, _ = initialize_model(
            responder_marginal_model,
            model_args=(data, spec),
            jit_compile=key not in _COMPILED,
            skip_jit_warnings=True,
            init_strategy=init_to_median(num_samples=15),
        )
    potential_fn, transforms = _COMPILED.setdefault(key, (potential_fn, transforms))
    return ChainProblem(potential_fn=potential_fn, initial_params=init, transforms=transforms)


def run_responder_chains(
    data: ResponderData,
    specs: list[Spec],
    settings: HumanFitSettings,
    workers: int | None = None,
) -> list[list[ChainResult]]:
    """Every chain of every hypothesis (:func:`scai.inference.nuts.run_chains`: ``workers``
    processes, default one per core; 1: one after another here): ``chains[hypothesis]``."""
    tasks = [
        ChainTask(
            responder_chain_problem,
            (data, spec),
            seed=settings.seed,
            chain=c,
            warmup=settings.warmup,
            samples=settings.samples,
            target_accept=settings.target_accept,
            full_mass=settings.full_mass,
        )
        for spec in specs
        for c in range(settings.chains)
    ]
    results = run_chains(tasks, workers)
    n = settings.chains
    return [results[i * n : (i + 1) * n] for i in range(len(specs))]


def fit_responders(
    data: ResponderData,
    spec: Spec,
    settings: HumanFitSettings,
    chains: list[ChainResult] | None = None,
) -> ResponderFit:
    """NUTS on the responder marginal model (or its finished ``chains``, from
    :func:`run_responder_chains`), then every subject's state and replicated decisions per
    draw."""
    start = time.perf_counter()
    if chains is None:
        chains = run_responder_chains(data, [spec], settings, workers=1)[0]
    stacked, stats = stack_chains(chains)
    with one_torch_thread():
        C, D = settings.chains, settings.samples
        flat = {k: v.to(torch.float64).reshape(C * D, *v.shape[2:]) for k, v in stacked.items()}
        params = role_params(spec, flat, data.n_roles)
        generator = torch.Generator().manual_seed(settings.seed * 1000 + 999)
        new_subjects = torch.Generator().manual_seed(settings.seed * 1000 + 998)
        per_subject = subject_posterior(spec, data, params, generator, new_subjects=new_subjects)
    draws = {k: v.reshape(C, D, *v.shape[1:]).numpy() for k, v in params.items()}
    subjects = {
        k: v.reshape(C, D, *v.shape[1:]).numpy()
        for k, v in per_subject.items()
        if k != "state_prob"
    }
    fit = ResponderFit(
        spec=spec,
        data=data,
        settings=settings,
        draws=draws,
        stats=stats,
        subjects=subjects,
        state_prob=per_subject["state_prob"].numpy(),
        seconds=time.perf_counter() - start + sum(ch.seconds for ch in chains),
    )
    fit.shares, fit.replicated_rate = replicated_rates(fit)
    _, fit.new_subject_rate = replicated_rates(fit, "predictive")
    fit.diagnostics = nuts_diagnostics(fit)
    return fit


def nuts_diagnostics(fit: ResponderFit) -> dict[str, Any]:
    """r_hat, ESS, divergences and BFMI of the role-level sites
    (:func:`scai.inference.diagnostics.chain_problems`: no warning, the report states them),
    ``problems``: the thresholds they fail, and the fit's seconds."""
    import arviz as az

    dims, coords = fit.role_dims()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(posterior=fit.draws, dims=dims, coords=coords)
    diagnostics, problems = chain_problems(idata, fit.stats)
    return {**diagnostics, "problems": problems, "seconds": round(fit.seconds, 1)}


def replicated_rates(
    fit: ResponderFit, replicates: str = "replicated"
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct offer shares ``[A]`` and the replicated rejection rate per role and share
    ``[chains, draws, R, A]`` (replicated rejections over decisions) of ``fit.subjects``'
    ``replicates``: ``"replicated"``, each subject's decisions replicated from its posterior
    state (in-sample), or ``"predictive"``, a new subject's in its cells, its state drawn from
    the role's distribution (the file's ``posterior_predictive``)."""
    data = fit.data
    shares = np.round(data.shares.numpy(), 10)
    unique = np.unique(shares)
    rep = fit.subjects[replicates]  # [C, D, S, cells]
    n = data.n_trials.numpy()
    rate = np.full((*rep.shape[:2], data.n_roles, len(unique)), np.nan)
    for r, (lo, hi) in enumerate(data.role_slices):
        for a, share in enumerate(unique):
            cells = shares == share
            total = n[lo:hi][:, cells].sum()
            if total > 0:
                rate[:, :, r, a] = rep[:, :, lo:hi][..., cells].sum(axis=(-1, -2)) / total
    return unique, rate
