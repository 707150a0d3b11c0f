"""A tiny synthetic copy of the original study's log format, built by the tests in a tmp dir.

``write_run`` writes one run folder (``id_N_config`` and ``id_N_run_K.csv``) with 6 users: two
user-user games, one where the assistant proposes and one where a user proposes to it; the
proposals follow the users' policy. ``texts`` replaces chosen messages to plant faults.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import yaml

SPLITS = {"altruistic": lambda pot: 0, "selfish": lambda pot: pot - 1, "fair": lambda pot: pot // 2}
GAMES = [
    ("fixed_agent_1", "fixed_agent_2"),
    ("fixed_agent_3", "fixed_agent_4"),
    ("flex_agent_1", "fixed_agent_5"),
    ("fixed_agent_6", "flex_agent_2"),
]
PRINCIPLES = ["Be selfish in resource distribution.", "Principle: Give everything away."]


def proposal(pot: int, keep: int, currency: str = "apples") -> str:
    return (
        f"For the {pot} {currency}, the proposer will get {keep}, and the decider will get "
        f"{pot - keep}."
    )


def config(policies: list[str], manner: str, currency: str, pots: list[int]) -> dict:
    users = [
        {"name": f"fixed_agent_{i}", "manners": manner, "utilities": {currency: policy}}
        for i, policy in enumerate(policies, start=1)
    ]
    flex = [
        {"name": f"flex_agent_{i}", "manners": manner, "initial_util": "selfish"} for i in (1, 2)
    ]
    return {
        "sim": {"sim_dir": "batch_1/experiment_3/20runs/fixture"},
        "env": {"amounts_per_run": pots, "currencies": [currency], "n_runs": len(pots)},
        "agents": {"fixed_agents": users, "flex_agents": flex},
        "interactions": {
            "all_same": True,
            "runs": {"run_1": [f"{a}-{b}-{currency}" for a, b in GAMES]},
        },
    }


def epoch_csv(k: int, pot: int, policy: str, currency: str, texts: dict) -> str:
    """An epoch file; ``texts[(game, role)]`` replaces that message."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["response", "agent", "epoch", "prompt", "full_response", "run", "agent_id"])
    before = "Some principle was given to the flexible agents" if k == 0 else PRINCIPLES[1]
    writer.writerow([before, "system", 0, "", "", "", ""])
    writer.writerow([PRINCIPLES[1], "system", 1, "meta prompt", PRINCIPLES[1], k, ""])
    keep = SPLITS[policy](pot)
    for game, (proposer, decider) in enumerate(GAMES):
        made = proposal(pot, 1 if proposer.startswith("flex") else keep, currency)
        reply = "Accept. Enjoy, you fool!" if decider.startswith("fixed") else "accept"
        for role, agent, text in (("proposer", proposer, made), ("decider", decider, reply)):
            kind = "flexible" if agent.startswith("flex") else "fixed"
            principle = PRINCIPLES[0] if k == 0 else PRINCIPLES[1].removeprefix("Principle: ")
            prompt = (
                f"System: you must adhere to this principle: {principle} You MUST follow YOUR "
                f"principle TO THE EXTREME.\n\nHuman: divide {pot} {currency}. You are the {role}."
                if kind == "flexible"
                else f"System: Be {policy}.\n\nHuman: divide {pot} {currency}. You are the {role}."
            )
            text = texts.get((k, game, role), text)
            writer.writerow([text, kind, 0, prompt, "", "", f"{game}.0"])
    return buffer.getvalue()


def write_run(
    folder: Path,
    run: int,
    policy: str = "altruistic",
    manner: str = "rude",
    currency: str = "apples",
    pots: tuple[int, ...] = (30, 40),
    texts: dict | None = None,
    with_config: bool = True,
    mixed: tuple[str, ...] | None = None,
) -> Path:
    """Write run ``run`` into ``folder``; return the folder. ``mixed`` gives the 6 users'
    policies in the configuration (the messages still follow ``policy``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if with_config:
        policies = list(mixed or [policy] * 6)
        text = yaml.safe_dump(config(policies, manner, currency, list(pots)), sort_keys=False)
        (folder / f"id_{run}_config").write_text(text)
    for k, pot in enumerate(pots):
        csv_text = epoch_csv(k, pot, policy, currency, texts or {})
        (folder / f"id_{run}_run_{k}.csv").write_text(csv_text)
        (folder / f"id_{run}_run_{k}.json").write_text("{}")  # ignored, as in the real logs
    return folder


def make_archive(root: Path, path: Path) -> Path:
    """A ``.tgz`` of ``root``'s contents (run folders keep their relative paths)."""
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted(root.rglob("*")):
            tar.add(item, arcname=item.relative_to(root.parent).as_posix(), recursive=False)
    return path
