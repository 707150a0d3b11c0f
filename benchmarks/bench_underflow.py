"""Nanoseconds an element of torch's ``exp``, ``sigmoid`` and ``logsumexp`` by the range of their
arguments, against :mod:`scai.models.underflow`'s (one torch thread, the median of 15 calls on
a million elements)::

    .venv/bin/python benchmarks/bench_underflow.py

torch's vectorised ``exp`` takes a slow path where the result is subnormal or underflows; the
table shows where, on this CPU, and what the flushed versions cost there and elsewhere.
"""

from __future__ import annotations

import statistics
import time

import torch

from scai.models.underflow import exp_flush_, logsumexp, sigmoid

N = 1_000_000


def ns_per_element(function, x: torch.Tensor, repeats: int = 15) -> float:
    function(x.clone())
    times = []
    for _ in range(repeats):
        y = x.clone()
        start = time.perf_counter()
        function(y)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e9 / x.numel()


def uniform(low: float, high: float, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.empty(N, dtype=dtype).uniform_(low, high, generator=generator)


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("\n| dtype | arguments | torch exp | exp_flush_ | torch logsumexp | scai logsumexp |")
    print("|---|---|---:|---:|---:|---:|")
    ranges = {
        torch.float32: [(-10, 0), (-80, -70), (-95, -88), (-300, -100)],
        torch.float64: [(-10, 0), (-700, -600), (-745, -709), (-5000, -800)],
    }
    for dtype, spans in ranges.items():
        for low, high in spans:
            x = uniform(low, high, dtype)
            x[0] = 0.0  # each row's maximum term 1, as in a normaliser
            rows = x.reshape(-1, 100)
            cells = (
                ns_per_element(torch.Tensor.exp_, x),
                ns_per_element(exp_flush_, x),
                ns_per_element(lambda r: torch.logsumexp(r, -1), rows),
                ns_per_element(lambda r: logsumexp(r, -1), rows),
            )
            name = str(dtype).removeprefix("torch.")
            print(f"| {name} | [{low}, {high}] | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    print("\n| arguments (float32) | torch sigmoid | scai sigmoid |")
    print("|---|---:|---:|")
    for low, high in [(-10, 10), (-200, -100), (80, 200), (1e3, 1e4)]:
        x = uniform(low, high, torch.float32)
        cells = ns_per_element(torch.sigmoid, x), ns_per_element(sigmoid, x)
        print(f"| [{low:g}, {high:g}] | {cells[0]:.2f} | {cells[1]:.2f} |")


if __name__ == "__main__":
    main()
