"""NumPyro peer: the same marginal log density under NumPyro's NUTS, side by side with ours.

The model is :func:`scai.models.marginal.marginal_model` written again in JAX::

    pi  ~ Dirichlet(0.5, 0.5, 0.5)
    lam ~ LogNormal(log 4, 0.3)                      (latent_lam; fixed at 4 for neutral)
    log p(data | pi, lam) = sum_u logsumexp_k(log pi_k + L[u, k])

with ``L[u, k]`` the user's offers, decisions and tones under type ``k``, and the action
tables recomputed in ``jax.numpy`` from the formulas of :mod:`scai.models.policies` (not copied from
torch). Before timing anything the script checks that the two log densities agree to 1e-4
(relative) at fixed parameter points, and exits if they do not.

Then, on the same data (one group of ``--users`` users, 10 events each), for each hypothesis:
our :func:`scai.inference.mcmc.fit_mcmc` (2 chains: in worker processes, one after another, and
in lockstep in one process, its default) and NumPyro's NUTS (2 chains,
``chain_method="parallel"`` on 2 XLA host devices, ``"sequential"`` and ``"vectorized"``), the same
warmup and samples (``fit_mcmc``'s defaults unless ``--warmup``/``--samples``), the same
target acceptance (0.8) and start (at or near the prior median). ESS/s is the smallest bulk
ESS over the continuous sites (``scai.inference.diagnostics``: ArviZ's estimator) over the wall
time of the whole call.
NumPyro's includes JIT compilation, which is also reported on its own (``jax.monitoring``),
with the ESS/s of the wall minus it. NumPyro once compiled is also measured directly: the same
``MCMC.run`` under one ``jax.jit``, timed on calls after the one that compiled it
(:func:`run_numpyro_compiled`); the ratio to it is the one that compares the samplers once
compiled. Needs the optional extra
``scai[numpyro]`` (``.venv/bin/pip install numpyro jax``). Run from the project root::

    .venv/bin/python benchmarks/numpyro_peer.py            # full run (~5-10 min)
    .venv/bin/python benchmarks/numpyro_peer.py --quick    # smoke run
"""

from __future__ import annotations

import os

# XLA reads this when JAX is first imported: two host "devices" for chain_method="parallel".
# JAX itself is imported lazily (inside functions) so that the processes our MCMC spawns for
# its chains, which re-import this module, do not pay for it.
_FLAG = "--xla_force_host_platform_device_count=2"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_inference import (  # noqa: E402
    HYPOTHESES,
    MCMC_DEFAULTS,
    Dataset,
    Table,
    fmt,
    hand_gradient,
    load_average,
    machine_lines,
    make_dataset,
    per_call,
    timed_mcmc,
)

from scai.models.hypotheses import PRESETS, Hypothesis  # noqa: E402
from scai.models.prior import GroupPrior  # noqa: E402

RESULTS = Path(__file__).with_name("results_numpyro.md")


def covered(h: Hypothesis) -> bool:
    """Whether the JAX model covers ``h``: no lapses, clones, learned stereotype (the Beta
    sites) or role-dependent norms."""
    return not GroupPrior(h).beta and all(p.responder is None for p in h.policies)


#: The benchmark's two hypotheses, then every preset the JAX model covers.
_CANDIDATES = {**HYPOTHESES, **{k: v for k, v in PRESETS.items() if k not in HYPOTHESES}}
PEER_HYPOTHESES = {name: h for name, h in _CANDIDATES.items() if covered(h)}
RTOL = 1e-4


def require_numpyro() -> None:
    missing = [m for m in ("jax", "numpyro") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            f"numpyro_peer.py needs {' and '.join(missing)} (not installed). Install the optional "
            "extra: .venv/bin/pip install -e '.[numpyro]'  (or: pip install numpyro jax)"
        )


