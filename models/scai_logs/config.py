"""A run's configuration (``id_N_config``, YAML) as scai's names: users, games, pots, currency.

The keys read (everything else is ignored)::

    env.amounts_per_run        [pot of epoch 0, pot of epoch 1, ...]
    env.currencies             [the run's currency]          ("apples", "grams of medicine"...)
    agents.fixed_agents        [{name, manners, utilities: {currency: policy}}]   the users
    agents.flex_agents         [{name, manners, initial_util}]   the assistant's two GPT-4 agents
    interactions.all_same      true: the games of run_1 are replayed every epoch
    interactions.runs.run_1    ["A-B-currency", ...]   game i of every epoch; A proposes to B
                               (with all_same false, epoch K plays run_{K+1})

Policies and manners are normalised to scai's registries (:data:`SPELLINGS` lists the
configuration's misspellings); a name that is still unknown is a :class:`ConfigError`, as is a
missing key or a game naming an agent the configuration does not define.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

import yaml

from scai.models.cell_text import ID_CHARACTERS, has_control
from scai.models.game import CURRENCIES, MAX_POT
from scai.models.language import MANNERS
from scai.models.layout import ASSISTANT
from scai.models.policies import DEFAULT_POLICIES

#: The configurations' misspellings of scai's names: ``sychophantic`` (the manner of 20 of the 240
#: shared runs, users and assistant alike); ``nuetral`` is reported in other runs of the study and
#: does not occur in the shared ones.
SPELLINGS: dict[str, str] = {"sychophantic": "sycophantic", "nuetral": "neutral"}
#: The prefix the original code gives its assistant agents ("flexible-policy agents").
ASSISTANT_PREFIX = "flex_agent"
POLICY_NAMES: tuple[str, ...] = tuple(p.name for p in DEFAULT_POLICIES)
#: libyaml's safe loader where PyYAML was built with it (about 15 times faster), else PyYAML's.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A configuration scai cannot read; the message names the key and what is allowed."""


@dataclass(frozen=True)
class User:
    name: str
    policy: str
    manner: str


@dataclass(frozen=True)
class Game:
    proposer: str
    responder: str

    def involves_assistant(self) -> bool:
        return is_assistant(self.proposer) or is_assistant(self.responder)


@dataclass(frozen=True)
class RunConfig:
    """What a run's configuration says, in scai's names."""

    users: tuple[User, ...]
    assistant_manner: str
    assistant_start_policies: dict[str, str]  # assistant agent name -> its starting policy
    currency: str  # a key of scai's CURRENCIES
    pots: tuple[int, ...]  # per epoch
    games: tuple[tuple[Game, ...], ...]  # per epoch
    sim_dir: str  # the original code's name for the run's folder

    @property
    def policy(self) -> str:
        """The users' policy, or their mixture as ``"selfish=0.8,altruistic=0.2"``."""
        return _mixture([u.policy for u in self.users])

    @property
    def manner(self) -> str:
        """The users' manner, or their mixture."""
        return _mixture([u.manner for u in self.users])

    def condition(self) -> str:
        """A readable condition label: ``altruistic_rude``, ``selfish80+altruistic20_neutral``."""

        def label(names: list[str]) -> str:
            counts = Counter(names)
            if len(counts) == 1:
                return names[0]
            return "+".join(f"{k}{round(100 * n / len(names))}" for k, n in counts.most_common())

        return f"{label([u.policy for u in self.users])}_{label([u.manner for u in self.users])}"


def is_assistant(agent: str) -> bool:
    return agent.startswith(ASSISTANT_PREFIX)


def normalise(name: object, allowed: tuple[str, ...], key: str) -> str:
    """A policy or manner in scai's spelling, or :class:`ConfigError` naming ``key``."""
    if not isinstance(name, str):
        raise ConfigError(f"{key}: expected a name, got {_kind(name)}")
    text = name.strip().lower()
    text = SPELLINGS.get(text, text)
    if text not in allowed:
        raise ConfigError(f"{key}: unknown value {name!r}; allowed: {', '.join(allowed)}")
    return text


