"""A lean NUTS on a NumPy potential with its gradient, and a monitor that says when it struggles.

:func:`sample_nuts` is the No-U-Turn sampler as Stan runs it (Betancourt 2017, "A Conceptual
Introduction to Hamiltonian Monte Carlo", appendix A): multinomial sampling of the trajectory's
states, biased progressive sampling between doublings, the generalised no-U-turn criterion
(checked across the merged subtrees too), a diagonal inverse mass matrix adapted in Stan's
windows (75 / 25, 50, 100, ... / 50 iterations, or 15% / 75% / 10% of a short warmup) and the
step size by dual averaging towards ``target_accept``. It calls ``value_and_grad(q) -> (U, dU/dq)``
once per leapfrog step and does a few vector operations besides: no autograd, no tensors, no
per-step dictionaries (Pyro's NUTS spends more time in its own bookkeeping than in our
gradient; this is what :mod:`scai.inference.nuts` runs when a problem brings a NumPy gradient).
A chain may take a step of another kind after each NUTS iteration (:data:`Move`: the Gibbs step
on the clone prototype of :mod:`scai.inference.sheets`).

:func:`sample_nuts_lockstep` runs several chains in one process through one *batched*
potential, ``values_and_grads(q [B, d]) -> (U [B], dU/dq [B, d])``: each chain is a generator
that yields the position whose gradient it needs next, and one call serves the ``k``-th
gradient of every chain. The chains do not wait for each other's trees (chain ``b``'s ``k``-th
gradient may belong to another iteration than chain ``b'``'s), so the calls number the
largest chain's gradients, and where a gradient's cost is mostly per-call overhead (a few
thousand numbers: 200 users) two chains cost about one. Each chain's draws are what
:func:`sample_nuts` gives it alone with the same generator.

:class:`StruggleMonitor` watches the chain while it runs: at the end of each adaptation window and
every ``every`` kept draws it looks at the recent iterations and reports (through a callback)
a tiny step size, trajectories at the maximum tree depth or long ones, a low E-BFMI, and
divergences, naming the parameter(s) involved and the likely cause (:func:`diagnose`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np

from scai.inference.diagnostics import BFMI_MIN

__all__ = [
    "NutsRun",
    "StruggleMonitor",
    "adaptation_windows",
    "diagnose",
    "sample_nuts",
    "sample_nuts_lockstep",
]

ValueAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: ``q [B, d] -> (U [B], dU/dq [B, d])``: one potential for ``B`` chains at once.
BatchedValueAndGrad = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: A step between NUTS iterations that leaves the target invariant (e.g. a Gibbs update of a
#: discrete state the potential depends on, :class:`scai.inference.sheets.Sheets`): ``move(q)
#: -> (q', record)``: the position to go on from (``None``: ``q``, the potential unchanged; a
#: position: its potential and gradient are asked for again), and what to record as this
#: iteration's draw (e.g. the position in coordinates that do not depend on that state).
Move = Callable[[np.ndarray], "tuple[np.ndarray | None, np.ndarray]"]
#: A chain as a coroutine: it yields a position and is sent back ``(U, dU/dq)`` there.
Chain = Generator[np.ndarray, tuple[float, np.ndarray], "NutsRun"]

#: Dual averaging's final step size needs this many updates after its last restart
#: (:class:`DualAveraging`).
MIN_AVERAGED = 10
#: A trajectory whose energy error exceeds this is divergent (Stan's and Pyro's threshold).
MAX_ENERGY_ERROR = 1000.0
#: What the monitor calls struggling (see :func:`diagnose`).
SMALL_STEP = 0.05  # on coordinates scaled to the posterior (Laplace), ~0.5-1 is usual
MANY_STEPS = 63  # leapfrog steps per iteration, on average over a window (tree depth 6)
STRONG_CORRELATION = 0.9


class _Tree:
    """A subtree of the trajectory: its two ends (position, momentum, gradient, and the
    momentum times the inverse mass, ``p_sharp``), the state it proposes, the log of its
    total multinomial weight, the sum of its momenta ``rho``, and what building it cost.
    (A plain class with slots: one is made per leapfrog step and per merge.)"""

    __slots__ = (
        "q_minus", "p_minus", "g_minus", "s_minus", "q_plus", "p_plus", "g_plus", "s_plus",
        "q_prop", "u_prop", "g_prop", "log_w", "rho", "n_steps", "sum_accept", "diverging",
        "turning",
    )  # fmt: skip

    def __init__(self, minus, plus, prop, log_w, rho, n_steps=0, sum_accept=0.0):
        self.q_minus, self.p_minus, self.g_minus, self.s_minus = minus
        self.q_plus, self.p_plus, self.g_plus, self.s_plus = plus
        self.q_prop, self.u_prop, self.g_prop = prop
        self.log_w = log_w
        self.rho = rho
        self.n_steps = n_steps
        self.sum_accept = sum_accept
        self.diverging = False
        self.turning = False

    def end(self, direction: int) -> tuple:
        """``(q, p, g, p_sharp)`` at the end the trajectory grows from in ``direction``."""
        if direction > 0:
            return self.q_plus, self.p_plus, self.g_plus, self.s_plus
        return self.q_minus, self.p_minus, self.g_minus, self.s_minus


def _no_turn(p_sharp_minus: np.ndarray, p_sharp_plus: np.ndarray, rho: np.ndarray) -> bool:
    """The generalised no-U-turn criterion: the trajectory still extends at both ends."""
    return float(p_sharp_minus @ rho) > 0 and float(p_sharp_plus @ rho) > 0


def _logaddexp(a: float, b: float) -> float:
    """``log(e^a + e^b)`` of two floats (NumPy's formula, without a ufunc call per merge)."""
    if a == b:
        return a + _LOG2
    d = a - b
    if d > 0:
        return a + math.log1p(math.exp(-d))
    return b + math.log1p(math.exp(d))


_LOG2 = math.log(2.0)
_ALL = np.logical_and.reduce  # np.all without its Python wrapper (called per leapfrog step)


class _Integrator:
    """Leapfrog steps with a diagonal inverse mass matrix, counting gradient calls. Its
    methods are generators: each gradient is asked for by yielding the position (the caller
    sends back ``(U, dU/dq)``), so a driver can serve several chains with one call."""

    def __init__(self, inv_mass: np.ndarray):
        self.inv_mass = inv_mass
        self.n_grad = 0

    @property
    def inv_mass(self) -> np.ndarray:
        return self._inv_mass

    @inv_mass.setter
    def inv_mass(self, value: np.ndarray) -> None:
        self._inv_mass = value
        self.sqrt_inv_mass = np.sqrt(value)  # momenta are drawn as N(0, 1) / this

    def kinetic(self, p: np.ndarray) -> float:
        return 0.5 * float(p @ (self.inv_mass * p))

    def step(self, q, p, g, eps):
        p = p - 0.5 * eps * g
        q = q + eps * self.inv_mass * p
        self.n_grad += 1
        u, g = yield q
        p = p - 0.5 * eps * g
        return q, p, g, float(u)

    def build(self, end, direction: int, depth: int, eps: float, h0: float, rng):
        """A subtree (:class:`_Tree`) of ``2 ** depth`` leapfrog steps from ``end = (q, p, g,
        p_sharp)`` in ``direction``."""
        if depth == 0:
            q, p, g, _ = end
            q, p, g, u = yield from self.step(q, p, g, direction * eps)
            p_sharp = self.inv_mass * p
            h = u + 0.5 * float(p @ p_sharp)  # U + kinetic energy
            if not math.isfinite(h) or not _ALL(np.isfinite(g)):
                h = math.inf
            error = h - h0
            state = (q, p, g, p_sharp)
            tree = _Tree(state, state, (q, u, g), -error, p, 1)
            tree.sum_accept = math.exp(min(0.0, -error)) if math.isfinite(error) else 0.0
            tree.diverging = error > MAX_ENERGY_ERROR
            return tree
        inner = yield from self.build(end, direction, depth - 1, eps, h0, rng)
        if inner.diverging or inner.turning:
            return inner
        outer = yield from self.build(inner.end(direction), direction, depth - 1, eps, h0, rng)
        merged = self.merge(inner, outer, direction)
        # uniform multinomial sampling within a subtree
        valid = not (outer.diverging or outer.turning)
        if valid and math.log(rng.random()) < outer.log_w - merged.log_w:
            merged.q_prop, merged.u_prop, merged.g_prop = outer.q_prop, outer.u_prop, outer.g_prop
        return merged

    def merge(self, inner: _Tree, outer: _Tree, direction: int) -> _Tree:
        """``inner`` and the ``outer`` subtree built from its end in ``direction``, with the
        U-turn check across both and between them (Stan's)."""
        a, b = (inner, outer) if direction > 0 else (outer, inner)  # a: the minus side
        rho = a.rho + b.rho
        tree = _Tree(
            a.end(-1), b.end(1), (inner.q_prop, inner.u_prop, inner.g_prop),
            _logaddexp(inner.log_w, outer.log_w), rho,
            inner.n_steps + outer.n_steps, inner.sum_accept + outer.sum_accept,
        )  # fmt: skip
        tree.diverging = inner.diverging or outer.diverging
        tree.turning = outer.turning
        if not (tree.diverging or tree.turning):
            tree.turning = not (
                _no_turn(a.s_minus, b.s_plus, rho)
                and _no_turn(a.s_minus, b.s_minus, a.rho + b.p_minus)
                and _no_turn(a.s_plus, b.s_plus, b.rho + a.p_plus)
            )
        return tree


@dataclass
class Transition:
    """One NUTS iteration's result and statistics (ArviZ's ``sample_stats`` names)."""

    q: np.ndarray
    u: float
    g: np.ndarray
    accept: float
    diverging: bool
    tree_depth: int
    n_steps: int
    energy: float


def nuts_transition(
    integrator: _Integrator,
    q: np.ndarray,
    u: float,
    g: np.ndarray,
    eps: float,
    rng: np.random.Generator,
    max_depth: int = 10,
):
    """One NUTS iteration (a :class:`Transition`) from ``q`` (potential ``u``, gradient ``g``)
    with step size ``eps``."""
    p = rng.standard_normal(q.shape) / integrator.sqrt_inv_mass
    p_sharp = integrator.inv_mass * p
    h0 = u + 0.5 * float(p @ p_sharp)  # U + kinetic energy
    start = (q, p, g, p_sharp)
    tree = _Tree(start, start, (q, u, g), 0.0, p)
    depth = 0
    while depth < max_depth:
        direction = 1 if rng.random() < 0.5 else -1
        new = yield from integrator.build(tree.end(direction), direction, depth, eps, h0, rng)
        depth += 1
        if new.diverging or new.turning:
            tree.n_steps += new.n_steps
            tree.sum_accept += new.sum_accept
            tree.diverging = new.diverging
            break
        # biased progressive sampling: prefer the new subtree's proposal
        take_new = math.log(rng.random()) < new.log_w - tree.log_w
        merged = integrator.merge(tree, new, direction)
        if take_new:
            merged.q_prop, merged.u_prop, merged.g_prop = new.q_prop, new.u_prop, new.g_prop
        tree = merged
        if tree.turning:
            break
    accept = tree.sum_accept / max(tree.n_steps, 1)
    return Transition(
        tree.q_prop, tree.u_prop, tree.g_prop, accept, tree.diverging, depth, tree.n_steps, h0
    )


class DualAveraging:
    """Nesterov dual averaging of ``log eps`` towards an acceptance statistic (Stan's
    constants: gamma 0.05, t0 10, kappa 0.75, shrinking towards ``log(10 eps0)``).

    Its average is trusted after :data:`MIN_AVERAGED` updates since the last restart; with
    fewer (a warmup too short for Stan's terminal buffer: 2 iterations of a 25-iteration
    warmup) it still sits near its shrinkage target, ~10 times the heuristic step size, and a
    chain at that step size can stop moving (on a 3-d standard normal, warmup 25: step sizes
    7-9, every draw the same, in 2 seeds of 4). Then :attr:`final` is the heuristic's step
    size, where the last restart began."""

    def __init__(self, eps: float, target: float):
        self.target = target
        self.restart(eps)

    def restart(self, eps: float) -> None:
        self.start = eps
        self.mu = math.log(10 * eps)
        self.t = 0
        self.h_bar = 0.0
        self.log_eps = math.log(eps)
        self.log_eps_bar = 0.0

    def update(self, accept: float) -> float:
        self.t += 1
        eta = 1.0 / (self.t + 10)
        self.h_bar = (1 - eta) * self.h_bar + eta * (self.target - accept)
        self.log_eps = self.mu - math.sqrt(self.t) / 0.05 * self.h_bar
        weight = self.t**-0.75
        self.log_eps_bar = weight * self.log_eps + (1 - weight) * self.log_eps_bar
        return math.exp(self.log_eps)

    @property
    def final(self) -> float:
        return math.exp(self.log_eps_bar) if self.t >= MIN_AVERAGED else self.start


def adaptation_windows(warmup: int) -> list[tuple[int, int]]:
    """The slow windows ``(first, last)`` (0-based iterations, inclusive) after each of which
    the mass matrix is updated: Stan's schedule (init buffer 75, windows 25, 50, 100, ...,
    terminal buffer 50; 15% / 75% / 10% of a warmup under 150 iterations). Empty under 20
    iterations (step size only)."""
    if warmup < 20:
        return []
    init, term, base = 75, 50, 25
    if warmup < init + term + base:
        init, term = int(0.15 * warmup), int(0.1 * warmup)
        base = warmup - init - term
    windows, start, size = [], init, base
    last = warmup - term
    while start < last:
        end = start + size
        if end + 2 * size > last:  # the next window would not fit: this one takes the rest
            end = last
        windows.append((start, end - 1))
        start, size = end, 2 * size
    return windows


def find_step_size(integrator: _Integrator, q, u, g, eps: float, rng):
    """Stan's heuristic: double or halve ``eps`` until one leapfrog step's acceptance
    probability crosses 0.8 (a generator, like the integrator's steps; returns the step
    size)."""
    p = rng.standard_normal(q.shape) / integrator.sqrt_inv_mass
    h0 = u + integrator.kinetic(p)

    def log_accept(eps: float):
        _, p1, _, u1 = yield from integrator.step(q, p, g, eps)
        h = u1 + integrator.kinetic(p1)
        return h0 - h if math.isfinite(h) else -math.inf

    direction = 1 if (yield from log_accept(eps)) > math.log(0.8) else -1
    for _ in range(50):
        new = eps * 2.0**direction
        log_a = yield from log_accept(new)
        crossed = log_a <= math.log(0.8) if direction > 0 else log_a > math.log(0.8)
        if crossed:
            return eps if direction > 0 else new
        eps = new
    return eps


@dataclass
class NutsRun:
    """A finished chain: kept positions ``[samples, d]`` and per-iteration statistics over all
    ``warmup + samples`` iterations; ``problems``: the monitor's messages."""

    draws: np.ndarray
    stats: dict[str, np.ndarray]
    inv_mass: np.ndarray
    step_size: float
    problems: list[str] = field(default_factory=list)


def sample_nuts(
    value_and_grad: ValueAndGrad,
    start: np.ndarray,
    *,
    rng: np.random.Generator,
    warmup: int,
    samples: int,
    target_accept: float = 0.8,
    inv_mass: np.ndarray | None = None,
    max_depth: int = 10,
    monitor: StruggleMonitor | None = None,
    on_iteration: Callable[[], None] | None = None,
    move: Move | None = None,
) -> NutsRun:
    """``warmup`` adapting iterations then ``samples`` kept ones of NUTS on the potential
    ``U`` (``value_and_grad(q) -> (U(q), dU/dq)``) from ``start``; ``inv_mass``: the diagonal
    inverse mass matrix to adapt from (default ones); ``move``: applied after every NUTS
    iteration (:data:`Move`)."""

    def batched(qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, g = value_and_grad(qs[0])
        return np.array([float(u)]), np.asarray(g, dtype=np.float64)[None]

    chain = nuts_chain(
        start,
        rng=rng,
        warmup=warmup,
        samples=samples,
        target_accept=target_accept,
        inv_mass=inv_mass,
        max_depth=max_depth,
        monitor=monitor,
        on_iteration=on_iteration,
        move=move,
    )
    return drive([chain], batched)[0]


def sample_nuts_lockstep(
    values_and_grads: BatchedValueAndGrad,
    starts: np.ndarray,
    *,
    rngs: Sequence[np.random.Generator],
    warmup: int,
    samples: int,
    target_accept: float = 0.8,
    inv_mass: np.ndarray | None = None,
    max_depth: int = 10,
    monitors: Sequence[StruggleMonitor | None] | None = None,
    on_iteration: Sequence[Callable[[], None] | None] | None = None,
    moves: Sequence[Move | None] | None = None,
) -> list[NutsRun]:
    """:func:`sample_nuts` for ``B = len(starts)`` chains through one batched potential
    (module docstring): chain ``b`` starts at ``starts[b]`` with generator ``rngs[b]`` (and
    ``monitors[b]``, ``on_iteration[b]``, ``moves[b]``); ``inv_mass [d]`` is every chain's
    start."""
    n = len(starts)
    monitors = list(monitors) if monitors is not None else [None] * n
    hooks = list(on_iteration) if on_iteration is not None else [None] * n
    moves = list(moves) if moves is not None else [None] * n
    chains = [
        nuts_chain(
            starts[b],
            rng=rngs[b],
            warmup=warmup,
            samples=samples,
            target_accept=target_accept,
            inv_mass=inv_mass,
            max_depth=max_depth,
            monitor=monitors[b],
            on_iteration=hooks[b],
            move=moves[b],
        )
        for b in range(n)
    ]
    return drive(chains, values_and_grads)


def drive(chains: Sequence[Chain], values_and_grads: BatchedValueAndGrad) -> list[NutsRun]:
    """Run chain coroutines to their end, serving each round of gradient requests with one
    call of ``values_and_grads`` on the stacked positions (a finished chain's last position
    is passed along and its result ignored, so the batch keeps its shape)."""
    chains = list(chains)
    requests = [next(chain) for chain in chains]
    results: list[NutsRun | None] = [None] * len(chains)
    live = set(range(len(chains)))
    order = list(range(len(chains)))
    with np.errstate(all="ignore"):  # a far leapfrog step may overflow: NUTS handles it
        while live:
            values, grads = values_and_grads(np.array(requests))
            for b in order:
                if b not in live:
                    continue
                try:
                    requests[b] = chains[b].send((float(values[b]), grads[b].copy()))
                except StopIteration as end:
                    results[b] = end.value
                    live.discard(b)
    return results  # type: ignore[return-value]


def nuts_chain(
    start: np.ndarray,
    *,
    rng: np.random.Generator,
    warmup: int,
    samples: int,
    target_accept: float = 0.8,
    inv_mass: np.ndarray | None = None,
    max_depth: int = 10,
    monitor: StruggleMonitor | None = None,
    on_iteration: Callable[[], None] | None = None,
    move: Move | None = None,
) -> Chain:
    """One chain of :func:`sample_nuts` as a coroutine (module docstring): it yields each
    position whose potential and gradient it needs and returns the :class:`NutsRun`."""
    q = np.array(start, dtype=np.float64)
    d = q.size
    integrator = _Integrator(np.ones(d) if inv_mass is None else np.array(inv_mass))
    u, g = yield q
    u, g = float(u), np.asarray(g, dtype=np.float64)
    eps = yield from find_step_size(integrator, q, u, g, 1.0, rng)
    averaging = DualAveraging(eps, target_accept)
    windows = adaptation_windows(warmup)
    in_window = {i for first, last in windows for i in range(first, last + 1)}
    window_ends = {last for _, last in windows}
    total = warmup + samples
    keys = ("accept", "diverging", "step_size", "tree_depth", "n_steps", "energy", "lp")
    stats = {k: np.zeros(total) for k in keys}
    draws = np.empty((samples, d))
    window: list[np.ndarray] = []
    positions = np.empty((total, d))
    for i in range(total):
        t = yield from nuts_transition(integrator, q, u, g, eps, rng, max_depth)
        q, u, g = t.q, t.u, t.g
        record = q
        if move is not None:
            moved, record = move(q)
            if moved is not None:
                q = moved
                u, g = yield q
                u, g = float(u), np.asarray(g, dtype=np.float64)
        positions[i] = record
        for k, v in (
            ("accept", t.accept),
            ("diverging", t.diverging),
            ("step_size", eps),
            ("tree_depth", t.tree_depth),
            ("n_steps", t.n_steps),
            ("energy", t.energy),
            ("lp", -u),
        ):
            stats[k][i] = v
        if i < warmup:
            eps = averaging.update(t.accept)
            if i in in_window:
                window.append(q)
            if i in window_ends:
                n = len(window)
                var = np.var(np.asarray(window), axis=0, ddof=1)
                integrator.inv_mass = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
                window = []
                eps = yield from find_step_size(integrator, q, u, g, eps, rng)
                averaging.restart(eps)
            if i == warmup - 1:
                eps = averaging.final
        else:
            draws[i - warmup] = record
        if monitor is not None:
            monitor.after(i, positions, stats, warmup, windows)
        if on_iteration is not None:
            on_iteration()
    return NutsRun(
        draws, stats, integrator.inv_mass, eps, [] if monitor is None else monitor.messages
    )


# -- the monitor ------------------------------------------------------------------------------
@dataclass
class StruggleMonitor:
    """Reports a struggling chain while it runs (module docstring): ``report(message)`` is
    called at most once per kind of problem. ``names``: the parameters' names, ``unscale``
    maps the sampler's positions ``[n, d]`` to those parameters (e.g. undoing a Laplace
    whitening) so that correlations and scales are the model's."""

    names: Sequence[str]
    report: Callable[[str], None]
    unscale: Callable[[np.ndarray], np.ndarray] = lambda x: x
    every: int = 100
    max_depth: int = 10
    messages: list[str] = field(default_factory=list)
    _said: set[str] = field(default_factory=set)

    def after(
        self,
        i: int,
        positions: np.ndarray,
        stats: dict,
        warmup: int,
        windows: Sequence[tuple[int, int]],
    ) -> None:
        """The checks due after iteration ``i`` of a chain with ``warmup`` adapting iterations
        in ``windows`` (:func:`adaptation_windows`), ``positions [>= i + 1, d]`` and ``stats``
        recorded up to ``i``: at the end of each window (its iterations), at the end of the
        warmup (its last 100), and every ``every`` kept iterations (those)."""
        if i < warmup:
            for first, last in windows:
                if i == last:
                    self.check(i, positions, stats, lo=first, adapting=True)
            if i == warmup - 1:
                self.check(i, positions, stats, lo=max(0, i - 99), adapting=True)
        elif (i + 1 - warmup) % self.every == 0:
            self.check(i, positions, stats, lo=i + 1 - self.every)

    def replay(self, positions: np.ndarray, stats: dict, warmup: int) -> None:
        """The checks :func:`nuts_chain` makes while it runs, made afterwards on a finished
        chain's ``positions [iterations, d]`` and ``stats`` (a sampler that cannot call back
        while it runs: :mod:`scai.inference.compiled`); the same messages, at the end."""
        windows = adaptation_windows(warmup)
        due = {last for _, last in windows} | {warmup - 1}  # the iterations `after` checks
        due |= set(range(warmup + self.every - 1, len(positions), self.every))
        for i in sorted(i for i in due if 0 <= i < len(positions)):
            self.after(i, positions, stats, warmup, windows)

    def check(
        self, i: int, positions: np.ndarray, stats: dict, lo: int, adapting: bool = False
    ) -> None:
        """Look at iterations ``lo..i`` and report each new kind of problem (while
        ``adapting``, only the cost of the trajectories: the step size search makes
        divergences and energy jumps there part of the method)."""
        lo = max(0, lo)
        for kind, message in diagnose(
            self.unscale(positions[lo : i + 1]),
            positions[lo : i + 1],
            {k: v[lo : i + 1] for k, v in stats.items()},
            self.names,
            self.max_depth,
            adapting,
        ):
            if kind in self._said:
                continue
            self._said.add(kind)
            text = f"iteration {i + 1}: {message}"
            self.messages.append(text)
            self.report(text)


def ebfmi(energy: np.ndarray) -> float:
    """E-BFMI of a run of energies while it runs: mean squared change over the variance (ddof
    0; the reported diagnostic, :func:`scai.inference.convergence.bfmi`, is ArviZ's, ddof 1);
    ``inf`` for a run too short or constant to say."""
    if len(energy) < 3 or np.var(energy) == 0:
        return math.inf
    return float(np.mean(np.diff(energy) ** 2) / np.var(energy))


def diagnose(
    draws: np.ndarray,
    positions: np.ndarray,
    stats: dict[str, np.ndarray],
    names: Sequence[str],
    max_depth: int = 10,
    adapting: bool = False,
) -> list[tuple[str, str]]:
    """``(kind, message)`` for each sign of a struggling sampler in a stretch of iterations
    (``draws [n, d]`` in the model's parameters, ``positions [n, d]`` in the sampler's
    coordinates, whose ``j``-th is named after the ``j``-th parameter, and their ``stats``):
    a tiny step size, long
    trajectories, the maximum tree depth, a low E-BFMI, divergences, a stuck chain (one that
    moved in under :data:`STUCK` of the iterations: a step too large; the last three not while
    ``adapting``). Each message names the parameter(s) most likely responsible and the likely
    cause (:func:`_suspects`; none where the chain sat on too few points to say)."""
    n_steps, eps = stats["n_steps"], stats["step_size"]
    signs = []
    if np.median(eps) < SMALL_STEP:
        signs.append(("step", f"step size {np.median(eps):.3g}"))
    at_max = int(np.sum(stats["tree_depth"] >= max_depth))
    if at_max:
        signs.append(
            ("depth", f"{at_max} of {len(n_steps)} trajectories hit the maximum tree depth")
        )
    elif np.mean(n_steps) > MANY_STEPS:
        signs.append(("steps", f"{np.mean(n_steps):.0f} leapfrog steps per iteration"))
    bfmi = math.inf if adapting else ebfmi(stats["energy"])
    if bfmi < BFMI_MIN:
        signs.append(("bfmi", f"E-BFMI {bfmi:.2f}"))
    n_div = 0 if adapting else int(np.sum(stats["diverging"]))
    if n_div:
        signs.append(("divergences", f"{n_div} divergent transition(s)"))
    moved = _moves(positions)
    if not adapting and len(positions) > MIN_STUCK_CHECK and moved < STUCK * (len(positions) - 1):
        signs.append(
            (
                "stuck",
                f"the chain moved in {moved} of {len(positions) - 1} iterations at step size "
                f"{np.median(eps):.3g}: too large a step for the density here (a target_accept "
                "far below 0.8, or a region the density falls steeply away from)",
            )
        )
    if not signs:
        return []
    suspects = _suspects(draws, positions, stats["diverging"].astype(bool), names)
    return [(kind, f"sampler struggling: {what}; {suspects}") for kind, what in signs]


#: A chain that moved in fewer than this share of a stretch's iterations (of more than
#: ``MIN_STUCK_CHECK``) is stuck; with fewer than ``MIN_DISTINCT`` distinct draws no parameter
#: is named (a correlation of two points is +-1, whatever the posterior).
STUCK = 0.1
MIN_STUCK_CHECK = 20
MIN_DISTINCT = 10


def _moves(positions: np.ndarray) -> int:
    """How many iterations of ``positions [n, d]`` moved the chain (a new point)."""
    return int(np.any(np.diff(positions, axis=0) != 0, axis=1).sum())


#: Divergences needed before the monitor says where they gather. It places them by the draws
#: kept after them, not the points where their trajectories diverged: one or two such draws
#: in Neal's funnel lay as often at its mouth (v high) as at its neck.
MIN_DIVERGENCES_TO_PLACE = 5


def _suspects(
    draws: np.ndarray, positions: np.ndarray, diverging: np.ndarray, names: Sequence[str]
) -> str:
    """Which parameters, and why: divergences gathered at one end of a parameter (a wall or
    a funnel's neck), a strong correlation (a diagonal mass matrix cannot follow it: a
    hierarchical shift, a ridge; measured in the sampler's coordinates, where the mass matrix
    acts), else the parameter that mixes slowest (the smallest ESS: scales that differ)."""
    n, d = draws.shape
    if len(np.unique(positions, axis=0)) < MIN_DISTINCT:  # a correlation of a few points: +-1
        return "too few distinct draws to say which parameter"
    sd = draws.std(0)
    parts = []
    if n > diverging.sum() >= MIN_DIVERGENCES_TO_PLACE and np.all(sd > 0):
        z = (draws[diverging].mean(0) - draws.mean(0)) / sd
        j = int(np.argmax(np.abs(z)))
        if abs(z[j]) > 0.5:
            side = "low" if z[j] < 0 else "high"
            parts.append(
                f"divergences gather where {names[j]} is {side} ({z[j]:+.1f} sd): the density "
                f"changes faster there than the step size allows (a steep wall or a funnel)"
            )
    if n >= 10 and d >= 2 and np.all(positions.std(0) > 0):
        corr = np.corrcoef(positions.T)
        np.fill_diagonal(corr, 0)
        a, b = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
        if abs(corr[a, b]) > STRONG_CORRELATION:
            parts.append(
                f"{names[a]} and {names[b]} are strongly correlated (r = {corr[a, b]:+.3f}): "
                "a diagonal mass matrix cannot follow the ridge (a centred hierarchical "
                "parameter, or a posterior narrow in one combination)"
            )
    if not parts and n >= 10 and np.all(sd > 0):
        centred = draws - draws.mean(0)
        lag1 = (centred[1:] * centred[:-1]).mean(0) / centred.var(0)
        j = int(np.argmax(lag1))
        ess = n * (1 - lag1[j]) / (1 + lag1[j])
        parts.append(
            f"{names[j]} mixes slowest (lag-1 autocorrelation {lag1[j]:.2f}, ESS ~{ess:.0f} "
            f"of {n}): its scale differs from what the mass matrix expects, or its posterior "
            "is far from Gaussian"
        )
    return "; ".join(parts) if parts else "no single parameter stands out"