# -- the model in JAX -------------------------------------------------------------------------
def numpyro_model(ds: Dataset, hyp: Hypothesis):
    """The marginal model for one group, as a NumPyro model function of no arguments."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as ndist

    data = ds.data
    S, U, _ = data.shape
    prior = GroupPrior(hyp)
    if S != 1 or not covered(hyp):
        raise ValueError(
            "the peer model covers one group without lapses, clones, a learned stereotype "
            "or role-dependent norms"
        )
    mask = data.event_mask[0].numpy()
    user = np.nonzero(mask)[0]  # each event's user
    cur = data.currency_index[0].numpy()[mask]
    pot_i = data.pot_index[0].numpy()[mask]
    offer = data.offer[0].numpy()[mask]
    proposed = data.is_proposer[0].numpy()[mask]
    accepted = data.accepted[0].numpy()[mask] > 0.5

    # Policy utilities (models.policies); the currencies' shifts add to the weight w.
    w = jnp.asarray([p.w for p in hyp.policies], jnp.float32)
    alpha_k = jnp.asarray([p.alpha for p in hyp.policies], jnp.float32)[:, None, None]
    beta_k = jnp.asarray([p.beta for p in hyp.policies], jnp.float32)[:, None, None]
    C = len(data.currencies)
    essential = jnp.asarray(data.essential.numpy(), jnp.float32)  # [C]
    pots = jnp.asarray(data.pots.numpy(), jnp.float32)[:, None]  # [P, 1]
    offers = jnp.arange(int(data.pots.max()) + 1, dtype=jnp.float32)  # [O]
    valid = offers <= pots  # [P, O]

    def utility(w_c, x, y):
        return x + w_c * y - alpha_k * jnp.maximum(y - x, 0.0) - beta_k * jnp.maximum(x - y, 0.0)

    # Tones: the manner summed out, a constant [U, K] (models.language's tables).
    counts = data.tone_counts()[0].numpy().astype(np.float64)  # [U, T]
    log_e = np.log(hyp.emission().numpy().astype(np.float64))  # [M, T]
    log_rho = np.log(hyp.coupling().numpy().astype(np.float64))  # [K, M]
    per_manner = counts @ log_e.T  # [U, M]
    z = per_manner[:, None, :] + log_rho[None]
    zmax = z.max(-1, keepdims=True)
    tone_ll = jnp.asarray((np.log(np.exp(z - zmax).sum(-1)) + zmax[..., 0]).astype(np.float32))

    user_j, cur_j, pot_j = jnp.asarray(user), jnp.asarray(cur), jnp.asarray(pot_i)
    offer_j, prop_j = jnp.asarray(offer), jnp.asarray(proposed)[:, None]
    sign = jnp.where(jnp.asarray(accepted), 1.0, -1.0)[:, None]

    def user_loglik(lam, shift):
        w_c = (w[None, :] + shift[:, None])[..., None, None]  # [C, K, 1, 1]
        accept_logit = lam * utility(w_c, offers, pots - offers)  # [C, K, P, O]
        expected = jax.nn.sigmoid(accept_logit) * utility(w_c, pots - offers, offers)
        logits = jnp.where(valid, lam * expected, -jnp.inf)
        offer_logp = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        # Each event's log-probability under every type: [N, K].
        op = jnp.moveaxis(offer_logp, 1, -1)[cur_j, pot_j, offer_j]
        al = jnp.moveaxis(accept_logit, 1, -1)[cur_j, pot_j, offer_j]
        ev = jnp.where(prop_j, op, jax.nn.log_sigmoid(sign * al))
        return jax.ops.segment_sum(ev, user_j, num_segments=U) + tone_ll  # [U, K]

    concentration = jnp.asarray(hyp.pi_concentration, jnp.float32)

    def model():
        # The prior of scai.models.prior, site by site.
        pi = numpyro.sample("pi", ndist.Dirichlet(concentration))
        if prior.latent_lam:
            lam = numpyro.sample(
                "lam", ndist.LogNormal(math.log(hyp.rationality), hyp.rationality_scale)
            )
        else:
            lam = hyp.rationality
        shared = 0.0
        if prior.latent_shared:
            shared = numpyro.sample("shift_shared", ndist.Normal(0.0, hyp.shared_scale))
        shift = shared + hyp.essential_shift * essential
        if prior.latent_shift:
            with numpyro.plate("currencies", C):
                shift = numpyro.sample("shift", ndist.Normal(shift, hyp.currency_scale))
        log_pi = jnp.log(jnp.clip(pi, jnp.finfo(pi.dtype).tiny))
        per_user = jax.scipy.special.logsumexp(log_pi + user_loglik(lam, shift), axis=-1)
        numpyro.factor("users", per_user.sum())

    return model


def check_log_density(ds: Dataset, hyp: Hypothesis, model) -> list[str]:
    """Our and NumPyro's log density at fixed points; exits if they differ by > RTOL."""
    import jax.numpy as jnp
    import pyro
    from numpyro.infer.util import log_density

    from scai.models.marginal import marginal_model

    prior = GroupPrior(hyp)
    C = len(ds.data.currencies)
    points = [
        ((0.5, 0.3, 0.2), 4.0, 0.1, 0.05),
        ((0.2, 0.2, 0.6), 2.5, -0.3, -0.02),
        ((0.05, 0.9, 0.05), 7.0, 0.6, 0.01),
    ]
    lines = []
    for pi, lam, shared, step in points:
        shift = [shared + step * c for c in range(C)]  # a different shift per currency
        values = {"pi": torch.tensor(pi).reshape(1, 1, 1, 3)}
        np_values = {"pi": jnp.asarray(pi, jnp.float32)}
        shown = f"pi={pi}"
        if prior.latent_lam:
            values["lam"] = torch.tensor(lam).reshape(1, 1, 1)
            np_values["lam"] = jnp.asarray(lam, jnp.float32)
            shown += f", lam={lam}"
        if prior.latent_shared:
            values["shift_shared"] = torch.tensor(shared).reshape(1, 1, 1)
            np_values["shift_shared"] = jnp.asarray(shared, jnp.float32)
            shown += f", shift_shared={shared}"
        if prior.latent_shift:
            values["shift"] = torch.tensor(shift).reshape(1, 1, C)
            np_values["shift"] = jnp.asarray(shift, jnp.float32)
            shown += ", shift=(" + ", ".join(f"{x:.2f}" for x in shift) + ")"
        conditioned = pyro.poutine.condition(marginal_model, data=values)
        ours = float(pyro.poutine.trace(conditioned).get_trace(ds.data, hyp).log_prob_sum())
        theirs = float(log_density(model, (), {}, np_values)[0])
        rel = abs(ours - theirs) / abs(ours)
        lines.append(f"{shown}: ours {ours:.4f}, NumPyro {theirs:.4f}, relative {rel:.1e}")
        if not rel <= RTOL:
            sys.exit(f"log densities differ ({hyp.name}, {lines[-1]}): the models are not equal")
    return lines