def currency_name(text: object) -> str:
    """scai's currency for the configuration's name of it (a name or a unit: "pints of blood")."""
    lowered = str(text).strip().lower()
    for name, currency in CURRENCIES.items():
        if lowered in (name, currency.unit, name.replace("_", " ")):
            return name
    allowed = ", ".join(c.unit for c in CURRENCIES.values())
    raise ConfigError(f"env.currencies: unknown currency {text!r}; allowed: {allowed}")


def parse_config(text: str) -> RunConfig:
    """Read a configuration's YAML text; raise :class:`ConfigError` on anything unreadable."""
    try:
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as err:
        # every line of PyYAML's message: the first says what it parsed, the rest where
        # (line, column) and what it expected
        raise ConfigError(f"not valid YAML: {' '.join(str(err).split())}"[:400]) from None
    if not isinstance(raw, dict):
        raise ConfigError("not a YAML mapping")
    _refuse_aliases(raw)
    env = _get(raw, "env")
    currencies = _get(env, "currencies", "env.")
    if not isinstance(currencies, list) or len(currencies) != 1:
        raise ConfigError(f"env.currencies: expected one currency, got {currencies!r}")
    currency = currency_name(currencies[0])
    pots = _get(env, "amounts_per_run", "env.")
    if not isinstance(pots, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p <= MAX_POT for p in pots
    ):
        raise ConfigError(
            f"env.amounts_per_run: expected whole pots of 1 to {MAX_POT} units, got {pots!r}"[:300]
        )
    agents = _get(raw, "agents")
    fixed = _get(agents, "fixed_agents", "agents.")
    if not isinstance(fixed, list):
        raise ConfigError(f"agents.fixed_agents: expected a list of the users, got {_kind(fixed)}")
    users = tuple(_user(a, i, currencies[0]) for i, a in enumerate(fixed))
    # (in Unicode's composed form, as a table reads ids: "Zoë" typed two ways is one user)
    named = Counter(unicodedata.normalize("NFC", u.name) for u in users)
    if twice := sorted(name for name, n in named.items() if n > 1):
        # one user's games, two manners or policies: which one plays is not in the log
        raise ConfigError(
            f"agents.fixed_agents: {', '.join(map(repr, twice))} listed twice (names are "
            "compared as an interaction table reads them: in Unicode's composed form)"
        )
    flex = _get(agents, "flex_agents", "agents.")
    if not isinstance(flex, list) or not flex:
        raise ConfigError("agents.flex_agents: expected the assistant's agents")
    for i, agent in enumerate(flex):
        if not isinstance(agent, dict):
            raise ConfigError(f"agents.flex_agents[{i}]: expected a mapping, got {_kind(agent)}")
        if not is_assistant(str(agent.get("name"))):  # how its games are told from users'
            raise ConfigError(
                f"agents.flex_agents[{i}].name: {str(agent.get('name'))[:40]!r} does not start "
                f"with {ASSISTANT_PREFIX!r}, how the logs name the assistant's agents"
            )
    manners = {normalise(a.get("manners"), MANNERS, "agents.flex_agents.manners") for a in flex}
    if len(manners) != 1:
        raise ConfigError(f"agents.flex_agents.manners: the assistant's agents differ: {manners}")
    starts = {
        str(a.get("name")): normalise(
            a.get("initial_util"), POLICY_NAMES, "agents.flex_agents.initial_util"
        )
        for a in flex
    }
    known = {u.name for u in users} | set(starts)
    games = _games(_get(raw, "interactions"), len(pots), known, currency)
    sim_dir = str(raw.get("sim", {}).get("sim_dir", "")) if isinstance(raw.get("sim"), dict) else ""
    return RunConfig(users, manners.pop(), starts, currency, tuple(pots), games, sim_dir)


def _get(mapping: object, key: str, prefix: str = ""):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ConfigError(f"{prefix}{key}: missing")
    return mapping[key]


def _user(agent: object, index: int, currency: str) -> User:
    key = f"agents.fixed_agents[{index}]"
    if not isinstance(agent, dict) or "name" not in agent:
        raise ConfigError(f"{key}: expected a mapping with a name")
    utilities = agent.get("utilities")
    if not isinstance(utilities, dict) or currency not in utilities:
        raise ConfigError(f"{key}.utilities: no policy for the run's currency {currency!r}")
    return User(
        name=_user_name(agent["name"], f"{key}.name"),
        policy=normalise(utilities[currency], POLICY_NAMES, f"{key}.utilities"),
        manner=normalise(agent.get("manners"), MANNERS, f"{key}.manners"),
    )


