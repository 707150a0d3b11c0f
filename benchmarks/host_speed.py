"""How fast this host is right now: the CPU seconds of three fixed workloads that do not
depend on scai's code, so that timings taken in different sessions can be compared.

This machine is a virtual one on a shared host, and the same code runs about a third slower
in some sessions than in others (``scai run all`` at one commit: 9.9-11.1 s in one session,
13.4-14.3 s in the next); the load average, which counts this machine's processes only, does
not show it. Each workload runs in a fresh interpreter, one torch thread:

- ``import``: ``import torch, pandas``, what every process of ``scai run all`` pays first;
- ``kernels``: the exact engine's kind of arithmetic in float64 (``[256, 2926]`` products of
  a three-type lattice, their logarithms, a log-sum-exp), a fixed number of times;
- ``python``: the interpreter alone (dicts, lists, small loops), a fixed number of times.

::

    .venv/bin/python benchmarks/host_speed.py --repeats 3

prints the processor's name and clock as the virtual machine sees them (``/proc/cpuinfo``), the
share of time the host withheld from this machine while the workloads ran (``steal`` in
``/proc/stat``), and a Markdown table of each workload's median, minimum and maximum CPU seconds.
``bench_run_all.py`` prints one measurement of each before its first run and after its last.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

#: Each workload's program: it prints the CPU seconds of the part that is timed.
PROGRAMS = {
    "import": (
        "import time\n"
        "start = time.process_time()\n"
        "import torch, pandas\n"
        "print(time.process_time() - start)\n"
    ),
    "kernels": (
        "import time, torch\n"
        "torch.set_num_threads(1)\n"
        "g = torch.Generator().manual_seed(0)\n"
        "pi = torch.rand(2926, 3, generator=g, dtype=torch.float64)\n"
        "e = torch.rand(256, 3, generator=g, dtype=torch.float64)\n"
        "start = time.process_time()\n"
        "for _ in range(ROUNDS):\n"
        "    terms = (e @ pi.T).log_().add_(1.0)\n"
        "    total = torch.logsumexp(terms, -1).sum()\n"
        "print(time.process_time() - start)\n"
    ),
    "python": (
        "import time\n"
        "start = time.process_time()\n"
        "for _ in range(ROUNDS):\n"
        "    rows = [{'sim': i % 20, 'offer': i % 101, 'pot': 100} for i in range(1000)]\n"
        "    share = sum(r['offer'] / r['pot'] for r in rows if r['sim'] != 3)\n"
        "print(time.process_time() - start)\n"
    ),
}
#: ``ROUNDS`` in each program: about half a second of CPU each on this machine.
ROUNDS = {"import": 0, "kernels": 100, "python": 2500}


def measure(workload: str, scale: float = 1.0) -> float:
    """CPU seconds of one run of ``workload`` (its rounds times ``scale``) in a fresh
    interpreter."""
    rounds = max(1, round(ROUNDS[workload] * scale))
    program = PROGRAMS[workload].replace("ROUNDS", str(rounds))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"host_speed workload {workload!r} failed:\n{done.stderr}")
    return float(done.stdout.split()[-1])


def summary(repeats: int = 1, scale: float = 1.0) -> dict[str, list[float]]:
    """Every workload's CPU seconds, ``repeats`` times each, in turns."""
    spent: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(repeats):
        for name in PROGRAMS:
            spent[name].append(measure(name, scale))
    return spent


def processor() -> str:
    """``AMD EPYC, 2596 MHz``: the first processor's model name and clock in
    ``/proc/cpuinfo`` (Linux; elsewhere the platform's name for it)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():  # the end of the first processor's block
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.processor() or platform.machine())
    mhz = fields.get("cpu MHz", "")
    return f"{name}, {float(mhz):.0f} MHz" if mhz else name


def cpu_times() -> list[int] | None:
    """The whole machine's ``cpu`` line of ``/proc/stat`` (jiffies), or None where there is
    none."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float:
    """The share of the machine's time between two :func:`cpu_times` that the host gave to
    others (``steal``, the eighth field); NaN without ``/proc/stat``."""
    if before is None or after is None or len(before) < 8:
        return float("nan")
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return spent[7] / max(1, sum(spent))


def one_line(spent: dict[str, list[float]]) -> str:
    """``import 1.27 s, kernels 0.52 s, python 0.48 s`` (medians)."""
    return ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in spent.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    load, ticks = os.getloadavg()[0], cpu_times()
    spent = summary(args.repeats)
    steal = steal_share(ticks, cpu_times())
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"processor: {processor()}; steal time while measuring: {steal:.1%}")
    print(f"1-minute load average before and after: {load:.1f}, {os.getloadavg()[0]:.1f}\n")
    print("| workload | median CPU (s) | min (s) | max (s) |\n|---|---:|---:|---:|")
    for name, values in spent.items():
        print(
            f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |"
        )


if __name__ == "__main__":
    main()