# -- runs -------------------------------------------------------------------------------------
def min_bulk_ess_arrays(samples: dict[str, np.ndarray]) -> float:
    """Smallest bulk ESS over every component, from ``[chains, draws, ...]`` arrays."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(az.from_dict(posterior=samples), kind="diagnostics")
    return float(summary["ess_bulk"].min())


#: How the chains run, each side by side with its NumPyro counterpart: ``(ours, fit_mcmc's
#: parallel, NumPyro's chain_method)``; ours "lockstep" (fit_mcmc's default: both chains in
#: this process through one batched gradient) against NumPyro's "vectorized" (both chains
#: ``vmap``-ed in one XLA program).
METHODS = (
    ("parallel", True, "parallel"),
    ("sequential", False, "sequential"),
    ("lockstep", None, "vectorized"),
)


def run_ours(
    ds: Dataset, hyp: Hypothesis, parallel: bool | None, warmup: int, samples: int, seed: int
):
    """One ``fit_mcmc`` call, as a user makes it (in lockstep, the first such call of the
    process pays for importing numba and loading its compiled kernels, or compiling them);
    in lockstep also ``"later"``: the median wall of ``REPEATS`` more calls (the same draws),
    and ``"sampling"``: the median wall of the part of a call that NumPyro's compiled run
    does (set-up with the Laplace start, warmup and sampling of both chains, the draws
    constrained; not the posterior's type probabilities nor the convergence diagnostics)."""
    post, wall, ess = timed_mcmc(ds, hyp, parallel, seed, warmup=warmup, samples=samples)
    means = {
        k: v.reshape(-1, *v.shape[2:]).mean(0).flatten().tolist() for k, v in post.draws.items()
    }
    steps = float(np.mean(post.sample_stats["n_steps"]))
    out = {"wall": wall, "ess": ess, "steps": steps, "means": means, "compile": 0.0}
    out["compiled"] = bool(post.diagnostics.get("compiled"))
    if parallel is None:
        later = [
            timed_mcmc(ds, hyp, None, seed, warmup=warmup, samples=samples)[1]
            for _ in range(REPEATS)
        ]
        out["later"] = {**out, "wall": float(np.median(later))}
        out["sampling"] = {
            **out,
            "wall": float(np.median(_sampling_walls(ds, hyp, warmup, samples, seed))),
        }
    return out


#: Our later calls timed after the first (as NumPyro's compiled run's).
REPEATS = 3


def _sampling_walls(ds: Dataset, hyp: Hypothesis, warmup: int, samples: int, seed: int):
    """Walls of ``run_lockstep`` on ``fit_mcmc``'s problem: what a fit spends before it
    builds the posterior's products (see ``run_ours``)."""
    from scai.inference.mcmc import game_lockstep_problem
    from scai.inference.nuts import run_lockstep

    walls = []
    for _ in range(REPEATS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            begin = time.perf_counter()
            run_lockstep(
                game_lockstep_problem,
                (ds.data, hyp),
                seed=seed,
                chains=2,
                warmup=warmup,
                samples=samples,
            )
            walls.append(time.perf_counter() - begin)
    return walls


def numba_cold_compile() -> tuple[float, float]:
    """``(cold, cached)``: seconds of a first tiny compiled run (scai imported before), in a
    fresh process with an empty numba cache (numba imported, every kernel compiled) and in a
    second one with that cache (numba imported, the kernels loaded)."""
    import subprocess
    import tempfile

    code = (
        "import time; import numpy as np\n"
        "from scai.inference.compiled import PiModel, sample_chains\n"
        "begin = time.perf_counter()\n"
        "m = PiModel(np.zeros((1, 2)), np.eye(2)[None], np.zeros(2), np.ones(2), np.ones(2), "
        "0.0, np.ones((1, 3, 3)), np.zeros(1), np.zeros((3, 1, 3)), np.ones((1, 3)))\n"
        "sample_chains(m, np.zeros((1, 2)), [np.random.default_rng(0)], warmup=30, samples=5)\n"
        "print(time.perf_counter() - begin)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        walls = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            walls.append(float(done.stdout.strip().splitlines()[-1]))
    return walls[0], walls[1]


_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds = [0.0]
_listening = [False]


def _on_jax_event(event: str, duration: float, **_: object) -> None:
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += duration


def _numpyro_mcmc(model, method: str, warmup: int, samples: int, start: dict | None):
    """NumPyro's NUTS on ``model``, 2 chains, starting near the prior median or at ``start``."""
    from numpyro.infer import MCMC, NUTS, init_to_median, init_to_value

    init = init_to_value(values=start) if start else init_to_median(num_samples=15)
    kernel = NUTS(model, target_accept_prob=0.8, init_strategy=init)
    return MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=samples,
        num_chains=2,
        chain_method=method,
        progress_bar=False,
    )


def _summary(draws: dict, steps, wall: float, compile_s: float) -> dict:
    arrays = {k: np.asarray(v) for k, v in draws.items()}
    return {
        "wall": wall,
        "compile": min(compile_s, wall),
        "ess": min_bulk_ess_arrays(arrays),
        "steps": float(np.mean(np.asarray(steps))),
        "means": {
            k: v.reshape(-1, *v.shape[2:]).mean(0).flatten().tolist() for k, v in arrays.items()
        },
    }


def _listen_to_compilation() -> None:
    import jax

    if not _listening[0]:
        jax.monitoring.register_event_duration_secs_listener(_on_jax_event)
        _listening[0] = True


def run_numpyro(
    model, method: str, warmup: int, samples: int, seed: int, start: dict | None = None
):
    """One NumPyro ``MCMC.run``, as a user calls it: wall time, and the part of it XLA spent
    lowering and compiling (reported by ``jax.monitoring``; tracing is not counted). The chains
    start near the prior median, or at ``start`` (site -> value) if given."""
    import jax

    _listen_to_compilation()
    mcmc = _numpyro_mcmc(model, method, warmup, samples, start)
    compiled_before = _compile_seconds[0]
    begin = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=("num_steps",))
    draws = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall = time.perf_counter() - begin
    steps = mcmc.get_extra_fields()["num_steps"]
    return _summary(draws, steps, wall, _compile_seconds[0] - compiled_before)


def run_numpyro_compiled(
    model,
    method: str,
    warmup: int,
    samples: int,
    seed: int,
    start: dict | None = None,
    repeats: int = 3,
):
    """NumPyro once compiled, measured directly: the whole ``MCMC.run`` (initialisation,
    warmup and sampling of both chains) under one ``jax.jit``, called once to compile, then
    timed over ``repeats`` more calls with the same key (the same draws each time); the
    median wall. ``MCMC.run`` itself compiles again on every call (a second ``run`` on the
    same object compiles two programs), hence the ``jit``. ``compile`` is what
    ``jax.monitoring`` reports during the timed calls (each call's share): it should be 0."""
    import jax

    _listen_to_compilation()
    mcmc = _numpyro_mcmc(model, method, warmup, samples, start)

    def whole_run(key):
        mcmc.run(key, extra_fields=("num_steps",))
        return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields()["num_steps"]

    compiled = jax.jit(whole_run)
    key = jax.random.PRNGKey(seed)
    jax.block_until_ready(compiled(key))  # traces and compiles
    compiled_before = _compile_seconds[0]
    walls = []
    for _ in range(repeats):
        begin = time.perf_counter()
        draws, steps = jax.block_until_ready(compiled(key))
        walls.append(time.perf_counter() - begin)
    recompiled = (_compile_seconds[0] - compiled_before) / repeats
    return _summary(draws, steps, float(np.median(walls)), recompiled)


def rate(r: dict, measure: str = "wall") -> float:
    """ESS per second of a run: over its whole wall (``"wall"``, compilation counted), over
    its wall minus XLA compile (``"minus compile"``), or over the wall of a compiled run, less
    anything it compiled (``"compiled"``: ``run_numpyro_compiled``'s, where that is 0)."""
    seconds = r["wall"] - (r.get("compile", 0.0) if measure != "wall" else 0.0)
    return r["ess"] / seconds


#: Below this bulk ESS a NumPyro run counts as stuck, and NumPyro runs once more (sequential)
#: from our posterior mean: what its sampler does on the posterior once it has found it.
STUCK_ESS = 100
FROM_MEAN = "from our mean"


def start_at(means: dict[str, list[float]], hyp: Hypothesis) -> dict:
    """NumPyro initial values at our posterior means (``run_ours``'s ``means``)."""
    import jax.numpy as jnp

    prior = GroupPrior(hyp)
    start = {"pi": jnp.asarray(means["pi"], jnp.float32)}
    if prior.latent_lam:
        start["lam"] = jnp.asarray(means["lam"][0], jnp.float32)
    if prior.latent_shared:
        start["shift_shared"] = jnp.asarray(means["shift_shared"][0], jnp.float32)
    if prior.latent_shift:
        start["shift"] = jnp.asarray(means["shift"], jnp.float32)
    return start


def numpyro_gradient_ms(model, repeats: int) -> float:
    """Milliseconds per (jitted) value-and-gradient of NumPyro's potential energy."""
    import jax
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), model)
    params = info.param_info.z
    fn = jax.jit(jax.value_and_grad(info.potential_fn))

    def call():
        return jax.block_until_ready(fn(params))

    return float(np.median(per_call(call, repeats))) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=MCMC_DEFAULTS["warmup"])
    parser.add_argument("--samples", type=int, default=MCMC_DEFAULTS["samples"])
    parser.add_argument("--hypotheses", default=",".join(PEER_HYPOTHESES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 users, 100 + 100 iterations")
    parser.add_argument("--output", type=Path, default=None, help=f"default: {RESULTS.name}")
    args = parser.parse_args(argv)
    require_numpyro()
    if args.quick:
        args.users, args.warmup, args.samples = 50, 100, 100
    names = [h.strip() for h in args.hypotheses.split(",") if h.strip()]
    for name in names:
        if name not in PEER_HYPOTHESES:
            allowed = ", ".join(PEER_HYPOTHESES)
            parser.error(f"unknown hypothesis {name!r}; allowed: {allowed}")
    torch.set_num_threads(1)

    import jax
    import numpyro

    command = ".venv/bin/python benchmarks/numpyro_peer.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    load_before = load_average()
    print(f"$ {command.strip()}")
    print(f"load average before: {load_before}; JAX devices: {jax.devices()}")
    start_all = time.perf_counter()
    ds = make_dataset(args.users)
    print(f"data: {ds.users} users, {ds.games} games")
    cold = numba_cold_compile()
    print(f"numba: kernels compiled in {cold[0]:.1f} s, loaded in {cold[1]:.2f} s", flush=True)

    checks: list[str] = []
    runs = Table(
        "Our NUTS and NumPyro's on the same data",
        [
            "hypothesis",
            "sampler",
            "chains",
            "ms / gradient",
            "leapfrog steps / iteration",
            "min bulk ESS",
            "wall (s)",
            "ESS/s",
            "of which XLA compile (s)",
            "ESS/s wall minus compile",
            "compiled run: min bulk ESS",
            "compiled run: wall (s)",
            "compiled run: ESS/s",
            "sampling only: wall (s)",
            "sampling only: ESS/s",
        ],
        "lllrrrrrrrrrrrr",
    )
    ratios = Table(
        "Ratio of our ESS/s to NumPyro's",
        [
            "hypothesis",
            "ours",
            "NumPyro",
            "ratio, compile counted",
            "ratio to wall minus compile",
            "ratio to the compiled run",
            "ratio to the compiled run, sampling only",
        ],
        "lllrrrr",
    )
    agreement = Table(
        "Posterior means (same model, so they should agree within Monte Carlo error)",
        ["hypothesis", "site", "ours (parallel)", "NumPyro (parallel)", "NumPyro (from our mean)"],
        "lllll",
    )
    recompiled = 0.0  # the most XLA compile seen during a timed call of a compiled run

    def row(name: str, label: str, how: str, ms: str, r: dict, compiled: dict | None):
        wall = r["wall"]
        warm = wall - r["compile"] if compiled and label != "ours" else None
        sampling = r.get("sampling")
        cells = [
            name,
            label,
            how,
            ms,
            fmt(r["steps"], 1),
            fmt(r["ess"], 0),
            fmt(wall, 1),
            fmt(r["ess"] / wall, 1),
            fmt(r["compile"], 1) if warm else "",
            fmt(r["ess"] / warm, 1) if warm else "",
            fmt(compiled["ess"], 0) if compiled else "",
            fmt(compiled["wall"], 3) if compiled else "",
            fmt(rate(compiled, "compiled"), 1) if compiled else "",
            fmt(sampling["wall"], 3) if sampling else "",
            fmt(rate(sampling), 1) if sampling else "",
        ]
        runs.rows.append(cells)
        print("  " + " | ".join(cells), flush=True)

    for name in names:
        hyp = PEER_HYPOTHESES[name]
        model = numpyro_model(ds, hyp)
        checks += [f"- {name}: {line}" for line in check_log_density(ds, hyp, model)]
        print("\n".join(checks[-3:]), flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_ms = float(np.median(per_call(hand_gradient(ds.data, hyp, False), 5))) * 1e3
        np_ms = numpyro_gradient_ms(model, 5)
        np_ms_shown = fmt(np_ms, 3)
        # method -> (ours, NumPyro's MCMC.run, NumPyro's compiled run)
        results: dict[str, tuple[dict, dict, dict]] = {}
        for method, parallel, np_method in METHODS:
            # Interleaved, so that a change in the machine's load hits both samplers alike.
            ours = run_ours(ds, hyp, parallel, args.warmup, args.samples, args.seed)
            theirs = run_numpyro(model, np_method, args.warmup, args.samples, args.seed)
            compiled = run_numpyro_compiled(model, np_method, args.warmup, args.samples, args.seed)
            recompiled = max(recompiled, compiled["compile"])
            results[method] = (ours, theirs, compiled)
            how = f"{method}, compiled" if ours["compiled"] else method
            row(name, "ours", how, fmt(ours_ms, 3), ours, ours.get("later"))
            row(name, "NumPyro", np_method, np_ms_shown, theirs, compiled)

        if min(theirs["ess"] for _, theirs, _ in results.values()) < STUCK_ESS:
            ours = results["lockstep"][0]
            start = start_at(ours["means"], hyp)
            runs_from_mean = [
                run(model, "sequential", args.warmup, args.samples, args.seed, start)
                for run in (run_numpyro, run_numpyro_compiled)
            ]
            recompiled = max(recompiled, runs_from_mean[1]["compile"])
            results[FROM_MEAN] = (ours, *runs_from_mean)
            row(
                name, "NumPyro", "sequential, from our posterior mean", np_ms_shown, *runs_from_mean
            )

        pairs = {m: (m, np_m) for m, _, np_m in METHODS}
        pairs[FROM_MEAN] = ("lockstep", "sequential, from our posterior mean")
        for key, (ours, theirs, compiled) in results.items():
            # once compiled: our later calls (the first pays numba's loading) against
            # NumPyro's compiled run; compile counted: our first call against MCMC.run
            ours_later = ours.get("later", ours)
            sampling = ours.get("sampling")
            ratios.rows.append(
                [
                    name,
                    *pairs[key],
                    f"{rate(ours) / rate(theirs):.2f}",
                    f"{rate(ours_later) / rate(theirs, 'minus compile'):.2f}",
                    f"{rate(ours_later) / rate(compiled, 'compiled'):.2f}",
                    f"{rate(sampling) / rate(compiled, 'compiled'):.2f}" if sampling else "",
                ]
            )
        # The best of each side; NumPyro's includes a run started at our posterior mean.
        best_ours = max((rate(o), pairs[m][0]) for m, (o, _, _) in results.items())
        best_later = max((rate(o.get("later", o)), pairs[m][0]) for m, (o, _, _) in results.items())
        best_sampling = max(
            (rate(o["sampling"]), pairs[m][0])
            for m, (o, _, _) in results.items()
            if "sampling" in o
        )
        best_np = max((rate(t), pairs[m][1]) for m, (_, t, _) in results.items())
        best_minus = max(
            (rate(t, "minus compile"), pairs[m][1]) for m, (_, t, _) in results.items()
        )
        best_compiled = max((rate(c, "compiled"), pairs[m][1]) for m, (_, _, c) in results.items())
        ratios.rows.append(
            [
                name,
                f"best ({best_ours[1]}; later calls {best_later[1]})",
                f"best ({best_np[1]}; minus compile {best_minus[1]}; compiled {best_compiled[1]})",
                f"{best_ours[0] / best_np[0]:.2f}",
                f"{best_later[0] / best_minus[0]:.2f}",
                f"**{best_later[0] / best_compiled[0]:.2f}**",
                f"{best_sampling[0] / best_compiled[0]:.2f}",
            ]
        )
        ours, theirs, _ = results["parallel"]
        restarted = results.get(FROM_MEAN, (None, None, None))[1]

        def shown(values: list[float]) -> str:
            return ", ".join(f"{x:.3f}" for x in values)

        for site in ours["means"]:
            agreement.rows.append(
                [
                    name,
                    site,
                    shown(ours["means"][site]),
                    shown(theirs["means"][site]),
                    shown(restarted["means"][site]) if restarted else "",
                ]
            )
    runs.notes += [
        "- ours, lockstep: `fit_mcmc`'s default; ', compiled' where it ran the compiled NUTS "
        "(`scai.inference.compiled`: the pi-only hypotheses). Its wall is the process's first "
        "such call (with numba imported and the kernels loaded from its cache: in a fresh "
        f"process {cold[1]:.2f} s; compiled from an empty cache: {cold[0]:.1f} s, once per "
        "install, measured before the runs); its 'compiled run' columns "
        f"hold the median of {REPEATS} later calls (the same draws). Sampling only: the median "
        f"of {REPEATS} calls of `run_lockstep` on `fit_mcmc`'s problem: set-up with the Laplace "
        "start, warmup and sampling of both chains, draws constrained (what NumPyro's compiled "
        "run does), not the posterior's type probabilities and the convergence diagnostics that "
        "`fit_mcmc` adds.",
        "- ms / gradient: median time of one potential-and-gradient call (ours: "
        "`potential_grad` of `scai.models.density.MarginalDensity`, what our NUTS "
        "runs on, 1 torch thread; NumPyro: `jax.jit(jax.value_and_grad(potential_fn))` "
        "called from Python: mostly the cost of a call, which NumPyro's compiled sampler "
        "does not pay per gradient).",
        "- wall: the whole call: process start-up (ours, parallel) and JIT compilation "
        "(NumPyro) included. XLA compile: the time `jax.monitoring` reports for lowering and "
        "compiling during NumPyro's `MCMC.run` (tracing not counted); NumPyro compiles again "
        "on every `MCMC.run`. 'Wall minus compile' subtracts it: a small difference of two "
        "large numbers, which still holds tracing and NumPyro's Python.",
        "- compiled run: NumPyro once compiled, measured directly: the same `MCMC.run` "
        "(initialisation, warmup and sampling of both chains, same key) under one `jax.jit`, "
        "compiled by a first call, then the median wall of 3 more calls (the same draws each "
        "time); its ESS is its own draws' (XLA fuses the whole program differently, so they "
        "are not bit for bit those of `MCMC.run`). XLA compile during these timed calls: "
        f"{recompiled:.3f} s a call at most.",
    ]
    ratios.notes += [
        "- The ratio to NumPyro once compiled is the compiled run's column (measured "
        "directly, nothing subtracted), ours by its later calls (lockstep; the other methods "
        "by their one call); 'sampling only' puts ours on the same footing as NumPyro's run "
        "(no posterior products, no diagnostics). 'Compile counted' is each side's first "
        "call. 'Wall minus compile' is shown for comparison with earlier runs: it counts "
        "NumPyro's tracing and Python as sampling time.",
    ]
    header = [
        "## NumPyro peer results",
        "",
        f"- command: `{command.strip()}`",
        *machine_lines(),
        f"- JAX {jax.__version__}, NumPyro {numpyro.__version__}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}",
        f"- data: one group, {ds.users} users, {ds.games} games (10 events per user); "
        f"{args.warmup} warmup + {args.samples} samples per chain, 2 chains, target accept 0.8",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()} "
        f"(total {time.perf_counter() - start_all:.0f} s)",
        "",
        "Log density check (constrained space, relative tolerance "
        f"{RTOL:g}): passed at every point.",
        "",
        *checks,
        "",
    ]
    text = "\n".join(header) + "\n" + "\n\n".join(t.render() for t in (runs, ratios, agreement))
    print()
    print(text)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(text + "\n")
        print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