def _user_name(name: object, key: str) -> str:
    """A user's name as the interaction table can keep it, or :class:`ConfigError` naming
    ``key``: a table reads an empty proposer as unknown and ``assistant`` as the assistant,
    drops spaces around a name (``'u1 '`` is ``u1`` there), and refuses invisible characters;
    a name with the assistant's prefix would be taken for one of its agents."""
    text = str(name)
    if not text.strip():
        raise ConfigError(f"{key}: empty; each user needs a name")
    if text != text.strip():
        raise ConfigError(
            f"{key}: {text!r} has spaces around it, which an interaction table drops (it would "
            "be another user's name there)"
        )
    if text.lower() == ASSISTANT:
        raise ConfigError(f"{key}: {text!r} is the assistant's name in scai's tables")
    if is_assistant(text):
        raise ConfigError(
            f"{key}: {text!r} starts with {ASSISTANT_PREFIX!r}, the prefix of the assistant's "
            "agents (agents.flex_agents)"
        )
    if has_control(text):
        raise ConfigError(f"{key}: {text!r}: a name {ID_CHARACTERS}")
    return text


def _games(
    interactions: object, epochs: int, known: set[str], currency: str
) -> tuple[tuple[Game, ...], ...]:
    runs = _get(interactions, "runs", "interactions.")
    same = interactions.get("all_same", False) if isinstance(interactions, dict) else False
    if same in (0, 1):  # true, false, or 1 and 0 (the original code's test: truth)
        same = bool(same)
    else:  # bool("false") is True: every epoch would play run_1's games
        raise ConfigError(f"interactions.all_same: expected true or false, got {_kind(same)}")
    out = []
    for epoch in range(epochs):
        key = "run_1" if same else f"run_{epoch + 1}"
        entries = _get(runs, key, "interactions.runs.")
        games = []
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            where = f"interactions.runs.{key}[{i}]"
            if not isinstance(entry, str):
                raise ConfigError(
                    f"{where}: expected 'PROPOSER-DECIDER-currency', got {_kind(entry)}"
                )
            parts = entry.split("-", 2)
            if len(parts) != 3 or not {parts[0], parts[1]} <= known or parts[0] == parts[1]:
                raise ConfigError(
                    f"{where}: {entry!r} is not 'PROPOSER-DECIDER-currency' naming two "
                    "different configured agents"
                )
            if currency_name(parts[2]) != currency:
                raise ConfigError(
                    f"{where}: {entry!r} is played in {parts[2]!r}; the run's currency is "
                    f"{currency!r} (env.currencies)"
                )
            games.append(Game(parts[0], parts[1]))
        out.append(tuple(games))
    return tuple(out)


def _kind(value: object) -> str:
    """What a value is, briefly (never the whole of a large structure)."""
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'} of {len(value)} entries"
    return f"{type(value).__name__} {str(value)[:40]!r}"


#: The most entries a configuration may hold once its YAML aliases are expanded (the shared
#: runs' configurations: a few hundred).
MAX_CONFIG_ENTRIES = 100_000


def _refuse_aliases(raw: object) -> None:
    """Refuse a configuration whose aliases (``*name``) expand to more than
    :data:`MAX_CONFIG_ENTRIES` entries: a few nested aliases make billions from a kilobyte of
    text, which turning it into text would try to hold in memory. An alias makes the loaded
    structure share a list or mapping; each one's expanded size is counted once (memoised), so
    the count never expands anything."""
    sizes: dict[int, int] = {}

    def size(node: object, depth: int = 0) -> int:
        if not isinstance(node, dict | list):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > 100:
            raise ConfigError("nested more than 100 levels deep")
        children = list(node.values()) if isinstance(node, dict) else node
        sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in children)
        return sizes[id(node)]

    total = size(raw)
    if total > MAX_CONFIG_ENTRIES:
        raise ConfigError(
            f"its YAML aliases (*name) expand to {total:,} entries; a configuration holds at "
            f"most {MAX_CONFIG_ENTRIES:,}"
        )


def _mixture(names: list[str]) -> str:
    counts = Counter(names)
    if len(counts) == 1:
        return names[0]
    return ",".join(f"{k}={n / len(names):g}" for k, n in counts.most_common())
